"""Tabular rows -> reports: formats, column mappings, and the pure row -> report mapping.

Used by `claimledger import`. A *mapping* says which column (or constant) fills each report or
claim field ("target"). Targets are dotted paths into the public report shape
(docs/architecture.md §6): report fields (`source.id`, `published_at`, ...) and the one
claim's fields (`subject`, `attribute`, `value`, ...). Columns that are named like a
target, or like the fields of the truth-discovery tuple (source, object, attribute, value,
timestamp) and its common spellings (`ObjectID`, `PropertyID`, `PropertyValue`, `SourceID`,
`TimeStamp`), map by themselves.

Every row becomes one report with one claim and a deterministic id (a hash of its content),
so posting it again is answered "already accepted" (200) and never stored twice. One report
per row, not rows grouped into reports: the server refuses a report whole when one of its
claims is bad, so per-row reports keep acceptance and rejects per row, and ids depend on the
row alone (not on batch sizes or neighbours). Grouping would save little: in the population
benchmark consecutive rows share source and date in runs of 1.34 (bench/RESULTS.md). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

Format: TypeAlias = Literal["csv", "tsv", "jsonl", "td"]
FORMATS: tuple[Format, ...] = ("csv", "tsv", "jsonl", "td")

REPORT_TARGETS = (
    "source.id",
    "source.name",
    "source.kind",
    "source.reliability",
    "published_at",
    "author",
    "url",
    "title",
)
CLAIM_TARGETS = (
    "subject",
    "subject_label",
    "attribute",
    "value",
    "value.low",
    "value.best",
    "value.high",
    "hedge",
    "raw",
    "unit",
    "relative_to",
    "valid_time",
    "valid_time.start",
    "valid_time.end",
    "attributed_to",
    "quote",
    "modality",
    "credibility",
)
TARGETS = REPORT_TARGETS + CLAIM_TARGETS
REQUIRED = ("source.id", "published_at", "subject", "attribute")
VALUE_TARGETS = ("value", "value.low", "value.best", "value.high", "raw")

# the truth-discovery tuple and the column names datasets commonly give its parts
# (DAFNA/AllegatorTrack: ObjectID, PropertyID, PropertyValue, SourceID, TimeStamp)
_ALIASES: dict[str, str] = {
    "source": "source.id",
    "sourceid": "source.id",
    "sourcename": "source.name",
    "contributor": "source.id",
    "object": "subject",
    "objectid": "subject",
    "entity": "subject",
    "subject": "subject",
    "attribute": "attribute",
    "attr": "attribute",
    "property": "attribute",
    "propertyid": "attribute",
    "propertyname": "attribute",
    "predicate": "attribute",
    "value": "value",
    "propertyvalue": "value",
    "timestamp": "published_at",
    "time": "published_at",
    "date": "published_at",
    "publishedat": "published_at",
    **{re.sub(r"[^a-z0-9]", "", t): t for t in TARGETS},
}
TD_COLUMNS = ("source", "object", "attribute", "value", "timestamp")
# value cells that mean "no value" (as pandas reads them, plus "*" and "-" seen in the weather
# set): the row is not a claim, so it is rejected as empty rather than stored as a category
DEFAULT_NA = ("NA", "N/A", "n/a", "#N/A", "null", "NULL", "None", "NaN", "nan", "-", "*")

# formats a timestamp column often has besides ISO 8601, tried in order (no guessing between
# day-first and month-first dates: such files need --time-format)
_KNOWN_TIME_FORMATS = (
    "%a %b %d %H:%M:%S %Y",  # ctime: "fri jan 29 08:45:00 2010"
    "%a %b %d %H:%M:%S %Z %Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
_ISO_START = re.compile(r"\d{4}(-\d{2}){0,2}([Tt ].*)?")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


class MappingProblem(ValueError):
    """The mapping cannot work for any row (unknown target, missing required field...)."""


class RowProblem(ValueError):
    """One row cannot become a report: which target (field) and why."""

    def __init__(self, target: str, detail: str) -> None:
        super().__init__(f"{target}: {detail}")
        self.target = target
        self.detail = detail


@dataclass(frozen=True)
class ColumnMapping:
    """target -> column name, target -> constant text, and how to read timestamps."""

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    time_format: str | None = None
    na: tuple[str, ...] = DEFAULT_NA

    def fingerprint(self) -> str:
        """Changes whenever the mapping would build different reports."""
        body = {"c": self.columns, "k": self.constants, "t": self.time_format, "n": self.na}
        return hashlib.sha256(_canonical(body).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MappingSpec:
    """What the user asked for, before the file's columns are known (flags + mapping file)."""

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    time_format: str | None = None
    names: tuple[str, ...] | None = None  # column names of a headerless file
    format: Format | None = None
    na: tuple[str, ...] | None = None  # None: DEFAULT_NA


