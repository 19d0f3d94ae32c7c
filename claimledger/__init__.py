"""claimledger's Python client.

    from claimledger import Client

    with Client(ingest_url="http://127.0.0.1:8001", query_url="http://127.0.0.1:8002") as cl:
        print(cl.consensus("dprk-troops-kursk", "personnel_deployed")["best"])

The input models are the server's own (`ReportIn`, `ClaimIn`), re-exported here.
"""

from __future__ import annotations

from claimledger.client import AsyncClient, ClaimledgerError, Client
from shared.reports import ClaimIn, ReportIn, SourceIn, ValidTimeIn, ValueIn

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "ClaimIn",
    "ClaimledgerError",
    "Client",
    "ReportIn",
    "SourceIn",
    "ValidTimeIn",
    "ValueIn",
    "__version__",
]
