"""claimledger's shared package: event schemas and the pure domain (no I/O, no frameworks)."""
