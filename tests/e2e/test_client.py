"""The Python client (`claimledger.client`) against the three services as real processes."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from claimledger import AsyncClient, ClaimIn, ClaimledgerError, Client, ReportIn, SourceIn
from tests.conftest import Cluster, system, wait_for

pytestmark = pytest.mark.e2e

KEY = "client-test-key"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module (starting the services dominates the runtime); every
    test writes its own subjects."""
    with system(
        tmp_path_factory.mktemp("client"),
        CLAIMLEDGER_REPUBLISH_AFTER_S="5",
        CLAIMLEDGER_BOOTSTRAP_WRITE_KEY=KEY,
    ) as cluster:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(cluster.start, ("ingest", "reconcile", "query")))
        yield cluster


@pytest.fixture
def client(live: Cluster) -> Iterator[Client]:
    with Client(
        ingest_url=live.url("ingest"), query_url=live.url("query"), api_key=KEY, timeout=10
    ) as c:
        yield c


def _subject() -> str:
    return f"client-{uuid.uuid4().hex[:10]}"


def _report(subject: str, attribute: str = "killed", value: Any = 100, **fields: Any) -> dict:
    claim = {"subject": subject, "attribute": attribute, "value": value}
    claim.update(fields.pop("claim", {}))
    return {
        "source": {"id": fields.pop("source", "kyiv-independent"), "kind": "news"},
        "published_at": fields.pop("published_at", "2025-02-17"),
        "claims": [claim],
        **fields,
    }


def test_post_report_then_read_your_write(client: Client) -> None:
    subject = _subject()
    typed = ReportIn(
        source=SourceIn(id="kyiv-independent", kind="news"),
        published_at="2025-02-17",
        claims=[ClaimIn(subject=subject, attribute="personnel_deployed", raw="about 12,000")],
    )
    accepted = client.post_report(typed)
    assert set(accepted) >= {"report_id", "claim_ids", "recorded_at", "token"}
    assert client.post_report(typed) == accepted  # identical retry: same body

    view = client.consensus(subject, "personnel_deployed", min_token=accepted["token"])
    assert (view["low"], view["best"], view["high"]) == (10800, 12000, 13200)
    assert view["support"] == accepted["claim_ids"]
    assert int(view["token"]) >= int(accepted["token"])
    assert client.report(accepted["report_id"])["applied"] is True

    as_dict = client.post_report(_report(subject, "killed", "over 3,000"))
    assert client.consensus(subject, "killed", min_token=as_dict["token"])["low"] == 3000
    assert {a["attribute"] for a in client.subject(subject)["attributes"]} == {
        "personnel_deployed",
        "killed",
    }


def test_errors_carry_the_problem(client: Client) -> None:
    subject = _subject()
    with pytest.raises(ClaimledgerError) as local:
        client.post_report({"source": {"id": "x"}, "published_at": "2025", "claims": [{}]})
    assert local.value.status == 422
    assert {e["pointer"] for e in local.value.errors} >= {"/claims/0/subject"}

    with pytest.raises(ClaimledgerError) as server:  # valid shape, unreadable phrase
        client.post_report(_report(subject, "killed", claim={"value": None, "raw": "quite many"}))
    assert server.value.status == 422 and server.value.errors[0]["pointer"] == "/claims/0/raw"

    first = client.post_report(_report(subject, report_id=f"{subject}-r"))
    with pytest.raises(ClaimledgerError) as conflict:
        client.post_report(_report(subject, value=999, report_id=f"{subject}-r"))
    assert conflict.value.status == 409 and conflict.value.problem["report_id"] == f"{subject}-r"

    client.consensus(subject, "killed", min_token=first["token"])
    with pytest.raises(ClaimledgerError) as missing:
        client.consensus(subject, "no-such-attribute")
    assert missing.value.status == 404 and missing.value.title == "No consensus"

    with Client(ingest_url=client.ingest_url, query_url=client.query_url) as anonymous:
        with pytest.raises(ClaimledgerError) as denied:
            anonymous.post_report(_report(subject))
        assert denied.value.status == 401


