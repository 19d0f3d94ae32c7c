"""Consensus engine: every claim of one (subject, attribute) -> one explainable result.

Pure and deterministic (no I/O, no clock, no randomness): claims are processed in
claim-id order, ties are broken by stable keys and sums are exact, so the same
claims in any order produce an equal ConsensusResult.

Pipeline (one module each):
- _admit: exclusions with reasons (retracted, deprecated, denied, other attribute,
  wrong kind, unresolved relative claim, unusable numbers); relative claims
  resolved against `related` into bounds; weights (_weights).
- _cluster: independence clusters (same origin, citations, detected copies);
  each cluster votes once with its most reliable, most precise member and the
  maximum (not the sum) of its members' weights.
- _numeric: weighted median in log space for best, hull of the consistent
  clusters clipped by one-sided bounds for low/high, ACLED-style conservative.
- _vote: weighted vote with value aliases for categorical and state attributes.
- _segments: valid-time segments (see that module for the segmentation rules).
- _explain: the one-sentence explanation (and one per segment, for valid_at).

Staleness is judged at read time (shared.staleness) from `newest_support_at`: a
stored result cannot know when it will be read.

Top-level low/best/high fuse every included claim whatever its valid time; for
state and categorical attributes with timed claims the top-level value is the
latest segment's.
"""

from shared.consensus._admit import claim_note
from shared.consensus._engine import METHOD, METHOD_VERSION, compute_consensus

__all__ = ["METHOD", "METHOD_VERSION", "claim_note", "compute_consensus"]
