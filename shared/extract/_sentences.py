"""Sentence spans of running text: [start, end) offsets, trimmed of surrounding space."""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that end with a full stop without ending the sentence.
_ABBREVIATIONS = _words(
    """mr mrs ms dr prof gen lt col maj capt sgt cpl pvt adm cmdr brig sen rep gov pres st mt
    jr sr no nos vs etc approx est fig jan feb mar apr jun jul aug sep sept oct nov dec
    e.g i.e u.s u.k u.n a.m p.m inc ltd co corp dept univ"""
)
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n\s*")
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split on . ! ? before a capital or digit, and on line breaks; keeps abbreviations."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        cut = m.start()
        if text[cut] == ".":
            w = _LAST_WORD.search(text, max(start, cut - 12), cut + 1)
            if w and (w[1].lower() in _ABBREVIATIONS or len(w[1]) == 1):
                continue  # "Gen. Kim", "U.S. officials", "J. Smith"
        end = m.end()
        _add(text, start, end, spans)
        start = end
    _add(text, start, len(text), spans)
    return spans


MAX_SENTENCE = 1500  # longer runs (tables, unpunctuated dumps) are cut at commas or spaces


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while end - start > MAX_SENTENCE:
        limit = start + MAX_SENTENCE
        cut = text.rfind(", ", start + MAX_SENTENCE // 2, limit)
        if cut < 0:
            cut = text.rfind(" ", start + MAX_SENTENCE // 2, limit)
        cut = limit if cut < 0 else cut + 1
        _trimmed(text, start, cut, spans)
        start = cut
    _trimmed(text, start, end, spans)


def _trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