def detect_format(filename: str) -> Format:
    """The format from the file's extension (`.gz` and the like are not read)."""
    name = filename.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".txt", ".td", ".dat", ".tuples")):
        return "td"
    raise MappingProblem(
        f"cannot tell the format of {filename!r} from its extension; pass --format "
        f"({' | '.join(FORMATS)})"
    )


def parse_assignments(items: Sequence[str], option: str) -> dict[str, str]:
    """`target=text` pairs (from --map or --set), each target a known one."""
    out: dict[str, str] = {}
    for item in items:
        target, sep, text = item.partition("=")
        target = target.strip()
        if not sep or not target:
            raise MappingProblem(f"{option} {item!r}: expected TARGET=TEXT")
        _check_target(target, option)
        out[target] = text.strip() if option == "--map" else text
    return out


def _check_target(target: str, where: str) -> None:
    if target not in TARGETS:
        raise MappingProblem(f"{where}: unknown field {target!r}; one of {', '.join(TARGETS)}")


def parse_mapping_file(text: str, filename: str) -> MappingSpec:
    """A TOML or JSON mapping file: `[map]` target = column, `[set]` target = constant,
    and optionally `format`, `columns` (names for a headerless file), `time_format`."""
    try:
        data = json.loads(text) if filename.lower().endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise MappingProblem(f"{filename}: {exc}") from None
    if not isinstance(data, dict):
        raise MappingProblem(f"{filename}: expected a table/object at the top")
    unknown = set(data) - {"map", "set", "format", "columns", "time_format", "na"}
    if unknown:
        raise MappingProblem(f"{filename}: unknown keys {sorted(unknown)}")
    columns = data.get("map", {})
    constants = data.get("set", {})
    for section, table in (("map", columns), ("set", constants)):
        if not isinstance(table, dict):
            raise MappingProblem(f"{filename}: [{section}] must be a table of target = text")
        for target in table:
            _check_target(target, f"{filename} [{section}]")
    if any(not isinstance(v, str) for v in columns.values()):
        raise MappingProblem(f"{filename}: [map] values are column names (text)")
    fmt = data.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingProblem(f"{filename}: format must be one of {', '.join(FORMATS)}")
    names = data.get("columns")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
    ):
        raise MappingProblem(f"{filename}: columns must be a list of names")
    time_format = data.get("time_format")
    if time_format is not None and not isinstance(time_format, str):
        raise MappingProblem(f"{filename}: time_format must be text")
    na = data.get("na")
    if na is not None and (not isinstance(na, list) or not all(isinstance(n, str) for n in na)):
        raise MappingProblem(f"{filename}: na must be a list of texts")
    return MappingSpec(
        columns=dict(columns),
        constants=dict(constants),
        time_format=time_format,
        names=tuple(names) if names is not None else None,
        format=fmt,
        na=tuple(na) if na is not None else None,
    )


