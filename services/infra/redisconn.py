"""The Redis client and FastStream broker for CLAIMLEDGER_REDIS_URL: a single server
(or a Sentinel-managed primary behind one address), or Redis Cluster when
CLAIMLEDGER_REDIS_CLUSTER is set — then redis-py's cluster client routes each command
to the node owning its key, and FastStream's RedisClusterBroker does the same for the
consumer. Every key claimledger touches in one command is a single key, and a
partition's keys share a hash tag (docs/operating.md), so nothing needs cross-slot
commands."""

from __future__ import annotations

from typing import cast

from faststream.redis import RedisBroker, RedisClusterBroker
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.settings import CommonSettings


def connect(settings: CommonSettings, *, socket_timeout: float) -> Redis:
    if settings.redis_cluster:
        # the cluster client offers the same command methods; typed as Redis for callers
        return cast(
            Redis,
            RedisCluster.from_url(
                settings.redis_url, socket_timeout=socket_timeout, socket_connect_timeout=2
            ),
        )
    return Redis.from_url(
        settings.redis_url, socket_timeout=socket_timeout, socket_connect_timeout=2
    )


def broker_type(settings: CommonSettings) -> type[RedisBroker]:
    return RedisClusterBroker if settings.redis_cluster else RedisBroker
