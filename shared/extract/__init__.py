"""Propose claims from the raw text of a report (pure: no I/O, no framework objects).

`extract_claims(text, published_at=...)` finds value phrases with shared.values, maps the
words around them to registry attributes, resolves world time with shared.validtime against
the publication date, and reads who said it ("according to X", "X said", ", citing X").
Everything is a rule; each candidate says so (`extraction: {method: "rules", version}`)
and carries a confidence so that a person reviews before anything is posted.
"""

from shared.extract._core import (
    EXTRACTION_VERSION,
    ExtractionStopped,
    attribution,
    extract_claims,
    modality,
)

__all__ = ["EXTRACTION_VERSION", "ExtractionStopped", "attribution", "extract_claims", "modality"]