def merge_specs(base: MappingSpec, override: MappingSpec) -> MappingSpec:
    """Flags (`override`) win over the mapping file (`base`), target by target."""
    return MappingSpec(
        columns={**base.columns, **override.columns},
        constants={**base.constants, **override.constants},
        time_format=override.time_format or base.time_format,
        names=override.names or base.names,
        format=override.format or base.format,
        na=override.na if override.na is not None else base.na,
    )


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def looks_like_header(fields: Sequence[str]) -> bool:
    """A first line whose every field is a known column name is a header, not data."""
    return bool(fields) and all(_normal(f) in _ALIASES for f in fields)


def td_columns(count: int) -> tuple[str, ...]:
    """Names of a headerless truth-discovery line's fields: source, object, attribute,
    value and, when there is a fifth, timestamp."""
    if count < 4:
        raise MappingProblem(
            f"a truth-discovery line needs source, object, attribute, value[, timestamp]; "
            f"the first has {count} field(s) (name them with --columns)"
        )
    return TD_COLUMNS[: min(count, 5)]


def split_td_line(line: str, tabbed: bool, count: int) -> list[str]:
    """Fields of a tuple line: TAB-separated when the file uses TABs (fields may then hold
    spaces), else whitespace-separated with the last field taking the rest of the line
    (a timestamp such as "fri jan 29 08:45:00 2010")."""
    text = line.rstrip("\r\n")
    if tabbed:
        return [f.strip() for f in text.split("\t")]
    return text.split(None, count - 1)


def resolve(spec: MappingSpec, available: Sequence[str], *, strict: bool = True) -> ColumnMapping:
    """The mapping for a file with these column names: explicit --map entries, then columns
    that name a target by themselves; fails when a required field has neither a column
    nor a constant. `strict`: every mapped column must be among `available`."""
    columns = dict(spec.columns)
    missing = [c for c in columns.values() if c not in available]
    if missing and strict:
        raise MappingProblem(
            f"no column(s) {', '.join(map(repr, missing))} in the file; it has "
            f"{', '.join(map(repr, available))}"
        )
    taken = set(columns) | set(spec.constants)
    for name in available:
        target = _ALIASES.get(_normal(name))
        if target is not None and target not in taken:
            columns[target] = name
            taken.add(target)
    lacking = [t for t in REQUIRED if t not in taken]
    if not any(t in taken for t in VALUE_TARGETS):
        lacking.append("value")
    if lacking:
        hints = {
            "published_at": " (a dataset without dates: --set published_at=2024-01-01)",
        }
        raise MappingProblem(
            "nothing fills "
            + ", ".join(f"{t}{hints.get(t, '')}" for t in lacking)
            + f"; map a column (--map {lacking[0]}=COLUMN) or set a constant "
            f"(--set {lacking[0]}=TEXT). Columns: {', '.join(available) or '(none)'}"
        )
    return ColumnMapping(
        columns=columns,
        constants=dict(spec.constants),
        time_format=spec.time_format,
        na=spec.na if spec.na is not None else DEFAULT_NA,
    )


