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
        r"killed|killing|kills|kill|dead|died|die|dying|deaths?|death toll|toll|fatalit(?:y|ies)"
        r"|perished|lost their lives|slain|kia|bodies|fallen",
    ),
    (OUTCOME, "wounded", r"wounded|wounding|injured|injuring|injuries|wia|hurt"),
    (
        OUTCOME,
        "captured",
        r"captured|captures|capture|capturing|taken prisoner|took prisoner|prisoners?(?: of war)?"
        r"|pows?|surrendered|taken captive|captives?|detained|taken",
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
# Who else a count of killed or wounded can be about: civilian heads of a noun phrase. They
# license an outcome attribute ("10,022 Palestinians had been killed") but never a subject
# or a deployment (only PEOPLE and MILITARY do).
CIVILIANS = _words(
    """children child women woman adults residents villagers migrants refugees patients
    passengers pilgrims worshippers students pupils workers employees staff journalists
    reporters protesters demonstrators miners peacekeepers officials police policemen
    hostages detainees inmates rescuers volunteers doctors nurses farmers fishermen
    tourists voters victims individuals militants rebels insurgents gunmen combatants
    others people persons civilians"""
)
# Heads that are the outcome itself: "537 deaths", "2,400 injuries", "1,200 casualties".
OUTCOME_NOUNS = _words("deaths death fatalities casualties injuries dead wounded injured losses")
# Heads and words that license a deployment count (personnel_deployed, additional_deployment):
# "hundreds of people remain" is not a deployment, "5,200 troops remain" is.
MILITARY = _words(
    """troops troop soldiers soldier servicemen serviceman servicemembers personnel marines
    paratroopers conscripts mercenaries recruits commandos forces force contingent
    reinforcements officers police policemen peacekeepers men fighters koreans russians
    ukrainians north-koreans"""
)
DEPLOY_VERB = re.compile(
    r"(?<![a-z])(?:deploy(?:ed|ing|s|ment)?|stationed|dispatched|sen[dt](?:ing|s)?|massed|massing)"
    r"(?![a-z])"
)
# What the registry has no attribute for: a count whose own word is one of these is unknown,
# whatever outcome word stands nearby ("4,521 injured and 441 missing"; "45,000 displaced").
OTHER_STATE = re.compile(
    r"(?<![a-z])(?:missing|displaced|homeless|evacuated|rescued|arrested|hospitali[sz]ed"
    r"|infected|sick|stranded|unaccounted|affected|released|freed|exchanged|swapped"
    r"|sheltering|trapped|fled|flee|fleeing|cases|vaccinated|tested)(?![a-z])"
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
    several many few about around others"""
)
DEMONYM_ALIASES = {
    "dprk": "north-korean",
    "north-koreans": "north-korean",
    "koreans": "korean",
    "russians": "russian",
    "ukrainians": "ukrainian",
}
