"""Bulk import and export over the public HTTP API (`claimledger import` / `export`).

Import streams a file (CSV, TSV, JSON lines or truth-discovery tuples) row by row in constant
memory: each row becomes one report (`claimledger.tabular.build_report`), reports go to
`POST /v1/reports:batch` in batches, and after every acknowledged batch a checkpoint records
the byte offset and line reached. A run that is interrupted (Ctrl-C, kill, a server that stays
down) resumes from the checkpoint; rows of a batch that was in flight are sent again, which is
harmless since report ids are content hashes (the server answers 200 "already accepted").
The checkpoint is removed when the file is done, so a later run sends every row again and
imports nothing twice.

Export pages through `GET /v1/snapshot` and writes each page as it arrives.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from claimledger.client import Client
from claimledger.tabular import (
    EXPORT_COLUMNS,
    ColumnMapping,
    Format,
    MappingSpec,
    RowProblem,
    build_report,
    detect_format,
    export_csv_row,
    export_record,
    flatten_keys,
    looks_like_header,
    resolve,
    split_td_line,
    td_columns,
)

STATE_VERSION = 1
_HEAD_BYTES = 65_536  # the file's identity for resuming: its path and its first 64 KiB


@dataclass
class Counts:
    rows: int = 0
    accepted: int = 0  # new reports (202), one claim each
    present: int = 0  # already accepted before (200): an earlier run, or a duplicate row
    rejected_local: int = 0  # rows the mapping could not turn into a report
    rejected_server: int = 0  # reports the server refused (422/409)
    token: int = 0  # highest write token of the accepted rows: a reader's `min_token`
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return self.rejected_local + self.rejected_server

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["reasons"] = dict(self.reasons.most_common())
        body["rejected"] = self.rejected
        # a string, as the API's tokens are; null when nothing was written
        body["token"] = str(self.token) if self.token else None
        return body


@dataclass(frozen=True)
class Record:
    """One row of the file: its first line, the byte offset just after it, and either
    its fields or why they could not be read."""

    line: int
    end: int
    row: dict[str, Any] | None
    problem: RowProblem | None = None
    lines: int = 1  # physical lines (a quoted CSV field may hold line breaks)


@dataclass(frozen=True)
class Layout:
    """How to read a file: format, column names (None: from the header), TAB or spaces."""

    format: Format
    names: tuple[str, ...]
    data_offset: int  # where the first data row starts
    data_line: int
    tabbed: bool = True


def decode_line(raw: bytes) -> str:
    """UTF-8; a line that is not UTF-8 is read as Latin-1. Real datasets mix encodings line
    by line (the population set has 3,770 such lines); Latin-1 maps each byte to one
    character, so no row is lost and the same bytes always give the same key."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(f: IO[bytes], offset: int, line: int) -> Iterator[tuple[int, int, str]]:
    """(line number, offset after the line, text) from `offset` on."""
    f.seek(offset)
    for raw in iter(f.readline, b""):
        offset += len(raw)
        text = decode_line(raw)
        if line == 1:
            text = text.removeprefix("\ufeff")
        yield line, offset, text
        line += 1


def read_layout(path: Path, spec: MappingSpec, fmt: Format) -> Layout:
    """The column names, from the header (or --columns), and where data starts."""
    with path.open("rb") as f:
        first = next(((n, end, t) for n, end, t in _lines(f, 0, 1) if t.strip()), None)
    if first is None:
        return Layout(fmt, spec.names or (), 0, 1)
    line, end, text = first
    if fmt == "jsonl":
        names = spec.names
        if names is None:
            try:
                obj = json.loads(text)
            except ValueError:
                obj = {}
            names = tuple(flatten_keys(obj)) if isinstance(obj, dict) else ()
        return Layout(fmt, names, 0, 1)
    if fmt in ("csv", "tsv"):
        if spec.names is not None:
            return Layout(fmt, spec.names, 0, 1)
        header = next(_reader(iter([text]), fmt), [])
        return Layout(fmt, tuple(h.strip() for h in header), end, line + 1)
    tabbed = "\t" in text
    fields = split_td_line(text, tabbed, 64) if tabbed else text.split()
    if spec.names is not None:
        return Layout(fmt, spec.names, 0, 1, tabbed)
    if looks_like_header(fields):
        return Layout(fmt, tuple(fields), end, line + 1, tabbed)
    return Layout(fmt, td_columns(len(fields)), 0, 1, tabbed)


def _reader(texts: Iterator[str], fmt: Format) -> Iterator[list[str]]:
    if fmt == "csv":
        return csv.reader(texts)
    # TSV (IANA text/tab-separated-values) has no quoting: a " is part of its field
    return csv.reader(texts, delimiter="\t", quoting=csv.QUOTE_NONE)


