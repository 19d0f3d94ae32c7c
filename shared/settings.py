"""Configuration shared by every service, read from CLAIMLEDGER_* environment variables.

Each service subclasses `CommonSettings` with what only it needs (one settings
object per service, built in its composition root, never at import time).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMLEDGER_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False  # CLAIMLEDGER_REDIS_URL names a node of a Redis Cluster
    database_url: str = "sqlite:///./var/claimledger.db"
    # at most 1024: a version id names its partition (shared.positions.SLOTS)
    partitions: int = Field(default=4, ge=1, le=1024)
    bootstrap_write_key: str | None = None
    attributes_file: str | None = None  # extra attribute registry entries (TOML)
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # peers (IPs, CIDRs, or *) whose X-Forwarded-For/-Proto are believed: the proxy in front.
    # Per-client limits (SSE streams, rate) key on the address this yields.
    forwarded_allow_ips: str = "127.0.0.1"
    # how long a service waits for a dependency before /readyz reports it down
    dependency_timeout_s: float = 2.0
