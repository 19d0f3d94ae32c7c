"""`claimledger import` and `export` as real processes against the three running services."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def import_json(running: Cluster, path: Path, *args: str) -> dict[str, Any]:
    done = cli("import", str(path), "--url", running.url("ingest"), "--no-progress", "--json",
               *args, cwd=path.parent)  # fmt: skip
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def claims(running: Cluster, **params: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = httpx.get(
            f"{running.url('query')}/v1/claims",
            params={**params, **({"cursor": cursor} if cursor else {})},
        ).json()
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def settled(running: Cluster, count: int, **params: str) -> list[dict[str, Any]]:
    """The claims once `count` of them are applied (never more: ids are content hashes)."""

    def enough() -> list[dict[str, Any]] | None:
        found = claims(running, **params)
        return found if len(found) >= count else None

    got: list[dict[str, Any]] = wait_for(enough, timeout_s=60)
    return got


def applied(running: Cluster, token: str) -> None:
    """Waits until every write up to `token` (an import summary's) is visible: after it, a
    count of the claims is final, with no sleep to let stragglers arrive."""

    def visible() -> bool:
        answer = httpx.get(
            f"{running.url('query')}/v1/snapshot", params={"min_token": token, "limit": 1}
        )
        return answer.status_code == 200

    wait_for(visible, timeout_s=60)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_csv_with_map_and_set_flags_imports_every_row(running: Cluster, tmp_path: Path) -> None:
    city = unique("csv")
    data = tmp_path / "pop.csv"
    data.write_text(
        "city,who,n,day\n"
        f"{city},census,1000,2020-01-01\n"
        f"{city},wiki,about 1100,2020-02-01\n"
        f'"{city}, b",census,"2,000",2020-01-01\n'
    )
    summary = import_json(
        running, data,
        "--map", "subject=city", "--map", "source.id=who", "--map", "value=n",
        "--map", "published_at=day", "--set", "attribute=population",
        "--set", "source.kind=dataset",
    )  # fmt: skip
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (3, 3, 0)
    token = summary["token"]
    assert isinstance(token, str) and token.isdigit()  # as the API gives it: pass it on as is
    view = httpx.get(
        f"{running.url('query')}/v1/consensus/{city}/population", params={"min_token": token}
    )
    assert view.status_code == 200 and int(view.json()["token"]) >= int(token)
    got = settled(running, 2, subject=city, attribute="population")
    assert sorted(c["source_id"] for c in got) == ["census", "wiki"]
    assert not (tmp_path / "pop.csv.rejects.jsonl").exists()


def test_rerunning_an_import_stores_nothing_twice(running: Cluster, tmp_path: Path) -> None:
    attr = unique("rerun")
    data = tmp_path / "tuples.txt"
    data.write_text("".join(f"src{i % 3}\tobj{i}\t{attr}\t{i}\t2021\n" for i in range(20)))
    first = import_json(running, data)
    again = import_json(running, data)
    assert (first["accepted"], first["present"]) == (20, 0)
    assert (again["accepted"], again["present"]) == (0, 20)
    assert again["token"] == first["token"]  # "already accepted" names the first write
    applied(running, again["token"])
    assert len(claims(running, attribute=attr)) == 20


def test_jsonl_with_a_mapping_file(running: Cluster, tmp_path: Path) -> None:
    subject = unique("jsonl")
    data = tmp_path / "obs.jsonl"
    rows = [
        {"entity": subject, "metric": "killed", "lo": 10, "hi": 20,
         "source": {"id": "isw", "kind": "think_tank"}, "when": "2025-01-02"},
        {"entity": subject, "metric": "killed", "lo": 12, "hi": 14,
         "source": {"id": "ap", "kind": "news"}, "when": "2025-01-03"},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[map]\nsubject = "entity"\nattribute = "metric"\n"value.low" = "lo"\n'
        '"value.high" = "hi"\npublished_at = "when"\n'
    )
    summary = import_json(running, data, "--mapping", str(mapping))
    assert (summary["accepted"], summary["rejected"]) == (2, 0)
    got = settled(running, 2, subject=subject, attribute="killed")
    assert {c["source_id"] for c in got} == {"isw", "ap"}


def test_tsv_columns_named_like_the_tuple_map_by_themselves(
    running: Cluster, tmp_path: Path
) -> None:
    attr = unique("tsv")
    data = tmp_path / "claims.tsv"
    data.write_text(
        "SourceID\tObjectID\tPropertyID\tPropertyValue\tTimeStamp\n"
        f"msn\tsanjose\t{attr}\t48\tfri jan 29 08:45:00 2010\n"
        f"wunderground\tsanjose\t{attr}\t49\tfri jan 29 08:50:00 2010\n"
    )
    summary = import_json(running, data)
    assert summary["accepted"] == 2
    got = settled(running, 2, attribute=attr)
    assert {c["source_id"] for c in got} == {"msn", "wunderground"}


def test_truth_discovery_tuples_with_spaces_or_a_header_or_named_columns(
    running: Cluster, tmp_path: Path
) -> None:
    attr = unique("td")
    spaced = tmp_path / "spaced.txt"
    spaced.write_text(f"# source object attribute value timestamp\n"
                      f"msn sanjose {attr} 48 fri jan 29 08:45:00 2010\n")  # fmt: skip
    headed = tmp_path / "headed.txt"
    headed.write_text(
        f"source\tobject\tattribute\tvalue\ttimestamp\nccn\tsanjose\t{attr}\t47\t2010\n"
    )
    population = tmp_path / "population.txt"  # the population benchmark's own layout
    population.write_bytes(  # its second line is not UTF-8, as 3,770 of the real file's are
        b"dhaka_2006\tcontributor #51413: ragib\t6724976\t2006\n"
        b"montarr\xe3\x83\xe2\xb3n_2004\tcontributor #3729068: botijo\t44\t2004\n"
    )
    assert import_json(running, spaced)["accepted"] == 1
    assert import_json(running, headed)["accepted"] == 1
    summary = import_json(running, population, "--columns", "object,source,value,timestamp",
                          "--set", f"attribute={attr}")  # fmt: skip
    assert (summary["accepted"], summary["rejected"]) == (2, 0)
    got = settled(running, 4, attribute=attr)
    assert {c["subject"] for c in got} >= {"sanjose", "dhaka_2006"}


def test_rejected_rows_go_to_the_rejects_file_with_line_field_and_reason(
    running: Cluster, tmp_path: Path
) -> None:
    attr = unique("rej")
    data = tmp_path / "mixed.csv"
    data.write_text(
        "source,object,attribute,value,timestamp\n"
        f"a,o1,{attr},1,2020-01-01\n"
        f"a,o2,{attr},,2020-01-01\n"  # line 3: no value (the importer)
        f"a,o3,{attr},3,2020-13-45\n"  # line 4: no such date (the server)
        f"a,o4,{attr},4,29/01/2020\n"  # line 5: not a known time form (the importer)
    )
    summary = import_json(running, data)
    assert (summary["accepted"], summary["rejected_local"], summary["rejected_server"]) == (1, 2, 1)
    rejects = [json.loads(line) for line in (tmp_path / "mixed.csv.rejects.jsonl").open()]
    by_line = {r["line"]: r for r in rejects}
    assert sorted(by_line) == [3, 4, 5]
    assert by_line[3]["rejected_by"] == "importer"
    assert by_line[3]["errors"][0]["field"] == "value"
    assert by_line[3]["errors"][0]["detail"].startswith("empty")
    assert by_line[4]["rejected_by"] == "server" and by_line[4]["status"] == 422
    assert by_line[4]["errors"][0]["pointer"] == "/published_at"
    assert by_line[4]["row"]["object"] == "o3"
    assert by_line[5]["errors"][0]["field"] == "published_at"
    # the summary's reasons are whole (values masked so alike rows group), not cut short
    hint = "is not ISO 8601 nor a known form; pass --time-format (strptime, e.g. %d/%m/%Y)"
    assert summary["reasons"][f"published_at: '…' {hint}"] == 1
    server = by_line[4]["errors"][0]["detail"]
    assert [r for r in summary["reasons"] if r.startswith("/published_at: ")] == [
        f"/published_at: {server}".replace("'2020-13-45'", "'…'")
    ]


def test_an_interrupted_import_resumes_and_stores_each_row_once(
    running: Cluster, tmp_path: Path
) -> None:
    attr = unique("resume")
    rows = 400
    data = tmp_path / "big.txt"
    data.write_text("".join(f"s{i % 7}\to{i}\t{attr}\t{i}\t2022\n" for i in range(rows)))
    state = tmp_path / "state.json"
    args = [sys.executable, "-m", "services.cli", "import", str(data), "--url",
            running.url("ingest"), "--batch-size", "5", "--state", str(state),
            "--no-progress", "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def interrupt(sig: int) -> int:
        before = json.loads(state.read_text())["offset"] if state.exists() else 0
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        wait_for(lambda: state.exists() and json.loads(state.read_text())["offset"] > before,
                 timeout_s=60, interval_s=0.01)  # fmt: skip
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        return proc.returncode

    assert interrupt(signal.SIGINT) == 130  # Ctrl-C
    assert interrupt(signal.SIGKILL) == -signal.SIGKILL
    checkpoint = json.loads(state.read_text())
    assert 0 < checkpoint["line"] <= rows
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["resumed_at_line"] == checkpoint["line"] > 1
    assert summary["rows"] == rows  # counted once across the three runs
    assert summary["accepted"] + summary["present"] == rows
    assert not state.exists()  # done: a later run starts over (and stores nothing twice)
    applied(running, summary["token"])  # the token of every row, stored by whichever run
    got = claims(running, attribute=attr)
    assert len(got) == rows
    assert len({c["subject"] for c in got}) == rows


def test_export_current_and_as_of_consensus_to_csv_and_jsonl(
    running: Cluster, tmp_path: Path
) -> None:
    subject = unique("exp")
    data = tmp_path / "two.csv"
    data.write_text(
        "source,object,attribute,value,timestamp\n"
        f"early,{subject},population,100,2020-01-01\n"
        f"late,{subject},population,200,2022-01-01\n"
    )
    assert import_json(running, data)["accepted"] == 2
    query = running.url("query")
    wait_for(lambda: len(httpx.get(f"{query}/v1/consensus/{subject}/population").json()
                         .get("support", [])) + len(httpx.get(
                             f"{query}/v1/consensus/{subject}/population").json()
                         .get("dissent", [])) == 2, timeout_s=60)  # fmt: skip
    current = cli("export", "--url", query, cwd=tmp_path).stdout
    rows = [r for r in csv.DictReader(io.StringIO(current)) if r["subject"] == subject]
    assert len(rows) == 1
    assert list(rows[0])[:7] == ["subject", "attribute", "version", "low", "best", "high",
                                 "conservative"]  # fmt: skip
    assert len((rows[0]["support"] + ";" + rows[0]["dissent"]).strip(";").split(";")) == 2
    out = tmp_path / "then.jsonl"
    cli("export", "--url", query, "--as-of", "2021-01-01", "--format", "jsonl", "--out",
        str(out), cwd=tmp_path)  # fmt: skip
    then = [json.loads(line) for line in out.open() if subject in line]
    assert len(then) == 1
    assert then[0]["best"] == 100 and len(then[0]["support"]) == 1 and then[0]["dissent"] == []


def test_an_import_rides_out_an_ingest_restart(running: Cluster, tmp_path: Path) -> None:
    attr = unique("restart")
    rows = 300
    data = tmp_path / "rows.txt"
    data.write_text("".join(f"s{i % 5}\to{i}\t{attr}\t{i}\t2023\n" for i in range(rows)))
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "import", str(data), "--url",
         running.url("ingest"), "--batch-size", "5", "--state", str(state), "--no-progress",
         "--json"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: state.exists(), timeout_s=60, interval_s=0.01)
    assert proc.poll() is None, "finished before the restart"
    running.restart("ingest", kill=True)  # connections refused until it is back: retried
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["accepted"] + summary["present"] == rows and summary["rejected"] == 0
    assert len(settled(running, rows, attribute=attr)) == rows