def records(path: Path, layout: Layout, offset: int, line: int) -> Iterator[Record]:
    """The file's rows from `offset` (at `line`) on, lazily."""
    with path.open("rb") as f:
        first = max(line, layout.data_line)
        lines = _lines(f, max(offset, layout.data_offset), first)
        if layout.format in ("csv", "tsv"):
            yield from _csv_records(lines, layout, first)
        elif layout.format == "jsonl":
            yield from _jsonl_records(lines)
        else:
            yield from _td_records(lines, layout)


def _csv_records(
    lines: Iterator[tuple[int, int, str]], layout: Layout, first: int
) -> Iterator[Record]:
    # csv.reader pulls physical lines only until a record is complete (no read-ahead), so
    # the last line handed out is the record's last: its end offset is where to resume
    position = {"line": first - 1, "end": 0}

    def texts() -> Iterator[str]:
        for n, end, text in lines:
            position["line"], position["end"] = n, end
            yield text

    reader = _reader(texts(), layout.format)
    names = layout.names
    while True:
        start = position["line"] + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = RowProblem("row", f"bad CSV: {exc}")
            yield Record(start, position["end"], None, problem, position["line"] - start + 1)
            continue
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            problem = RowProblem("row", f"{len(fields)} fields, the header has {len(names)}")
            row = {str(i): f for i, f in enumerate(fields)}
            yield Record(start, position["end"], row, problem, position["line"] - start + 1)
            continue
        row = dict(zip(names, fields, strict=True))
        yield Record(start, position["end"], row, None, position["line"] - start + 1)