def flatten_keys(obj: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of a JSON object's fields, one level of nesting deep."""
    out: list[str] = []
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix:
            out += flatten_keys(value, f"{name}.")
        else:
            out.append(name)
    return out


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    node: Any = row
    for part in column.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def coerce_number(text: str) -> int | float | str:
    """A cell that is a plain number is sent as a JSON number; anything else as a phrase
    the server reads ("about 5,000", "10 mi", "between 3 and 4")."""
    s = text.strip()
    if _INT.fullmatch(s):  # exact at any size (the server reads numbers as Python ints)
        return int(s)
    if _FLOAT.fullmatch(s):
        return float(s)
    return s


def normalise_instant(text: str, time_format: str | None) -> str:
    """ISO 8601 passes through (the server checks it); `time_format` (strptime) or a few
    unambiguous common forms become ISO 8601, naive times read as UTC."""
    s = text.strip()
    formats = (time_format,) if time_format else _KNOWN_TIME_FORMATS
    if not time_format and _ISO_START.fullmatch(s):
        return s
    for fmt in formats:
        try:
            parsed = datetime.strptime(s, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.isoformat()
    hint = (
        f"does not match --time-format {time_format}"
        if time_format
        else "is not ISO 8601 nor a known form; pass --time-format (strptime, e.g. %d/%m/%Y)"
    )  # only the value is quoted: the import summary groups rows by the rest
    raise RowProblem("published_at", f"{s!r} {hint}")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def _value(value: Any, target: str, na: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value.strip() in na:
        return None
    if isinstance(value, bool):
        raise RowProblem(target, "a value must be a number or a phrase, not true/false")
    if isinstance(value, int | float) or (isinstance(value, dict) and target == "value"):
        return value
    text = _text(value)
    if text is None:
        return None
    return coerce_number(text) if target != "raw" else text.strip()


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        node = body.setdefault(head, {})
        if not isinstance(node, dict):  # e.g. value given whole and value.low too
            raise RowProblem(path, f"{head} is given both whole and by parts")
        node[rest] = value
    else:
        body[head] = value


def build_report(row: Mapping[str, Any], mapping: ColumnMapping) -> dict[str, Any]:
    """The report (one claim) a row stands for, with a deterministic `report_id`."""
    fields: dict[str, Any] = {}
    for target in TARGETS:
        raw: Any
        if target in mapping.columns:
            raw = _lookup(row, mapping.columns[target])
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                raw = mapping.constants.get(target)
        else:
            raw = mapping.constants.get(target)
        if raw is None:
            continue
        if target in VALUE_TARGETS:
            value = _value(raw, target, mapping.na)
        elif target == "credibility":
            text = _text(raw)
            if text is None or not _INT.fullmatch(text.strip()):
                raise RowProblem(target, f"{raw!r} is not a whole number 1-6")
            value = int(text)
        else:
            value = _text(raw)
            if value is not None and target != "quote":
                value = value.strip()
        if value is None:
            continue
        fields[target] = value
    for target in REQUIRED:
        if target not in fields:
            raise RowProblem(target, "empty")
    if not any(t in fields for t in VALUE_TARGETS):
        raise RowProblem("value", "empty or a missing-value marker (--na)")
    fields["published_at"] = normalise_instant(fields["published_at"], mapping.time_format)
    report: dict[str, Any] = {}
    claim: dict[str, Any] = {}
    for target, value in fields.items():
        _set(report if target in REPORT_TARGETS else claim, target, value)
    report["claims"] = [claim]
    report = {"report_id": report_id(report), **report}
    return report


def report_id(report: Mapping[str, Any]) -> str:
    """`import:` + a hash of the report's content: the same row gets the same id in any
    file, at any position, on any run (so a duplicate row is stored once)."""
    body = {k: v for k, v in report.items() if k != "report_id"}
    return "import:" + hashlib.sha256(_canonical(body).encode()).hexdigest()[:32]


def _canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- export -----------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "subject",
    "attribute",
    "version",
    "low",
    "best",
    "high",
    "conservative",
    "value",
    "unit",
    "status",
    "support",
    "dissent",
    "explanation",
)


def export_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """The exported columns of one snapshot item (lists kept as lists)."""
    return {c: item.get(c) for c in EXPORT_COLUMNS}


def export_csv_row(item: Mapping[str, Any]) -> list[str]:
    """One CSV row: claim id lists joined by `;`, absent values empty."""
    out: list[str] = []
    for column in EXPORT_COLUMNS:
        value = item.get(column)
        if value is None:
            out.append("")
        elif isinstance(value, list):
            out.append(";".join(str(v) for v in value))
        elif isinstance(value, dict):
            out.append(_canonical(value))
        else:
            out.append(str(value))
    return out