def test_post_reports_chunks_and_keeps_order(client: Client) -> None:
    subject = _subject()
    reports: list[Any] = [
        _report(subject, value=100 * i, source=f"outlet-{i}", published_at=f"2025-03-{i + 1:02}")
        for i in range(1, 8)
    ]
    reports.insert(4, {"source": {"id": "x"}, "claims": []})  # invalid: no published_at
    results = client.post_reports(reports, chunk_size=3)

    assert [r["index"] for r in results] == list(range(8))
    assert [r["status"] for r in results] == [202] * 4 + [422] + [202] * 3
    assert results[4]["errors"][0]["pointer"] == "/published_at"
    assert client.post_reports(reports[:2], chunk_size=1) == [
        {**r, "status": 200} for r in results[:2]
    ]  # identical retries

    last = max(int(r["token"]) for r in results if "token" in r)
    client.consensus(subject, "killed", min_token=last)
    claims = list(client.claims(subject=subject, page_size=2))
    assert len(claims) == 7 == len({c["claim_id"] for c in claims})
    assert sorted(c["claim_id"] for c in claims) == sorted(
        r["claim_ids"][0] for r in results if r["status"] == 202
    )
    assert len(list(client.claims(source="outlet-4", subject=subject))) == 1


def test_history_and_snapshot_follow_cursors(client: Client) -> None:
    subject = _subject()
    token = "0"
    for i in range(5):
        token = client.post_report(
            _report(subject, value=1000 + i, source=f"s{i}", published_at=f"2025-01-{i + 10}")
        )["token"]
        token = client.post_report(
            _report(subject, "wounded", value=i, source=f"s{i}", published_at=f"2025-01-{i + 10}")
        )["token"]
    client.consensus(subject, "killed", min_token=token)

    versions = list(client.history(subject, "killed", page_size=2))
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    assert len(versions) >= 5
    assert versions == list(client.history(subject, "killed", page_size=1000))

    paged = [(v["subject"], v["attribute"]) for v in client.snapshot(page_size=2)]
    whole = [(v["subject"], v["attribute"]) for v in client.snapshot(page_size=1000)]
    assert paged == whole and len(paged) == len(set(paged))
    assert {(subject, "killed"), (subject, "wounded")} <= set(paged)
    at = [v for v in client.snapshot(as_of="2025-01-10", page_size=1) if v["subject"] == subject]
    assert {(v["attribute"], v["best"]) for v in at} == {("killed", 1000), ("wounded", 0)}

    listed = [s["subject"] for s in client.subjects(page_size=1)]
    assert subject in listed and listed == sorted(listed)


def test_time_axes(client: Client) -> None:
    subject = _subject()
    first = client.post_report(_report(subject, value=12000, published_at="2025-02-17"))
    shown_from = client.consensus(subject, "killed", min_token=first["token"])["recorded_from"]
    second = client.post_report(  # a backfill: published earlier, recorded later
        _report(subject, value=9000, source="other", published_at="2025-01-10")
    )
    now = client.consensus(subject, "killed", min_token=second["token"])
    assert set(now["support"] + now["dissent"]) == {*first["claim_ids"], *second["claim_ids"]}

    # publication time: the backfill is part of every view after 2025-01-10
    jan = client.consensus(subject, "killed", as_of="2025-01-31")
    assert jan["best"] == 9000 and jan["support"] == second["claim_ids"]
    # recorded time: what claimledger showed before the backfill arrived
    shown = client.consensus(subject, "killed", recorded_as_of=shown_from)
    assert shown["best"] == 12000 and shown["support"] == first["claim_ids"]
    with pytest.raises(ClaimledgerError) as unknown_then:
        client.consensus(subject, "killed", recorded_as_of=shown_from, as_of="2025-01-31")
    assert unknown_then.value.status == 404
    # world time
    dated = client.post_report(
        _report(subject, "deployment_status", "withdrawn", claim={"valid_time": "2025-01"})
    )
    status = client.consensus(
        subject, "deployment_status", valid_at="2025-01-15", min_token=dated["token"]
    )
    assert status["value"] == "withdrawn"


def test_retract_and_assess_exclude_claims(client: Client) -> None:
    subject = _subject()
    kept = client.post_report(_report(subject, value=12000, source="a"))
    dropped = client.post_report(_report(subject, value=3000, source="b"))
    deprecated = client.post_report(_report(subject, value=7000, source="c"))
    client.consensus(subject, "killed", min_token=deprecated["token"])

    retraction = client.retract(dropped["claim_ids"][0], "misread the source")
    assert set(retraction) >= {"event_id", "token", "recorded_at"}
    assessment = client.assess(deprecated["claim_ids"][0], "duplicate", rank="deprecated")
    rating = client.rate_source("a", "B", "long track record")
    view = client.consensus(
        subject,
        "killed",
        min_token=max(int(retraction["token"]), int(assessment["token"]), int(rating["token"])),
    )
    assert dropped["claim_ids"][0] in view["excluded"]
    # an analyst's exclusion reads with its reason and date (issue #20)
    assert view["exclusions"][dropped["claim_ids"][0]].startswith("retracted: misread the source (")
    assert view["exclusions"][deprecated["claim_ids"][0]].startswith("deprecated: duplicate (")
    assert kept["claim_ids"][0] in view["support"] + view["dissent"]

    with pytest.raises(ClaimledgerError) as unknown:
        client.retract("c_does_not_exist", "typo")
    assert unknown.value.status == 404
    with pytest.raises(ClaimledgerError) as empty:
        client.assess(kept["claim_ids"][0], "nothing to say")
    assert empty.value.status == 422


