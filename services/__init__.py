"""claimledger's services: ingest, reconcile, query, and the `claimledger` CLI."""
