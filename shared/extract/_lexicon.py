"""Word lists that map the words around a number to registry attributes.

Tiers decide between words of one sentence: an outcome ("killed") beats a change
("additional") beats a level ("troops", "deployed"): "3,000 additional troops were
killed" is a count of killed, "3,000 additional troops" a deployment change.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


OUTCOME, DELTA, STOCK, MOVED = 3, 2, 1, 0

# (tier, attribute, pattern); earlier entries win on the same span ("killed or wounded").
LEXICON: list[tuple[int, str, str]] = [
    (
        OUTCOME,
        "killed_or_wounded",
        r"killed,?\s+(?:or|and)\s+(?:wounded|injured)|dead,?\s+(?:or|and)\s+(?:wounded|injured)"
        r"|casualt(?:y|ies)|loss(?:es)?|lost|out of action|put out of action|killed or hurt",
    ),
    (
        OUTCOME,
        "killed",
        r"killed|kills|kill|dead|died|die|dying|deaths?|death toll|fatalit(?:y|ies)|perished"
        r"|lost their lives|slain|kia|bodies|fallen",
    ),
    (OUTCOME, "wounded", r"wounded|injured|injuries|wia|hurt"),
    (
        OUTCOME,
        "captured",
        r"captured|captures|capture|taken prisoner|took prisoner|prisoners?(?: of war)?|pows?"
        r"|surrendered|taken captive|captives?|detained|taken",
    ),
    (
        DELTA,
        "additional_deployment",
        r"additional|more|further|extra|another|reinforcements?|fresh|new (?:troops|soldiers|wave|"
        r"batch|contingent|deployment)|second (?:wave|batch|contingent)|latest (?:batch|wave)",
    ),
    (
        STOCK,
        "personnel_deployed",
        r"deployed|deploying|deploy|deploys|deployment|sent|sending|send|sends|dispatched"
        r"|arrived|arriving|stationed|present|based|massed|massing|numbering|numbered|fighting"
        r"|remain|remains|remained|remaining|troops?|soldiers?|personnel|servicem[ae]n|forces?"
        r"|contingent|strong|total|in russia|in kursk",
    ),
    (
        MOVED,
        "personnel_withdrawn",
        r"withdrawn|withdrew|pulled (?:back|out)|evacuated|rotated out|retreated",
    ),
]
LEXICON_RX = [(tier, attr, re.compile(rf"(?<![a-z])(?:{p})(?![a-z])")) for tier, attr, p in LEXICON]

PEOPLE = _words(
    """troops troop soldiers soldier servicemen serviceman servicemembers personnel men man
    people persons person civilians civilian fighters fighter officers officer prisoners
    prisoner pows marines paratroopers conscripts mercenaries recruits koreans russians
    ukrainians bodies dead wounded casualties members commandos forces force contingent
    north-koreans"""
)
# Words that end the noun phrase after a number.
NP_STOP = _words(
    """were was are is be been being have has had who which that whom whose to in at on near
    from into for by with and or but than as of according per since during after before
    across inside over under while will would could may might can said says reportedly
    including alone each this these those it its their there here what when where"""
)
PARTICIPLES = _words(
    """killed wounded injured dead captured deployed sent stationed fighting missing
    withdrawn arrived remaining"""
)
# Modifiers that describe the count, not the entity: left out of subject slugs.
NOT_SUBJECT = _words(
    """additional more further fresh new extra another wounded dead killed injured captured
    initial surviving other remaining deployed estimated the a an some total reported
    several many few about around"""
)
DEMONYM_ALIASES = {
    "dprk": "north-korean",
    "north-koreans": "north-korean",
    "koreans": "korean",
    "russians": "russian",
    "ukrainians": "ukrainian",
}