def test_odd_keys_are_encoded(client: Client) -> None:
    for key in ("a/b", "..", "ü ?#%&=+", "history"):
        accepted = client.post_report(_report(key, key, 5, source=_subject()))
        view = client.consensus(key, key, min_token=accepted["token"])
        assert (view["subject"], view["attribute"]) == (key, key)
        assert [v["attribute"] for v in client.history(key, key)][-1] == key
    assert client.subject("a/b")["subject"] == "a/b"


def test_subscription_survives_a_query_restart(live: Cluster, client: Client) -> None:
    subject = _subject()
    got: list[dict[str, Any]] = []
    failure: list[BaseException] = []
    listener = Client(query_url=live.url("query"), timeout=5, backoff_s=0.1, max_backoff_s=1.0)

    def listen() -> None:
        try:
            for version in listener.subscribe(subject=subject, since=0):
                got.append(version)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        token = "0"
        for i in range(3):
            token = client.post_report(
                _report(subject, value=100 + i, source=f"o{i}", published_at=f"2025-02-{i + 1:02}")
            )["token"]
        client.consensus(subject, "killed", min_token=token)
        wait_for(lambda: len(got) >= 3, timeout_s=15)

        port = live.port("query")
        live.stop("query")
        for i in range(3, 6):  # written while nobody can read
            token = client.post_report(
                _report(subject, value=100 + i, source=f"o{i}", published_at=f"2025-02-{i + 1:02}")
            )["token"]
        live.start("query", port=port)
        client.consensus(subject, "killed", min_token=token)
        versions = list(client.history(subject, "killed"))
        wait_for(lambda: len(got) >= len(versions), timeout_s=30)
        time.sleep(1.0)  # an absence: nothing more (no repeats) arrives
        assert not failure
        assert [v["position"] for v in got] == [v["position"] for v in versions]
        assert [v["version"] for v in got] == list(range(1, len(versions) + 1))
        assert len(versions) >= 6
    finally:
        listener.close()
        thread.join(10)


def test_writes_retry_while_ingest_restarts(live: Cluster, client: Client) -> None:
    subject = _subject()
    port = live.port("ingest")
    live.stop("ingest")
    restarting = threading.Thread(target=live.start, args=("ingest",), kwargs={"port": port})
    restarting.start()
    try:
        patient = Client(
            ingest_url=client.ingest_url, query_url=client.query_url, api_key=KEY,
            retries=12, backoff_s=0.2, max_backoff_s=2.0,
        )  # fmt: skip
        with patient:
            accepted = patient.post_report(_report(subject))  # connection refused at first
            assert patient.consensus(subject, "killed", min_token=accepted["token"])["best"] == 100
    finally:
        restarting.join(60)


def test_async_client(live: Cluster) -> None:
    subject = _subject()

    async def scenario() -> None:
        async with AsyncClient(
            ingest_url=live.url("ingest"), query_url=live.url("query"), api_key=KEY
        ) as client:
            results = await client.post_reports(
                [_report(subject, value=v, source=f"a{v}") for v in (10, 20, 30)], chunk_size=2
            )
            assert [r["status"] for r in results] == [202, 202, 202]
            token = max(int(r["token"]) for r in results)
            view = await client.consensus(subject, "killed", min_token=token)
            # published 2025-02-17: read today it may be stale; fresh it was one of these
            assert view.get("fresh_status", view["status"]) in {"settled", "contested"}
            history = [v async for v in client.history(subject, "killed", page_size=1)]
            assert history[-1]["version"] == view["version"]
            seen = []
            async for version in client.subscribe(subject=subject, since=0):
                seen.append(version["version"])
                if len(seen) == len(history):
                    break
            assert seen == [v["version"] for v in history]
            claims = [c async for c in client.claims(subject=subject, page_size=1)]
            assert len(claims) == 3
            retraction = await client.retract(claims[0]["claim_id"], "test")
            after = await client.consensus(subject, "killed", min_token=retraction["token"])
            assert claims[0]["claim_id"] in after["excluded"]

    asyncio.run(scenario())
