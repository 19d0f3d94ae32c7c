"""Rules: sentences -> value phrases -> attribute, subject, time, source, modality."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.attributes import AttributeRegistry, default_registry
from shared.extract._lexicon import (
    CIVILIANS,
    DEMONYM_ALIASES,
    DEPLOY_VERB,
    LEXICON_RX,
    MILITARY,
    NOT_SUBJECT,
    NP_STOP,
    OTHER_STATE,
    OUTCOME,
    OUTCOME_NOUNS,
    PARTICIPLES,
    PEOPLE,
    STOCK,
)
from shared.extract._sentences import sentence_spans
from shared.extract._time import TimeMention, find_times, public_valid_time
from shared.model import ValidTime
from shared.values import ValuePhrase, ValueProblem, find_value_phrases, parse_value


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EXTRACTION_VERSION = 1
EXTRACTION = {"method": "rules", "version": EXTRACTION_VERSION}

_TRIGGER = re.compile(
    r"\d|(?<![a-z])(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|thousand|million|dozens?|scores|tens|half|thirds?|"
    r"quarters?|command|led by|headed by|withdr|pulled|retreat|disappear|vanish|sent back|"
    r"redeploy|returned to|rotated)"
)

# -- attribution ------------------------------------------------------------------------

_SAY = (
    r"(?:said|says|say|told\s+(?:reporters|journalists|lawmakers|the\s+\w+|\w+)|reported|reports"
    r"|announced|announces|stated|states|added|claimed|claims|claim|confirmed|confirms"
    r"|estimated|estimates|estimate|assessed|assesses|assess|believes|believe|believed|wrote"
    r"|writes|suggested|suggests|suggest|indicated|indicates|indicate|denied|denies|deny"
    r"|noted|warned|insisted|acknowledged|admitted|alleged|alleges|concluded|calculated"
    r"|put\s+(?:the|its|their|his|her)\s+(?:own\s+)?(?:[a-z]+\s+)?"
    r"(?:number|total|figure|toll|death\s+toll|count|losses|tally))"
)
_AUX = r"(?:(?:has|have|had|also|previously|earlier|now) )*+"
# Linear on any input (issue #24): attribution reads a copy of the sentence with whitespace
# runs collapsed to one space, every quantifier over spaces is possessive, and the patterns
# are anchored to one comma-free segment, so no two quantifiers can trade the same characters.
_CITING = re.compile(r"\bciting ([^,.;]+)", re.I)
_ACCORDING = re.compile(r"\baccording to ([^,;]+)", re.I)
_ACCORDING_END = re.compile(r"(?: that\b.*| ?\.)$", re.I)
_SAYS_AFTER = re.compile(rf" {_AUX}({_SAY})\b", re.I)  # "... the ministry (has) said"
_SAYS_FIRST = re.compile(rf" ?+{_SAY} ", re.I)  # ", said the ministry."
_WHITESPACE = re.compile(r"\s+")
# Commas split clauses, but not the thousands of a number ("killed 2,497, the ministry said").
_COMMA = re.compile(r"(?<!\d),|,(?!\d)")
# " said" opening a segment: "X, title, said". Only verbs that are never nouns ("reports").
_VERB_ONLY = re.compile(r" ?+(?:said|says|told|added|stated|announced|estimated|wrote)\b", re.I)
_PRONOUNS = _words("it he she they we i you this that there which who one some many others")
_NOT_SOURCE = re.compile(r"\d|^(?:and|but|so|yet|while|as)\b", re.I)


def _clean_source(x: str) -> str | None:
    x = x.strip(" \"'“”‘’")
    x = re.sub(r"^(?:and|but|while|as|though|although|whereas) ", "", x, flags=re.I)
    if not x or x.lower() in _PRONOUNS or _NOT_SOURCE.search(x) or len(x.split()) > 10:
        return None
    if _VERB_ONLY.match(x):  # "said some estimates put the toll": the verb, not its subject
        return None
    if x.split()[-1].lower() in ("a", "an", "the"):  # "an estimated 10,000": not a source
        return None
    return x


def _speaker_before_say(segment: str) -> str | None:
    """ "the Pentagon" in "the Pentagon said on Monday": the 2-90 characters before a verb."""
    for m in _SAYS_AFTER.finditer(segment, 2, 91 + 40):
        if m.start() > 90:
            return None
        if " " not in m[1] and segment.startswith(" of ", m.end()):
            continue  # "Western estimates of the toll": a noun, not a verb
        if segment[m.start(1)].islower():  # "The United States will": a name, not a verb
            return segment[: m.start()]
    return None


def _according(sentence: str) -> str | None:
    m = _ACCORDING.search(sentence)
    if m is None:
        return None
    who = _ACCORDING_END.sub("", m[1])  # "according to X that ...", "according to X."
    return who.strip() or None


def _inverted(segment: str) -> str | None:
    """ ", said the ministry." -> "the ministry" (the whole last segment after the verb)."""
    m = _SAYS_FIRST.match(segment)
    if m is None:
        return None
    who = segment[m.end() :].rstrip(" .!?\"”'")
    return who if 2 <= len(who) <= 90 else None


def _apposed(segments: list[str], i: int) -> str | None:
    """ "the mayor, Abdulmenam al-Ghaithi, said": segment i opens with the verb, so the
    speaker is the segment before it (with a short title opening the sentence before that)."""
    if i < 1 or not _VERB_ONLY.match(segments[i]) or _SAYS_AFTER.match(" " + segments[i - 1]):
        return None
    who = segments[i - 1].strip()
    if i == 2 and len(segments[0]) <= 40 and not _NOT_SOURCE.search(segments[0].strip()):
        who = f"{segments[0].strip()}, {who}"  # "A U.S. envoy, Tom Perriello, said"
    return who if 2 <= len(who) <= 90 else None


def _head(segments: list[str]) -> str | None:
    """ "X said ..." at the start of the sentence, or after one short opening clause."""
    if len(segments) > 2:
        who = _apposed(segments, 2)
        if who:
            return who
    if len(segments) > 1 and len(segments[0]) <= 120:
        who = _speaker_before_say(segments[1].lstrip())
        if who and _clean_source(who):
            return who
    return _speaker_before_say(segments[0])


def attribution(sentence: str) -> str | None:
    """Who the sentence attributes its claims to ("according to X", "X said", "citing X")."""
    text = _WHITESPACE.sub(" ", sentence)
    segments = _COMMA.split(text)
    last = segments[-1].lstrip() if len(segments) > 1 else None
    citing = _CITING.search(text)
    finders = (
        lambda: citing[1] if citing else None,
        lambda: _according(text),
        lambda: _speaker_before_say(last) if last is not None else None,
        lambda: _inverted(last) if last is not None else None,
        lambda: _apposed(segments, len(segments) - 1),
        lambda: _head(segments),
    )
    for find in finders:
        found = find()
        who = _clean_source(found) if found else None
        if who:
            return who
    return None


@dataclass(frozen=True, slots=True)
class Speaker:
    start: int  # offset in the sentence of the comma-free segment naming the speaker
    end: int
    who: str
    citing: bool  # "citing X": the origin behind the reporter, whatever is nearer


def _segment_speaker(segment: str, *, first: bool, last: bool) -> tuple[str, bool] | None:
    """The speaker one comma-free segment names, and whether it is cited."""
    citing = _CITING.search(segment)
    finders = (
        lambda: citing[1] if citing else None,
        lambda: _according(segment),
        lambda: _speaker_before_say(segment.lstrip()),
        lambda: _inverted(segment.lstrip()) if last and not first else None,
    )
    for find in finders:
        found = find()
        who = _clean_source(found) if found else None
        if who:
            return who, citing is not None and found == citing[1]
    return None


def speakers(sentence: str) -> list[Speaker]:
    """Every speaker the sentence names, with the span of its segment (split at commas)."""
    out: list[Speaker] = []
    start = 0
    parts = _COMMA.split(sentence)
    flat = [_WHITESPACE.sub(" ", part) for part in parts]
    for i, part in enumerate(parts):
        found = _segment_speaker(flat[i], first=i == 0, last=i == len(parts) - 1)
        if found is None:
            who = _apposed(flat, i)
            if who is not None and (who := _clean_source(who)) is not None:
                # the speaker's span runs from its name to the verb
                found = (who, False)
                start_named = start - len(parts[i - 1]) - 1
                out.append(Speaker(start_named, start + len(part), *found))
        elif found is not None:
            out.append(Speaker(start, start + len(part), found[0], found[1]))
        start += len(part) + 1
    return out


def nearest_speaker(found: list[Speaker], at: int, end: int) -> str | None:
    """The speaker of the words [at, end) when a sentence names several: the cited origin,
    else the one whose segment holds or lies nearest the words ("killed 230, the authority
    said, though aid groups put it closer to 300": 230 is the authority's, 300 the groups')."""
    whos = {s.who for s in found}
    if len(whos) < 2:
        return None
    cited = [s for s in found if s.citing]
    if cited:
        return cited[0].who

    def distance(s: Speaker) -> int:
        return 0 if s.start <= at and end <= s.end else min(abs(s.start - end), abs(at - s.end))

    return min(found, key=distance).who


_PRONOUN_SPEAKER = re.compile(
    rf"(?:^|,) ?(?:it|he|she|they|the (?:agency|ministry|statement|report)) {_AUX}{_SAY}\b"
    rf"|(?:^|,) ?{_SAY} (?:it|he|she|they)\b",
    re.I,
)


def names_speaker_by_pronoun(sentence: str) -> bool:
    """ "..., it said.": the speaker is the one named before."""
    return _PRONOUN_SPEAKER.search(_WHITESPACE.sub(" ", sentence)) is not None


# -- modality ---------------------------------------------------------------------------

_DENIED = re.compile(r"(?<![a-z])(?:denie[sd]|deny|denying|dismissed|rejected|refuted)(?![a-z])")
_POSSIBLE = re.compile(
    r"(?<![a-z])(?:could|might|possibly|perhaps|potentially|appears?\s+to|seem(?:s|ed)?\s+to"
    r"|seemingly|unconfirmed|unverified|cannot\s+be\s+(?:independently\s+)?verified|likely"
    r"|may\s+(?:have|be|send|deploy|be\s+\w+ing))(?![a-z])"
)
_ESTIMATED = re.compile(
    r"(?<![a-z])(?:estimated?|estimates?|assess(?:ed|es|ments?)?|believed?|believes"
    r"|calculated?|projected)(?![a-z])"
)
_REPORTED = re.compile(
    r"(?<![a-z])(?:reportedly|allegedly|reports?|according\s+to|citing|said\s+to\s+be"
    r"|rumou?red)(?![a-z])"
)
_CLAUSE_CUT = re.compile(r"[,;:()—–]")
_REFERENTIAL = re.compile(r"(?<![a-z])(?:the|these|those|both|all|its|their)\s+$")


def _sentence_modality(low: str) -> str:
    if _DENIED.search(low):
        return "denied"
    return _clause_modality(low) or "asserted"


def _clause_modality(text: str) -> str | None:
    if _POSSIBLE.search(text):
        return "possible"
    if _ESTIMATED.search(text):
        return "estimated"
    if _REPORTED.search(text):
        return "reported"
    return None


def modality(low: str, at: int, end: int, sentence: str | None = None) -> str:
    """asserted | reported | estimated | possible | denied for the words low[at:end].

    A denial anywhere in the sentence wins; otherwise the cues of the claim's own clause
    ("an estimated ...", "reportedly ..."), then those of the whole sentence. `sentence` is
    `_sentence_modality(low)` when the caller has it already.
    """
    whole = sentence if sentence is not None else _sentence_modality(low)
    if whole == "denied":
        return whole
    left = max((m.end() for m in _CLAUSE_CUT.finditer(low, max(0, at - 200), at)), default=0)
    right_m = _CLAUSE_CUT.search(low, end, end + 200)
    clause = low[max(left, at - 200) : right_m.start() if right_m else end + 200]
    return _clause_modality(clause) or whole


# -- subjects ---------------------------------------------------------------------------

_WORD = re.compile(r"[a-z][a-z'’\-]*|\S")
_DEMONYM_NEAR = re.compile(
    r"(?<![A-Za-z])((?:[A-Z][a-z]+|DPRK)(?:\s+[A-Z][a-z]+)?)\s+(?:troops|soldiers|forces|units?"
    r"|servicemen|personnel|casualties|contingent|prisoners|fighters|support)(?![a-z])"
)


def _slug(words: list[str]) -> str:
    text = "-".join(words)
    text = re.sub(r"[^a-z0-9]+", "-", text.replace("’", "").replace("'", ""))
    return text.strip("-")


_VERBS = _words(
    "remain remains stay stays face faces fight fights reach reaches arrive arrive die died "
    "are is were was have has had"
)


_DIGIT = re.compile(r"\d")
_OUTCOME_HEADS = OUTCOME_NOUNS - PARTICIPLES  # "537 deaths so far": "deaths" is the head
_OWN_VERB = re.compile(r" ?(?:[a-z'’]+ ){0,3}?(?:were|was|are|is|have|has|had|remain(?:s|ed)?)\b")
_COORDINATOR = re.compile(r"(?<![a-z])(?:and|or|while|but|whereas|with)(?![a-z])")
_DEPLOYMENT = frozenset({"personnel_deployed", "additional_deployment"})
_OUTCOME_HIT = [rx for tier, _, rx in LEXICON_RX if tier == OUTCOME]
_LEFT_CUT = re.compile(r"[;:—–]|,\s*(?:while|whereas|but)\b")
_ASIDE = re.compile(
    r",\s*(?:including|among them|among whom|mostly|[a-z]+ of (?:them|whom))"
    r"\b[^,;:()]{0,100},"
)
_VERB_OBJECT = re.compile(
    r"(?<![a-z])(?:killed|killing|kills|killed or wounded|injured|injuring|injures|wounded"
    r"|wounding|wounds|captured|capturing)\s*$"
)
_COUNT_OF = re.compile(
    r"(?:number|total|count|tally) of (?:the )?([a-z' ]{1,40}?) (?:at|to|was|is|has|had|stood|rose"
    r"|reached|climbed)\s*$"
)
_LAST_WORD = re.compile(r"([a-z]+)\W*$")
_DEMONYM_PLURAL = re.compile(r"[A-Z][a-z]+(?:ans|ese|is)")


def _is_demonym(text: str, np: _Np) -> bool:
    """ "10,022 Palestinians", "Israelis", "Sudanese": a people noun spelled as a demonym."""
    if not np.words:
        return False
    start = np.end - len(np.words[-1])
    return _DEMONYM_PLURAL.fullmatch(text, start, np.end) is not None


def _other_state(left: str, right: str) -> bool:
    """The count's own word is outside the registry: right after it, before any outcome word
    ("441 missing", "183,159 displaced"), or the verb just before it ("exchanged hundreds")."""
    stop = _COORDINATOR.search(right)
    m = OTHER_STATE.search(right, 0, stop.start() if stop else len(right))
    if m is not None and not any(rx.search(right, 0, m.start()) for rx in _OUTCOME_HIT):
        return True
    last = _LAST_WORD.search(left)
    if last is not None and OTHER_STATE.fullmatch(last[1]) is not None:
        return True
    named = _COUNT_OF.search(left)  # "put the number of missing at 10,100"
    return named is not None and OTHER_STATE.search(named[1]) is not None


def _military_context(left: str, right: str) -> bool:
    """A deployment needs soldiers or a deployment verb around the count: "sent 120 more",
    "reinforcements of 2,000 men", not "hundreds of people remain"."""
    window = f"{left} {right}"
    return DEPLOY_VERB.search(window) is not None or any(
        m[0] in MILITARY for m in _WORD.finditer(window)
    )


_SAME_COUNT = re.compile(
    r"(?<![a-z])(?:the|that|this|its) (?:figure|toll|tally|count|number|total)\b"
)
_VERB_BEFORE = re.compile(r"([a-z]+ed|lost|shot down|destroyed) ?(?:\w+ ){0,2}$")
_VERB_AFTER = re.compile(r"\s*(?:[a-z]+\s+){0,3}?(?:been\s+|be\s+)?([a-z]+ed)(?![a-z])")


@dataclass(frozen=True, slots=True)
class _Np:
    words: list[str]
    start: int  # offset in the sentence of the first word
    end: int  # offset after the last word


def _noun_phrase(low: str, pos: int, limit: int) -> _Np:
    """Words after a number up to a function word or punctuation ("north korean troops")."""
    words: list[str] = []
    start = end = pos
    for m in _WORD.finditer(low, pos, limit):
        w = m[0]
        if not w[0].isalpha():
            break
        if not words and w in ("of", "the", "their", "its", "his", "her"):
            start = m.end()
            continue
        if w in NP_STOP or (words and w in PARTICIPLES):
            break
        if words and (w.endswith("ed") or w in _VERBS):
            break  # "men reached", "troops remain"
        words.append(w)
        end = m.end()
        if (w in PEOPLE and w not in PARTICIPLES) or w in _OUTCOME_HEADS or len(words) == 5:
            break  # the head: "north korean troops"
    if words and all(w in PARTICIPLES for w in words):
        return _Np([], start, start)  # "about 1,000 killed": no noun; the participle is a verb
    return _Np(words, start, end)


def _subject_of(np: _Np, sentence: str) -> tuple[str, str] | None:
    """(slug, label) from a noun phrase; people nouns are normalised to "troops"."""
    words = [w for w in np.words if w not in NOT_SUBJECT]
    if not words:
        return None
    head = words[-1]
    if head not in PEOPLE:
        return None  # "80 villages": what is counted, not what the claim is about
    mods = [DEMONYM_ALIASES.get(w, w) for w in words[:-1]]
    if head in PEOPLE:
        if head in ("koreans", "russians", "ukrainians"):
            mods.append(DEMONYM_ALIASES[head])
        head = "troops"
        if not mods:
            near = _DEMONYM_NEAR.search(sentence)
            if near is None:
                return None
            mods = [DEMONYM_ALIASES.get(w.lower(), w.lower()) for w in near[1].split()]
    slug = _slug([*mods, head])
    label = " ".join(w.title() if w not in ("troops",) else w for w in " ".join(mods).split("-"))
    return slug, f"{label} {head}".strip()


def _demonym_subject(text: str) -> tuple[str, str] | None:
    """("north-korean-troops", "North Korean troops") from "North Korean soldiers|support"."""
    m = _DEMONYM_NEAR.search(text)
    if m is None:
        return None
    words = [DEMONYM_ALIASES.get(w.lower(), w.lower()) for w in m[1].split()]
    return _slug([*words, "troops"]), f"{m[1]} troops"


# -- attributes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    tier: int
    attribute: str
    distance: int
    side: str  # left | right


def _hits(text: str, *, right: bool, base: int) -> list[_Hit]:
    out = []
    for tier, attr, rx in LEXICON_RX:
        for m in rx.finditer(text):
            distance = m.start() if right else len(text) - m.end()
            out.append(_Hit(tier, attr, distance + base, "right" if right else "left"))
    return out


def _choose(hits: list[_Hit], np: _Np, phrase_end: int) -> _Hit | None:
    if not hits:
        return None
    top = max(h.tier for h in hits)
    best = min((h for h in hits if h.tier == top), key=lambda h: h.distance)
    if best.tier == OUTCOME and best.side == "right" and best.distance < np.end - phrase_end:
        # "captured two wounded soldiers": an adjective inside the noun phrase yields to a verb
        left = [h for h in hits if h.tier == OUTCOME and h.side == "left"]
        if left:
            return min(left, key=lambda h: h.distance)
    return best


# -- the pipeline -----------------------------------------------------------------------


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _nearest_time(times: list[TimeMention], low: str, at: int, end: int) -> ValidTime | None:
    if not times:
        return None

    def distance(t: TimeMention) -> int:
        lo, hi = (end, t.start) if t.start >= end else (t.end, at)
        # a time in the claim's own clause beats a nearer one across a comma
        return hi - lo + (200 if _CLAUSE_CUT.search(low, lo, hi) else 0)

    world = [t for t in times if not t.speech]
    pool = world or times
    return min(pool, key=distance).valid


def _value_dict(v: Any, raw: str) -> dict[str, Any]:
    return {"low": v.low, "best": v.best, "high": v.high, "hedge": v.hedge, "raw": raw}


@dataclass
class _Sentence:
    text: str
    low: str
    start: int
    end: int
    published: date
    source_id: str | None
    _times: list[TimeMention] | None = None
    _source: tuple[str | None] | None = None
    _modality: str | None = None

    @property
    def times(self) -> list[TimeMention]:
        if self._times is None:
            self._times = find_times(self.low, self.text, self.published)
        return self._times

    @property
    def modality(self) -> str:
        if self._modality is None:
            self._modality = _sentence_modality(self.low)
        return self._modality

    _speakers: list[Speaker] | None = None
    before: str | None = None  # the sentence before, whose speaker a pronoun refers to

    @property
    def named(self) -> str | None:
        """The speaker the sentence names (a pronoun's is the one named before)."""
        if self._source is None:
            who = attribution(self.text)
            if who is None and self.before and names_speaker_by_pronoun(self.text):
                who = attribution(self.before)
            self._source = (who,)
        return self._source[0]

    def speaker_of(self, at: int, end: int) -> str | None:
        if self._speakers is None:
            self._speakers = speakers(self.text)
        return nearest_speaker(self._speakers, at, end) or self.named or self.source_id


class _Extractor:
    def __init__(self, registry: AttributeRegistry, subject: str | None) -> None:
        self.registry = registry
        self.subject = subject
        self.doc_subject: tuple[str, str] | None = None
        self.last_attribute: str | None = None  # of the last count in the registry

    def claim(
        self,
        sent: _Sentence,
        *,
        subject: tuple[str, str] | None,
        attribute: str,
        value: dict[str, Any],
        at: int,
        end: int,
        confidence: float,
        **extra: Any,
    ) -> dict[str, Any]:
        if subject is not None and self.subject is None:
            self.doc_subject = subject
        subject = subject or self.doc_subject
        slug, label = (self.subject, None) if self.subject else subject or (None, None)
        if not self.subject and subject is None:
            confidence -= 0.1
        return {
            "subject": slug,
            "subject_label": label,
            "attribute": attribute,
            "value": value,
            "hedge": value["hedge"],
            "raw": value["raw"],
            **extra,
            "valid_time": public_valid_time(_nearest_time(sent.times, sent.low, at, end)),
            "attributed_to": sent.speaker_of(at, end),
            "modality": modality(sent.low, at, end, sent.modality),
            "quote": sent.text,
            "span": [sent.start, sent.end],
            "value_span": [sent.start + at, sent.start + end],
            "confidence": round(max(0.05, min(confidence, 0.99)), 2),
            "extraction": dict(EXTRACTION),
        }

    def numbers(self, sent: _Sentence) -> list[dict[str, Any]]:
        phrases = find_value_phrases(sent.text)
        out = []
        for i, ph in enumerate(phrases):
            prev_end = phrases[i - 1].end if i else 0
            next_start = phrases[i + 1].start if i + 1 < len(phrases) else len(sent.low)
            claim = self.number(sent, ph, prev_end, next_start)
            if claim is not None:
                out.append(claim)
        return out

    def number(
        self, sent: _Sentence, ph: ValuePhrase, prev_end: int, next_start: int
    ) -> dict[str, Any] | None:
        low = sent.low
        if any(t.start < ph.end and ph.start < t.end for t in sent.times):
            return None  # part of a date
        if (
            ph.kind == "number"
            and not _DIGIT.search(low, ph.start, ph.end)
            and _REFERENTIAL.search(low, max(0, ph.start - 8), ph.start)
        ):
            return None  # "the two nations", "both three": a reference, not a count
        cut = _CLAUSE_CUT.search(low, ph.end, next_start)
        right_limit = cut.start() if cut else next_start
        np = _noun_phrase(low, ph.end, right_limit)
        after = ""  # the verb past an aside: "10 people, including five officers, were killed"
        if cut is not None and (aside := _ASIDE.match(low, cut.start())) is not None:
            resume = _CLAUSE_CUT.search(low, aside.end(), aside.end() + 120)
            after = " " + low[aside.end() : resume.start() if resume else aside.end() + 120]
        relative_to = None
        right_from = ph.end
        if ph.kind in ("fraction", "percent"):
            relative_to = self.registry.match_phrase(" ".join(np.words))
            if relative_to is None and (
                set(np.words) & PEOPLE or not np.words or np.words[0] in ("them", "those")
            ):
                relative_to = "personnel_deployed"
            right_from = np.end  # "of the deployed force": not the claim's own words
        left_from = max(prev_end, ph.start - 80)
        left_cut = (
            max((m.end() for m in _LEFT_CUT.finditer(low, left_from, ph.start)), default=left_from)
            - left_from
        )
        left = low[left_from + left_cut : ph.start]
        right = low[right_from:right_limit] + after
        if prev_end and _OWN_VERB.match(right):
            # "73 had died ... and that some 33,000 were in shelters": the words before the
            # last "and" are the previous number's, this one has its own verb
            left = left[max((m.end() for m in _COORDINATOR.finditer(left)), default=0) :]
        hits = _hits(right, right=True, base=right_from - ph.end) + [
            h for h in _hits(left, right=False, base=0) if h.tier != STOCK or h.distance < 60
        ]
        hit = _choose(hits, np, ph.end)
        content = [w for w in np.words if w not in NOT_SUBJECT]  # "120 more": no noun
        head = content[-1] if content else None
        people = (
            head is None
            or head in PEOPLE
            or head in CIVILIANS
            or head in OUTCOME_NOUNS
            or ph.kind in ("fraction", "percent")
            or _is_demonym(sent.text, np)
            or _VERB_OBJECT.search(left) is not None  # "killed 18 climbers": its victims
        )
        counted = people and not _other_state(left, right)

        def allowed(attr: str | None) -> bool:
            """A registry attribute whose words are there (unknown beats wrong)."""
            if attr is None or attr not in self.registry or not counted:
                return False
            if attr in _DEPLOYMENT:
                return head in MILITARY or _military_context(left, right)
            return True

        confidence = 0.9
        if hit is not None and allowed(hit.attribute):
            attribute = hit.attribute
            if hit.tier == STOCK:
                confidence = 0.75 if hit.distance < 40 else 0.65
            elif hit.distance > 40:
                confidence = 0.8
        else:
            matched = self.registry.match_phrase(f"{left} {right}") if counted else None
            if allowed(matched):
                attribute, confidence = str(matched), 0.55
            elif counted and self.last_attribute and _SAME_COUNT.search(left[-40:]):
                # "put the figure closer to 300": the count named just before
                attribute, confidence = self.last_attribute, 0.6
            else:
                attribute, confidence = self._suggest(head, left, right), 0.35
        try:
            tail = " x" if ph.kind in ("fraction", "percent") else ""
            value = parse_value(
                None,
                raw=ph.phrase + tail,
                relative_to=relative_to,
                registry=self.registry,
                kind=None if ph.kind not in ("fraction", "percent") else "stock",
            )
        except (ValueProblem, OverflowError):  # OverflowError: 400 digits do not fit a float
            return None
        if value.hedge == "categorical":
            return None
        if relative_to is None and ph.kind in ("fraction", "percent"):
            confidence -= 0.2
        if ph.kind == "magnitude":
            confidence -= 0.05
        raw = sent.text[ph.start : ph.end]
        extra: dict[str, Any] = {}
        if value.relative_to:
            extra["relative_to"] = value.relative_to
        subject = _subject_of(np, sent.text)
        if attribute in self.registry and confidence >= 0.5:
            self.last_attribute = attribute
        return self.claim(
            sent,
            subject=subject,
            attribute=attribute,
            value=_value_dict(value, raw),
            at=ph.start,
            end=ph.end,
            confidence=confidence,
            **extra,
        )

    @staticmethod
    def _suggest(head: str | None, left: str, right: str) -> str:
        """A readable attribute name for an unknown phrase: "missiles_fired", "displaced".

        Built from the sentence's own words only: a registry attribute whose words are
        absent would be a guess ("45,000 displaced" is not "wounded").
        """
        verb = _VERB_BEFORE.search(left[-60:])
        after = _VERB_AFTER.match(right)
        parts = [head] if head else []
        if verb:
            parts.append(verb[1].replace(" ", "_"))
        elif after:
            parts.append(after[1])
        return _slug(parts).replace("-", "_") or "count"


# -- categorical: commander, deployment status ------------------------------------------

_RANK = (
    r"(?:Colonel\s+General|Lieutenant\s+General|Lt\.?\s*Gen\.?|Major\s+General|Maj\.?\s*Gen\.?"
    r"|Brigadier\s+General|Brig\.?\s*Gen\.?|Army\s+General|General|Gen\.|Colonel|Col\.|Marshal"
    r"|Admiral|Adm\.|Commander|Lieutenant\s+Colonel|Lt\.?\s*Col\.?|Major|Maj\.)"
)
_NAME = r"[A-Z][a-z]+(?:[\s-]+[A-Z][a-z]+){1,3}"
_COMMANDER = [
    re.compile(
        rf"(?:under\s+the\s+command\s+of|commanded\s+by|led\s+by|headed\s+by|under)\s+"
        rf"(?P<raw>(?:{_RANK}\s+)?(?P<name>{_NAME}))"
    ),
    re.compile(
        rf"(?P<raw>(?:{_RANK}\s+)?(?P<name>{_NAME}))(?:,[^,]{{3,80}},)?\s+(?:is|was|has\s+been)"
        r"\s+(?:commanding|leading|in\s+command\s+of|in\s+charge\s+of|heading)"
    ),
]
_STATES = [
    (
        "withdrawn",
        re.compile(
            r"(?<![a-z])(?:withdrawn|withdrew|pulled\s+(?:back|out)|retreated|disappeared|vanished"
            r"|rotated\s+out|left\s+the\s+front(?:\s+lines?)?)(?![a-z])"
        ),
    ),
    (
        "deployed",
        re.compile(
            r"(?<![a-z])(?:sent\s+back|returned\s+to\s+(?:the\s+)?(?:front|battle|fight|combat)"
            r"|redeployed|re-deployed|back\s+to\s+the\s+front(?:\s+lines?)?)(?![a-z])"
        ),
    ),
]
_MILITARY = re.compile(
    r"(?<![a-z])(?:troops|soldiers|forces|units?|regiments?|brigades?|battalions?|contingent"
    r"|servicemen|personnel|support|army|division)(?![a-z])"
)
_NEGATED = re.compile(r"(?<![a-z])(?:not|never|no|n't)\s+(?:\w+\s+)?$")


def _categoricals(ex: _Extractor, sent: _Sentence, numeric: list[dict[str, Any]]) -> list[dict]:
    out: list[dict[str, Any]] = []
    subject = _demonym_subject(sent.text)
    for rx in _COMMANDER:
        m = rx.search(sent.text)
        if m:
            value = {
                "low": None,
                "best": None,
                "high": None,
                "hedge": "categorical",
                "raw": m["raw"],
                "text": m["name"],
            }
            out.append(
                ex.claim(
                    sent,
                    subject=subject,
                    attribute="commander",
                    value=value,
                    at=m.start("raw"),
                    end=m.end("raw"),
                    confidence=0.7,
                )
            )
            break
    if not _MILITARY.search(sent.low):
        return out
    taken: list[tuple[int, int]] = []
    spans = [(c["value_span"][0] - sent.start, c["value_span"][1] - sent.start) for c in numeric]
    for state, rx in _STATES:
        for m in rx.finditer(sent.low):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if _NEGATED.search(sent.low, max(0, m.start() - 16), m.start()):
                continue
            clause_start = max(
                (c.end() for c in _CLAUSE_CUT.finditer(sent.low, 0, m.start())), default=0
            )
            if any(clause_start <= a < m.start() for a, _ in spans):
                continue  # "2,000 troops were withdrawn": a count, already proposed
            taken.append((m.start(), m.end()))
            raw = sent.text[m.start() : m.end()]
            value = {
                "low": None,
                "best": None,
                "high": None,
                "hedge": "categorical",
                "raw": raw,
                "text": state,
            }
            out.append(
                ex.claim(
                    sent,
                    subject=subject,
                    attribute="deployment_status",
                    value=value,
                    at=m.start(),
                    end=m.end(),
                    confidence=0.6,
                )
            )
    return out


class ExtractionStopped(Exception):
    """`should_stop` said stop (a caller's CPU budget ran out): no partial answer."""


def extract_claims(
    text: str,
    *,
    published_at: datetime | date,
    source_id: str | None = None,
    registry: AttributeRegistry | None = None,
    subject: str | None = None,
    max_claims: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Candidate claims in the claim-input shape, in text order; nothing is stored.

    Each has subject, attribute, value {low, best, high, hedge, raw}, hedge, raw, valid_time
    (resolved against `published_at`), attributed_to (`source_id` when the text names no
    one), modality, quote (the sentence), span [start, end) of the quote in `text`,
    confidence 0..1 and extraction {method: "rules", version}. Unknown phrases come back
    with a suggested attribute and confidence < 0.5; they are never dropped. `subject`
    overrides the subject of every candidate (else a subject is read only from a people
    noun, "North Korean troops", and is None when there is none); `max_claims` stops after
    that many. `should_stop` is asked before each sentence; when it answers True,
    ExtractionStopped is raised (the caller's deadline: the rules stay free of clocks).
    """
    if isinstance(published_at, datetime):
        published = published_at.date()
    elif isinstance(published_at, date):
        published = published_at
    else:
        raise TypeError("published_at must be a date or datetime")
    ex = _Extractor(registry if registry is not None else default_registry(), subject)
    ex.doc_subject = _demonym_subject(text[:400])  # the headline usually names the entity
    low_text = _lower(text)
    out: list[dict[str, Any]] = []
    before: str | None = None
    for start, end in sentence_spans(text):
        if should_stop is not None and should_stop():
            raise ExtractionStopped(f"stopped at character {start} of {len(text)}")
        low = low_text[start:end]
        if not _TRIGGER.search(low):
            before = text[start:end]
            continue
        sent = _Sentence(text[start:end], low, start, end, published, source_id, before=before)
        before = sent.text
        numeric = ex.numbers(sent)
        out.extend(numeric)
        out.extend(_categoricals(ex, sent, numeric))
        if max_claims is not None and len(out) >= max_claims:
            return out[:max_claims]
    return out
