"""Report input (the public shape of POST /v1/reports) and its normalisation.

`ReportIn` validates structure and types (pydantic); `normalise_report` turns a
valid report into plain `ClaimFacts` with deterministic ids, or raises
`ReportProblem` listing every bad field as a JSON pointer. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256 as _sha256
from typing import Annotated, Any, Literal

import msgspec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from shared.attributes import AttributeRegistry
from shared.codec import claim_to_dict, value_to_dict
from shared.events import stable_id
from shared.model import ClaimFacts, ValidTime, Value
from shared.timeaxes import iso
from shared.validtime import TimeProblem, parse_instant, parse_valid_time
from shared.values import ValueProblem, parse_value

_C0 = re.compile(r"[\x00-\x1f\x7f]")
_C0_EXCEPT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_CLAIMS_PER_REPORT = 50_000


def _no_control(text: str) -> str:
    if _C0.search(text):
        raise ValueError("control characters are not allowed")
    return text


def _no_control_except_whitespace(text: str) -> str:
    if _C0_EXCEPT_WHITESPACE.search(text):
        raise ValueError("control characters are not allowed")
    return text


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


Key = Annotated[
    str,
    Field(min_length=1, max_length=512),
    AfterValidator(_no_control),
    AfterValidator(_not_blank),
]
Name = Annotated[str, Field(max_length=1024), AfterValidator(_no_control)]
Prose = Annotated[str, Field(max_length=100_000), AfterValidator(_no_control_except_whitespace)]
Number = StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
SourceKind = Literal["news", "blog", "official", "think_tank", "social", "dataset", "other"]
Reliability = Literal["A", "B", "C", "D", "E", "F"]
ModalityIn = Literal["asserted", "reported", "estimated", "possible", "denied"]


class ValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: Number | None = None
    best: Number | None = None
    high: Number | None = None
    hedge: Name | None = None


class ValidTimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Name | None = None
    end: Name | None = None


class SourceIn(BaseModel):
    id: Key
    name: Name | None = None
    kind: SourceKind = "other"
    reliability: Reliability | None = None


class ClaimIn(BaseModel):
    subject: Key
    subject_label: Name | None = None
    attribute: Key
    value: Number | ValueIn | Name | None = None
    hedge: Name | None = None
    raw: Name | None = None
    unit: Name | None = None
    relative_to: Key | None = None
    valid_time: Name | ValidTimeIn | None = None
    attributed_to: Name | None = None
    cites: list[Name] = Field(default_factory=list, max_length=100)
    quote: Prose | None = None
    modality: ModalityIn = "asserted"
    credibility: Annotated[int, Field(ge=1, le=6)] | None = None


class ReportIn(BaseModel):
    report_id: Key | None = None
    source: SourceIn
    author: Name | None = None
    url: Name | None = None
    title: Name | None = None
    published_at: Name
    text: Prose | None = None
    # propose claims from `text` with the rule-based extractor and store them too,
    # marked machine-proposed (the consensus weighs them lower)
    extract: bool = False
    # the subject of every claim proposed from `text`: required with extract=true, because
    # the rules cannot tell what prose is about and a guessed subject files claims wrongly
    subject: Key | None = None
    # the limit is documented here and enforced by ingest, which answers 413 above it (a
    # size limit, like the body's), where pydantic's max_length would answer 422
    claims: list[ClaimIn] = Field(
        default_factory=list, json_schema_extra={"maxItems": MAX_CLAIMS_PER_REPORT}
    )


class ReportProblem(ValueError):
    """Every invalid field of a report, as (JSON pointer, detail) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {d}" for p, d in errors))
        self.errors = errors


def canonical_json(body: dict[str, Any]) -> str:
    """The body's one spelling (sorted keys, no spaces): what its hash is of, and what
    ingest stores, so a report is encoded once. Exactly `json.dumps(body, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)` (report ids are hashes of it: never change
    a byte), by json's C encoder built once (see _SORTED_JSON)."""
    if _CANONICAL_JSON is None:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "".join(_CANONICAL_JSON(body, 0))


