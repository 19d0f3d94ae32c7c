"""POST /v1/reports with text and extract=true stores machine-proposed claims."""

from __future__ import annotations

import pytest

from shared.attributes import AttributeRegistry
from shared.reports import ReportIn, ReportProblem, normalise_report

REGISTRY = AttributeRegistry.load()
TEXT = (
    "At the Munich Security Conference on Friday, Ukrainian President Volodymyr Zelenskyy "
    "announced that Russia could be deploying up to 3,000 additional North Korean troops "
    "to the Kursk front line."
)


def test_extracted_claims_are_marked_machine_proposed() -> None:
    report = ReportIn.model_validate(
        {
            "source": {"id": "blog"},
            "published_at": "2025-02-17",
            "text": TEXT,
            "extract": True,
            "subject": "dprk-troops-kursk",
        }
    )
    _, claims = normalise_report(report, "r1", REGISTRY)
    assert claims and all(c.machine_proposed for c in claims)
    assert {c.subject for c in claims} == {"dprk-troops-kursk"}
    found = {(c.attribute, c.value.high, c.modality) for c in claims}
    assert ("additional_deployment", 3000, "possible") in found


def test_a_report_without_claims_or_extraction_is_rejected() -> None:
    report = ReportIn.model_validate(
        {"source": {"id": "blog"}, "published_at": "2025-02-17", "text": TEXT}
    )
    with pytest.raises(ReportProblem) as err:
        normalise_report(report, "r1", REGISTRY)
    assert err.value.errors[0][0] == "/claims"


def test_extraction_without_a_subject_is_refused_naming_the_field() -> None:
    # issue #20: proposed claims were stored under the subject "unknown"
    report = ReportIn.model_validate(
        {"source": {"id": "blog"}, "published_at": "2025-02-17", "text": TEXT, "extract": True}
    )
    with pytest.raises(ReportProblem) as err:
        normalise_report(report, "r1", REGISTRY)
    assert [p for p, _ in err.value.errors] == ["/subject"]
