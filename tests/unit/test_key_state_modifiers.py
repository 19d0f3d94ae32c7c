"""A key's claims as of a time, with the retractions, assessments, ratings and learned
scores made by then (services.reconcile.store.KeyState.inputs_at): what the reconciler's
consensus sees. Found through an index by target (a claim's own modifiers, its source's
latest rating and learned score), they must be exactly what applying every modifier of
the key made by that time, in order, gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconcile.store import KeyState, Modifier, _modified
from shared.model import ClaimFacts
from tests.unit.test_consensus import claim, exact

SOURCES = ("src-a", "src-b", "src-c")
TIMES = ("2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2026-01-01")


def key_state(claims: list[ClaimFacts], modifiers: list[Modifier]) -> KeyState:
    state = KeyState("dprk-troops-kursk", "personnel_deployed")
    for c in claims:
        state.claims[c.claim_id] = c
        state.published[c.claim_id] = "2025-01-15"
    state.modifiers = sorted(modifiers)
    return state


def modifier(n: int, effective: str, kind: str, target: str) -> Modifier:
    data: dict[str, Any] = {"effective_at": effective, "reason": f"r{n}"}
    if kind == "rating":
        data["reliability"] = "ABCDEF"[n % 6]
    elif kind == "learned":
        data["score"] = 0.5 + n / 100
        if n % 3 == 0:
            data["copy_of"] = "src-a"
    elif kind == "assessment":
        data["rank"] = ("preferred", "deprecated", None)[n % 3]
        data["credibility"] = n % 6 or None
    return (effective, f"2026-01-0{1 + n % 9}", f"m{n:03d}", kind, target, data)


modifiers = st.lists(
    st.tuples(
        st.sampled_from(TIMES),
        st.sampled_from(("rating", "learned", "retraction", "assessment")),
        st.sampled_from((*SOURCES, "c0", "c1", "c2", "c3")),
    ),
    max_size=12,
)


def claims_of_sources() -> list[ClaimFacts]:
    return [
        claim(f"c{i}", exact(1000 + i), f"Origin {i}", source_id=SOURCES[i % 3]) for i in range(4)
    ]


@settings(max_examples=300)
@given(modifiers, st.sampled_from((*TIMES, "2024-12-31", "2027-01-01")))
def test_claims_as_of_a_time_are_every_modifier_made_by_then_applied_in_order(
    made: list[tuple[str, str, str]], t: str
) -> None:
    claims = claims_of_sources()
    mods = [modifier(n, *m) for n, m in enumerate(made)]
    state = key_state(claims, mods)
    for _ in range(2):  # the index is kept between evaluations: still the same answer
        seen, _memo = state.inputs_at(t)
        by_t = [m for m in sorted(mods) if m[0] <= t]
        expected = [_modified(c, by_t) for c in claims if state.published[c.claim_id] <= t]
        assert seen == expected