_SORTED_MSGSPEC = msgspec.json.Encoder(order="sorted")


def canonical_report_json(report: ReportIn, body: dict[str, Any]) -> str:
    """`canonical_json(body)` of `body = report.model_dump(mode="json", exclude_none=True)`,
    the same characters, mostly by msgspec (a sixth of the cost; it was 6% of :batch's CPU,
    issue #21). msgspec writes what json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False) writes but for floats (1e16 where json writes 1e+16) and lone
    surrogates (it refuses them); a report holds floats only in its claims' values, so a
    report with one, or a string msgspec refuses, goes to json."""
    if not _has_float(report):
        try:
            return _SORTED_MSGSPEC.encode(body).decode()
        except (UnicodeEncodeError, msgspec.EncodeError, OverflowError, TypeError):
            pass
    return canonical_json(body)


def _has_float(report: ReportIn) -> bool:
    for claim in report.claims:
        value = claim.value
        if type(value) is float:
            return True
        if type(value) is ValueIn and float in (
            type(value.low),
            type(value.best),
            type(value.high),
        ):
            return True
    return False


def hash_of_canonical(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_hash(body: dict[str, Any]) -> str:
    return hash_of_canonical(canonical_json(body))


# json.dumps(obj, sort_keys=True) builds an encoder, then its C core, on every call; this is
# that C core with the same settings (", ", ": ", sorted keys, ASCII only, NaN allowed),
# built once. No circular-reference check: a validated model's fields hold no cycles.
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # untyped C function
_SORTED_JSON = (
    _C_ENCODER(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    if _C_ENCODER is not None
    else None
)


# the same for canonical_json: (",", ":"), sorted keys, UTF-8 (not ASCII-escaped), NaN allowed
_CANONICAL_JSON = (
    _C_ENCODER(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    if _C_ENCODER is not None
    else None
)


def claim_content(claim: ClaimIn) -> str:
    """What a claim's id hashes: exactly `json.dumps(claim.model_dump(mode="json"),
    sort_keys=True)`, the spelling every stored claim id was made from (ids are content
    hashes that existing databases hold: never change a byte of it), at a fifth of the cost.
    A validated ClaimIn's fields are JSON values already (str, int, float, list of str,
    None) or the two nested models, whose own fields are: their `__dict__` is the dump.
    The usual shapes are spelled field by field (_spelled_content); anything else by json's
    C encoder, built once."""
    if _SORTED_JSON is None:  # a Python without json's C encoder
        return json.dumps(claim.model_dump(mode="json"), sort_keys=True)
    if _SPELLED:
        spelled = _spelled_content(claim.__dict__)
        if spelled is not None:
            return spelled
    fields = dict(claim.__dict__)
    if isinstance(claim.value, ValueIn):
        fields["value"] = claim.value.__dict__
    if isinstance(claim.valid_time, ValidTimeIn):
        fields["valid_time"] = claim.valid_time.__dict__
    return "".join(_SORTED_JSON(fields, 0))


# json.dumps' pieces: a string as it writes one (C, ASCII-escaped), an int and a float as it
# writes them (int.__repr__, float.__repr__: the C encoder calls the same; a float here is
# finite, the models refuse NaN and infinities)
_ASCII = json.encoder.encode_basestring_ascii
_INT = int.__repr__
_FLOAT = float.__repr__


def _text(value: str | None) -> str:
    return "null" if value is None else _ASCII(value)


def _number(value: Any) -> str | None:
    kind = type(value)
    if kind is int:
        return _INT(value)
    if kind is float:
        return _FLOAT(value)
    return "null" if value is None else None


def _spelled_content(d: dict[str, Any]) -> str | None:
    """json.dumps(d, sort_keys=True) of a ClaimIn's fields, spelled out for the usual
    shapes; None for anything else (the caller uses the encoder)."""
    value = d["value"]
    kind = type(value)
    if kind is str:
        value_json: str | None = _ASCII(value)
    elif kind is ValueIn:
        v = value.__dict__
        best, high, low = _number(v["best"]), _number(v["high"]), _number(v["low"])
        if best is None or high is None or low is None:
            return None
        value_json = (
            f'{{"best": {best}, "hedge": {_text(v["hedge"])}, "high": {high}, "low": {low}}}'
        )
    else:
        value_json = _number(value)
        if value_json is None:
            return None
    valid_time = d["valid_time"]
    if type(valid_time) is ValidTimeIn:
        t = valid_time.__dict__
        valid_json = f'{{"end": {_text(t["end"])}, "start": {_text(t["start"])}}}'
    elif valid_time is None or type(valid_time) is str:
        valid_json = _text(valid_time)
    else:
        return None
    credibility = d["credibility"]
    if credibility is not None and type(credibility) is not int:
        return None
    cites = d["cites"]
    if type(cites) is not list:
        return None
    return (
        f'{{"attribute": {_ASCII(d["attribute"])}, "attributed_to": {_text(d["attributed_to"])}, '
        f'"cites": [{", ".join(map(_ASCII, cites))}], '
        f'"credibility": {"null" if credibility is None else _INT(credibility)}, '
        f'"hedge": {_text(d["hedge"])}, "modality": {_ASCII(d["modality"])}, '
        f'"quote": {_text(d["quote"])}, "raw": {_text(d["raw"])}, '
        f'"relative_to": {_text(d["relative_to"])}, "subject": {_ASCII(d["subject"])}, '
        f'"subject_label": {_text(d["subject_label"])}, "unit": {_text(d["unit"])}, '
        f'"valid_time": {valid_json}, "value": {value_json}}}'
    )


# the fields _spelled_content writes, in json's sorted order; if the models change, the
# encoder spells every claim until it is brought up to date
_SPELLED = (
    sorted(ClaimIn.model_fields)
    == [
        "attribute",
        "attributed_to",
        "cites",
        "credibility",
        "hedge",
        "modality",
        "quote",
        "raw",
        "relative_to",
        "subject",
        "subject_label",
        "unit",
        "valid_time",
        "value",
    ]
    and sorted(ValueIn.model_fields) == ["best", "hedge", "high", "low"]
    and sorted(ValidTimeIn.model_fields) == ["end", "start"]
)


def report_id_for(report: ReportIn, body_hash: str) -> str:
    return report.report_id or stable_id("r_", body_hash)


def normalise_report(
    report: ReportIn,
    report_id: str,
    registry: AttributeRegistry,
    *,
    tolerance: float = 0.10,
    future_tolerance_s: float = 86_400.0,
    now: datetime | None = None,
) -> tuple[datetime, list[ClaimFacts]]:
    errors: list[tuple[str, str]] = []
    published_at = _published(report, errors, future_tolerance_s, now)
    if published_at is None:
        raise ReportProblem(errors)
    claims: list[ClaimFacts] = []
    for i, claim in enumerate(report.claims):
        try:
            claims.append(_claim(report, report_id, i, claim, published_at, registry, tolerance))
        except (ValueProblem, TimeProblem) as exc:
            errors.append(_claim_error(i, exc))
    if report.extract:
        claims += _extracted(report, report_id, published_at, registry, tolerance, errors)
    if errors:
        raise ReportProblem(errors)
    if not claims:
        raise ReportProblem([("/claims", "a report needs claims (or text with extract=true)")])
    return published_at, claims


def normalise_report_records(
    report: ReportIn,
    report_id: str,
    registry: AttributeRegistry,
    *,
    tolerance: float = 0.10,
    future_tolerance_s: float = 86_400.0,
    now: datetime | None = None,
) -> tuple[datetime, list[dict[str, Any]]]:
    """`normalise_report` with each claim as `claim_to_dict` of its ClaimFacts: the dict a
    ClaimAsserted event carries, equal key for key and in the same order. Built directly,
    without the ClaimFacts: ingest made one per claim only to turn it into this dict, ~7 us
    of ~25 a claim (issue #21). Same errors, same ids."""
    errors: list[tuple[str, str]] = []
    published_at = _published(report, errors, future_tolerance_s, now)
    if published_at is None:
        raise ReportProblem(errors)
    shared = dict(_RECORD_TEMPLATE)  # the report's fields, in claim_to_dict's order
    shared.update(
        report_id=report_id,
        source_id=report.source.id,
        published_at=iso(published_at),
        source_kind=report.source.kind,
        source_reliability=report.source.reliability,
    )
    records: list[dict[str, Any]] = []
    for i, claim in enumerate(report.claims):
        try:
            claim_id, attribute, value, valid_time = _claim_parts(
                report_id, i, claim, published_at, registry, tolerance
            )
        except (ValueProblem, TimeProblem) as exc:
            errors.append(_claim_error(i, exc))
            continue
        if valid_time is not None:  # the rarer shape: claim_to_dict itself
            records.append(
                claim_to_dict(
                    _facts(
                        report,
                        report_id,
                        claim,
                        published_at,
                        claim_id,
                        attribute,
                        value,
                        valid_time,
                    )
                )
            )
            continue
        record = shared.copy()
        record["claim_id"] = claim_id
        record["subject"] = claim.subject
        record["attribute"] = attribute
        record["value"] = _value_dict(value)
        record["attributed_to"] = claim.attributed_to or report.source.id
        record["cites"] = list(claim.cites)
        record["quote"] = claim.quote
        record["modality"] = claim.modality
        record["credibility"] = claim.credibility
        records.append(record)
    if report.extract:
        extracted = _extracted(report, report_id, published_at, registry, tolerance, errors)
        records += [claim_to_dict(c) for c in extracted]
    if errors:
        raise ReportProblem(errors)
    if not records:
        raise ReportProblem([("/claims", "a report needs claims (or text with extract=true)")])
    return published_at, records


def _claim_error(index: int, exc: ValueProblem | TimeProblem) -> tuple[str, str]:
    return (f"/claims/{index}/{exc.field.replace('.', '/')}", exc.detail)


# claim_to_dict of a claim with every defaulted field at its default: the keys in order,
# and the values of the fields a report never sets (rank, retracted, notes, ...)
_RECORD_TEMPLATE = claim_to_dict(
    ClaimFacts(
        claim_id="",
        report_id="",
        subject="",
        attribute="",
        source_id="",
        published_at=datetime(2000, 1, 1, tzinfo=UTC),
        value=Value(None, None, None, "exact", ""),
        attributed_to="",
    )
)

# value_to_dict of the Values parse_value remembers (it answers a repeated phrase with the
# same instance): by identity, the instance kept with its dict so an id is never reused
_VALUE_DICTS: dict[int, tuple[Value, dict[str, Any]]] = {}


def _value_dict(value: Value) -> dict[str, Any]:
    found = _VALUE_DICTS.get(id(value))
    if found is None or found[0] is not value:
        if len(_VALUE_DICTS) >= 65_536:
            _VALUE_DICTS.clear()
        found = _VALUE_DICTS[id(value)] = (value, value_to_dict(value))
    return dict(found[1])  # each event its own dict


MIN_EXTRACTION_CONFIDENCE = 0.5


def _extracted(
    report: ReportIn,
    report_id: str,
    published_at: datetime,
    registry: AttributeRegistry,
    tolerance: float,
    errors: list[tuple[str, str]],
) -> list[ClaimFacts]:
    from shared.extract import extract_claims  # heavy-ish: only when asked for

    if not report.text:
        errors.append(("/text", "extract=true needs the report's text"))
    if not report.subject:
        errors.append(("/subject", "extract=true needs the subject of the proposed claims"))
    if not report.text or not report.subject:
        return []
    out = []
    start = len(report.claims)
    candidates = extract_claims(
        report.text,
        published_at=published_at,
        source_id=report.source.id,
        registry=registry,
        subject=report.subject,
    )
    for offset, cand in enumerate(
        c for c in candidates if c["confidence"] >= MIN_EXTRACTION_CONFIDENCE
    ):
        value = cand["value"]
        claim = ClaimIn.model_validate(
            {
                "subject": cand["subject"],
                "subject_label": cand.get("subject_label"),
                "attribute": cand["attribute"],
                "value": value.get("text") or {k: value.get(k) for k in ("low", "best", "high")},
                "hedge": None if value.get("text") else cand.get("hedge"),
                "raw": cand.get("raw"),
                "relative_to": cand.get("relative_to"),
                "valid_time": cand.get("valid_time"),
                "attributed_to": cand.get("attributed_to"),
                "quote": cand.get("quote"),
                "modality": cand.get("modality", "asserted"),
            }
        )
        try:
            facts = _claim(
                report, report_id, start + offset, claim, published_at, registry, tolerance
            )
        except (ValueProblem, TimeProblem):
            continue  # a proposal that does not normalise is not stored
        out.append(replace(facts, machine_proposed=True))
    return out


def _published(
    report: ReportIn,
    errors: list[tuple[str, str]],
    future_tolerance_s: float = 86_400.0,
    now: datetime | None = None,
) -> datetime | None:
    try:
        published = parse_instant(report.published_at, field="published_at")[0]
    except TimeProblem as exc:
        errors.append(("/published_at", exc.detail))
        return None
    limit = (now or datetime.now(UTC)) + timedelta(seconds=future_tolerance_s)
    aware = published if published.tzinfo else published.replace(tzinfo=UTC)
    if aware > limit:
        errors.append(
            (
                "/published_at",
                f"is more than {future_tolerance_s:g} s in the future "
                f"(latest accepted: {limit.isoformat(timespec='seconds')})",
            )
        )
        return None
    return published


def _claim(
    report: ReportIn,
    report_id: str,
    index: int,
    claim: ClaimIn,
    published_at: datetime,
    registry: AttributeRegistry,
    tolerance: float,
) -> ClaimFacts:
    claim_id, attribute, value, valid_time = _claim_parts(
        report_id, index, claim, published_at, registry, tolerance
    )
    return _facts(report, report_id, claim, published_at, claim_id, attribute, value, valid_time)


def _claim_parts(
    report_id: str,
    index: int,
    claim: ClaimIn,
    published_at: datetime,
    registry: AttributeRegistry,
    tolerance: float,
) -> tuple[str, str, Value, ValidTime | None]:
    """What normalising a claim computes: its id, canonical attribute, value, valid time."""
    # a registered name or alias, whatever its case and spacing, is stored under the
    # canonical attribute ("death toll", "Killed" -> killed); an unknown attribute is
    # opaque text, stored exactly as posted
    attribute = registry.canonical(claim.attribute)
    raw_value: Any = claim.value.model_dump() if isinstance(claim.value, ValueIn) else claim.value
    spec = registry.get(attribute)
    value = parse_value(
        raw_value,
        hedge=claim.hedge,
        raw=claim.raw,
        unit=claim.unit or (spec.unit if spec else None),
        kind=spec.kind if spec else None,
        relative_to=claim.relative_to,
        tolerance=tolerance,
        registry=registry,
    )
    valid_in = (
        claim.valid_time.model_dump()
        if isinstance(claim.valid_time, ValidTimeIn)
        else (claim.valid_time)
    )
    valid_time = parse_valid_time(valid_in, reference=published_at.date())
    content = claim_content(claim)
    # stable_id("c_", report_id, index, content), spelled out: 2 us of ~40 a claim in :batch
    claim_id = "c_" + _sha256(f"{report_id}\x1f{index}\x1f{content}".encode()).hexdigest()[:26]
    return claim_id, attribute, value, valid_time


def _facts(
    report: ReportIn,
    report_id: str,
    claim: ClaimIn,
    published_at: datetime,
    claim_id: str,
    attribute: str,
    value: Value,
    valid_time: ValidTime | None,
) -> ClaimFacts:
    return ClaimFacts(
        claim_id=claim_id,
        report_id=report_id,
        subject=claim.subject,
        attribute=attribute,
        source_id=report.source.id,
        published_at=published_at,
        value=value,
        attributed_to=claim.attributed_to or report.source.id,
        source_kind=report.source.kind,
        source_reliability=report.source.reliability,
        cites=tuple(claim.cites),
        quote=claim.quote,
        modality=claim.modality,
        credibility=claim.credibility,
        valid_time=valid_time,
    )
