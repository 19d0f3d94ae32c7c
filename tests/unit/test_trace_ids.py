"""Which trace id a request carries (services.infra.logs.trace_id_from)."""

from __future__ import annotations

from services.infra.logs import new_trace_id, trace_id_from

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_x_request_id_is_taken_as_given() -> None:
    assert trace_id_from({"x-request-id": "req-42/a:b"}) == "req-42/a:b"


def test_x_request_id_wins_over_traceparent() -> None:
    assert trace_id_from({"x-request-id": "mine", "traceparent": TRACEPARENT}) == "mine"


def test_traceparent_gives_its_trace_id_part() -> None:
    assert trace_id_from({"traceparent": TRACEPARENT}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from({"traceparent": TRACEPARENT.upper()}) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_malformed_ids_are_ignored_so_nothing_reaches_logs_or_headers() -> None:
    for bad in ("", " ", "has space", "new\nline", "x" * 129, "é"):
        assert trace_id_from({"x-request-id": bad}) is None
    for bad in (
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-01",
        "garbage",
    ):
        assert trace_id_from({"traceparent": bad}) is None


def test_a_new_id_has_the_shape_of_a_w3c_trace_id() -> None:
    made = new_trace_id()
    assert len(made) == 32 and int(made, 16) >= 0
    assert made != new_trace_id()