def _jsonl_records(lines: Iterator[tuple[int, int, str]]) -> Iterator[Record]:
    for n, end, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            yield Record(n, end, {"text": text.rstrip("\n")}, RowProblem("row", f"not JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            yield Record(n, end, {"text": text.rstrip("\n")}, RowProblem("row", "not an object"))
            continue
        yield Record(n, end, obj)


def _td_records(lines: Iterator[tuple[int, int, str]], layout: Layout) -> Iterator[Record]:
    names = layout.names
    for n, end, text in lines:
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        fields = split_td_line(text, layout.tabbed, len(names))
        if len(fields) != len(names):
            expected = f"{len(names)}: {', '.join(names)}"
            problem = RowProblem("row", f"{len(fields)} fields, expected {expected}")
            yield Record(n, end, {"text": text.rstrip("\r\n")}, problem)
            continue
        yield Record(n, end, dict(zip(names, fields, strict=True)))


# -- state (resume) ---------------------------------------------------------------------


def file_identity(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    return hashlib.sha256(str(path.resolve()).encode() + b"\0" + head).hexdigest()[:32]


def default_state_path(path: Path) -> Path:
    """Beside the working directory, not the data (which may be read-only)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    return Path(".claimledger") / f"import-{path.name}-{digest}.json"


def load_state(state_path: Path, identity: str, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint of an interrupted run of this file with this mapping, if any."""
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(state, dict)
        or state.get("version") != STATE_VERSION
        or state.get("file") != identity
        or state.get("mapping") != fingerprint
    ):
        return None
    return state


def save_state(state_path: Path, state: dict[str, Any]) -> None:
    """Atomically: a kill leaves the previous checkpoint or this one, never half of one."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_name(state_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state_path)


# -- import -----------------------------------------------------------------------------


@dataclass
class ImportPlan:
    path: Path
    layout: Layout
    mapping: ColumnMapping
    state_path: Path
    rejects_path: Path
    batch_size: int = 500


def plan_import(
    path: Path,
    spec: MappingSpec,
    *,
    state_path: Path | None,
    rejects_path: Path | None,
    batch_size: int,
) -> ImportPlan:
    fmt = spec.format or detect_format(path.name)
    layout = read_layout(path, spec, fmt)
    # JSON lines name their fields row by row: the first row cannot vouch for the others
    mapping = resolve(spec, layout.names, strict=fmt != "jsonl")
    return ImportPlan(
        path=path,
        layout=layout,
        mapping=mapping,
        state_path=state_path or default_state_path(path),
        rejects_path=rejects_path or Path(f"{path.name}.rejects.jsonl"),
        batch_size=batch_size,
    )


Progress = Callable[[int, int, Counts], None]  # (bytes read so far, rows this run, counts)


def run_import(
    plan: ImportPlan,
    client: Client,
    progress: Progress | None = None,
    *,
    fresh: bool = False,
) -> tuple[Counts, int]:
    """Import the file; returns the counts (including those of the interrupted runs it
    resumes) and the line it resumed at (1: from the start)."""
    identity = file_identity(plan.path)
    # a checkpoint is only valid for the same reading of the file (format, columns) and mapping
    fingerprint = hashlib.sha256(
        f"{plan.mapping.fingerprint()}|{plan.layout!r}".encode()
    ).hexdigest()[:16]
    state = None if fresh else load_state(plan.state_path, identity, fingerprint)
    counts = Counts()
    offset, line = 0, 1
    if state is not None:
        offset, line = int(state["offset"]), int(state["line"])
        saved = state["counts"]
        counts = Counts(
            **{
                k: int(saved[k])
                for k in ("rows", "accepted", "present", "rejected_local", "rejected_server")
            },
            token=int(saved.get("token") or 0),
            reasons=Counter(saved.get("reasons", {})),
        )
    resumed_at, rows_before = line, counts.rows
    rejects = _open_rejects(plan.rejects_path, state)
    batch: list[tuple[Record, dict[str, Any]]] = []

    def flush(end: int, next_line: int) -> None:
        if batch:
            _post(client, batch, counts, rejects)
            batch.clear()
        rejects.flush()
        save_state(
            plan.state_path,
            {
                "version": STATE_VERSION,
                "file": identity,
                "path": str(plan.path.resolve()),
                "mapping": fingerprint,
                "offset": end,
                "line": next_line,
                "counts": counts.as_json(),
                "rejects_bytes": rejects.tell(),
                "updated_at": time.time(),
            },
        )

    try:
        pending_end, pending_line = offset, line
        for record in records(plan.path, plan.layout, offset, line):
            counts.rows += 1
            problem = record.problem
            report = None
            if problem is None and record.row is not None:
                try:
                    report = build_report(record.row, plan.mapping)
                except RowProblem as exc:
                    problem = exc
            if report is None:
                assert problem is not None
                _reject_local(rejects, record, problem, counts)
            else:
                batch.append((record, report))
            pending_end, pending_line = record.end, record.line + record.lines
            if len(batch) >= plan.batch_size:
                flush(pending_end, pending_line)
            if progress is not None and counts.rows % 256 == 0:
                progress(record.end, counts.rows - rows_before, counts)
        flush(pending_end, pending_line)
        if progress is not None:
            progress(pending_end, counts.rows - rows_before, counts)
    finally:
        rejects.close()
    plan.state_path.unlink(missing_ok=True)
    if counts.rejected == 0:
        plan.rejects_path.unlink(missing_ok=True)
    return counts, resumed_at


def _open_rejects(path: Path, state: dict[str, Any] | None) -> IO[str]:
    """Fresh: an empty file. Resumed: cut back to what the checkpoint covered, so rows read
    again after an interruption are not listed twice."""
    if state is None or not path.exists():
        return path.open("w", encoding="utf-8")
    f = path.open("r+", encoding="utf-8")
    f.truncate(int(state.get("rejects_bytes", 0)))
    f.seek(0, os.SEEK_END)
    return f


def _reject_local(rejects: IO[str], record: Record, problem: RowProblem, counts: Counts) -> None:
    counts.rejected_local += 1
    counts.reasons[f"{problem.target}: {reason_of(problem.detail)}"] += 1
    entry = {
        "line": record.line,
        "rejected_by": "importer",
        "errors": [{"field": problem.target, "detail": problem.detail}],
        "row": record.row,
    }
    rejects.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


def _post(
    client: Client, batch: list[tuple[Record, dict[str, Any]]], counts: Counts, rejects: IO[str]
) -> None:
    results = client.post_reports([report for _, report in batch], chunk_size=len(batch))
    for (record, report), result in zip(batch, results, strict=True):
        status = int(result.get("status", 0))
        if status in (200, 202) and str(result.get("token", "")).isdigit():
            counts.token = max(counts.token, int(result["token"]))
        if status == 202:
            counts.accepted += 1
        elif status == 200:
            counts.present += 1
        else:
            counts.rejected_server += 1
            errors = result.get("errors") or [
                {"pointer": "/", "detail": result.get("detail") or result.get("title")}
            ]
            for error in errors[:3]:
                counts.reasons[
                    f"{error.get('pointer')}: {reason_of(str(error.get('detail')))}"
                ] += 1
            entry = {
                "line": record.line,
                "rejected_by": "server",
                "status": status,
                "report_id": report["report_id"],
                "errors": errors,
                "row": record.row,
            }
            rejects.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


# a quoted value: opens and closes outside a word, so the apostrophe of "server's" is prose
_QUOTED = re.compile(r"""(?<!\w)(?:'[^']*'|"[^"]*")(?!\w)""")


def reason_of(detail: str) -> str:
    """The whole reason with each quoted value masked, so that alike rows group under one
    line of the summary (the rejects file keeps every row's own detail)."""
    return _QUOTED.sub("'…'", detail).strip() or detail


# -- export -----------------------------------------------------------------------------


def run_export(
    client: Client,
    out: IO[str],
    fmt: str,
    *,
    as_of: str | None = None,
    recorded_as_of: str | None = None,
    page_size: int = 500,
) -> int:
    """Write every key's consensus (at `as_of`/`recorded_as_of`, default now); the count."""
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    count = 0
    for item in client.snapshot(as_of, recorded_as_of, page_size=page_size):
        if writer is not None:
            writer.writerow(export_csv_row(item))
        else:
            out.write(json.dumps(export_record(item), ensure_ascii=False) + "\n")
        count += 1
    return count
