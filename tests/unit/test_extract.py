"""Claim extraction from raw text (shared.extract) and its HTTP route (POST /v1/extract)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.infra.http import install_error_handlers
from services.ingest import extract_api
from services.ingest.extract_api import router
from shared.attributes import default_registry
from shared.extract import ExtractionStopped, extract_claims
from shared.values import find_value_phrases, parse_value

PUB = date(2025, 2, 17)  # a Monday


def one(text: str, published_at: date | datetime = PUB, **kw):
    claims = extract_claims(text, published_at=published_at, **kw)
    assert len(claims) == 1, claims
    return claims[0]


def bounds(c):
    return (c["value"]["low"], c["value"]["best"], c["value"]["high"])


# -- values and hedges ----------------------------------------------------------------------


def test_up_to_phrase_becomes_an_upper_bound():
    c = one("Russia could be deploying up to 3,000 additional North Korean troops.")
    assert bounds(c) == (None, None, 3000) and c["hedge"] == "up_to"
    assert c["raw"] == "up to 3,000" and c["value"]["raw"] == "up to 3,000"


def test_approximately_gets_the_ten_percent_band():
    c = one("In December 2024, approximately 12,000 North Korean troops were deployed.")
    assert bounds(c) == (10800, 12000, 13200) and c["hedge"] == "approximately"


def test_an_estimated_range_is_a_range_with_estimated_modality():
    c = one("An estimated 10,000 to 12,000 soldiers arrived in mid-2024.")
    assert bounds(c) == (10000, 11000, 12000) and c["hedge"] == "range"
    assert c["modality"] == "estimated"


def test_over_is_an_open_lower_bound():
    c = one("By late 2024, reports indicated that over 3,000 North Korean troops had been killed.")
    assert bounds(c) == (3000, None, None) and c["hedge"] == "over"


def test_word_numbers_are_read():
    c = one("Twelve thousand North Korean soldiers were sent to the front.")
    assert bounds(c) == (12000, 12000, 12000)


def test_dozens_is_an_order_of_magnitude():
    c = one("Dozens of North Korean soldiers were taken prisoner.")
    assert c["hedge"] == "order_of_magnitude" and bounds(c) == (12, None, None)
    assert c["attribute"] == "captured"


def test_a_third_of_is_relative_to_the_deployed_troops():
    c = one("Up to a third of the initial North Korean troops were killed.")
    assert c["hedge"] == "relative" and c["relative_to"] == "personnel_deployed"
    assert c["attribute"] == "killed" and c["value"]["high"] == pytest.approx(1 / 3)


def test_years_dates_and_ordinals_are_not_claims():
    text = (
        "On March 22, 2025, Shoigu traveled to Pyongyang. The 11th brigade moved in 2024. "
        "Unit 74 fired F-16 rounds over the past 24 hours."
    )
    assert extract_claims(text, published_at=PUB) == []


def test_the_two_nations_is_a_reference_not_a_count():
    assert extract_claims("Ties between the two nations deepened.", published_at=PUB) == []


def test_find_value_phrases_normalises_hedges_for_parse_value():
    [p] = find_value_phrases("casualties exceed 4,000 so far")
    assert p.phrase == "more than 4,000" and p.kind == "number"
    assert parse_value(None, raw=p.phrase).hedge == "over"


# -- attributes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "attribute"),
    [
        ("Over 3,000 North Korean troops had been killed or wounded.", "killed_or_wounded"),
        ("About 1,200 North Korean soldiers had been killed.", "killed"),
        ("More than 200 soldiers had been wounded.", "wounded"),
        ("At least 300 North Korean troops have been captured.", "captured"),
        ("About 11,000 North Korean troops are stationed in Kursk.", "personnel_deployed"),
        ("Russia may send up to 5,000 additional troops.", "additional_deployment"),
        ("Roughly 1,500 more North Korean troops arrived.", "additional_deployment"),
    ],
)
def test_words_near_the_number_pick_the_registry_attribute(text, attribute):
    c = one(text)
    assert c["attribute"] == attribute and c["confidence"] >= 0.5


def test_an_outcome_verb_beats_an_adjective_in_the_noun_phrase():
    c = one("Ukrainian forces captured two wounded North Korean soldiers.")
    assert c["attribute"] == "captured"


def test_two_numbers_in_one_sentence_get_their_own_attributes():
    text = "Officials said 15 marines were killed and 40 wounded."
    claims = extract_claims(text, published_at=PUB)
    assert [(c["attribute"], c["value"]["best"]) for c in claims] == [
        ("killed", 15),
        ("wounded", 40),
    ]


def test_unknown_phrase_is_returned_with_low_confidence():
    c = one("Russia has fired 150 missiles at Ukrainian cities.")
    assert c["attribute"] not in default_registry() and c["attribute"] == "missiles_fired"
    assert c["confidence"] < 0.5 and bounds(c) == (150, 150, 150)


def test_commander_is_a_categorical_claim():
    text = "The force is reportedly under the command of Colonel General Kim Yong Bok."
    [c] = [c for c in extract_claims(text, published_at=PUB) if c["attribute"] == "commander"]
    assert c["value"]["text"] == "Kim Yong Bok" and c["hedge"] == "categorical"
    assert c["modality"] == "reported"


def test_withdrawn_becomes_deployment_status_with_its_own_time():
    text = (
        "Ukrainian assessments suggested that the troops were withdrawn in January 2025, "
        "only to be sent back to the front lines in February."
    )
    claims = extract_claims(text, published_at=date(2025, 3, 25))
    got = [(c["attribute"], c["value"]["text"], c["valid_time"]) for c in claims]
    assert got == [
        ("deployment_status", "withdrawn", {"start": "2025-01", "end": "2025-01"}),
        ("deployment_status", "deployed", {"start": "2025-02", "end": "2025-02"}),
    ]


# -- time --------------------------------------------------------------------------------------


def test_on_friday_resolves_against_publication_date():
    c = one("At the conference on Friday, Zelenskyy announced that up to 3,000 troops had come.")
    assert c["valid_time"] == {"start": "2025-02-14", "end": "2025-02-14"}


def test_month_without_year_takes_the_most_recent_such_month():
    c = one("Roughly 1,500 more North Korean troops arrived in December.", date(2025, 2, 12))
    assert c["valid_time"] == {"start": "2024-12", "end": "2024-12"}
    c = one("Roughly 1,500 more North Korean troops arrived in February.", date(2025, 2, 12))
    assert c["valid_time"] == {"start": "2025-02", "end": "2025-02"}


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("in late 2024", {"start": "2024-09", "end": "2024-12"}),
        ("in mid-2024", {"start": "2024-05", "end": "2024-08"}),
        ("last month", {"start": "2025-01", "end": "2025-01"}),
        ("in early February", {"start": "2025-02", "end": "2025-02-10"}),
        ("since November", {"start": "2024-11", "end": None}),
        ("on 12 January", {"start": "2025-01-12", "end": "2025-01-12"}),
    ],
)
def test_time_phrases_resolve_to_claim_input_periods(phrase, expected):
    c = one(f"About 1,000 North Korean soldiers were killed {phrase}.")
    assert c["valid_time"] == expected


def test_no_time_phrase_means_no_valid_time():
    assert one("Ukraine says it has killed 3,800 North Korean soldiers.")["valid_time"] is None


def test_a_datetime_publication_works_like_its_date():
    c = one("About 1,000 troops were killed last month.", datetime(2025, 2, 17, 23, 0))
    assert c["valid_time"] == {"start": "2025-01", "end": "2025-01"}


# -- attribution and modality ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("According to a NATO spokesperson, up to 12,000 soldiers are in Russia.",
         "a NATO spokesperson"),
        ("Some 8,000 troops have been fighting in Kursk, Blinken said.", "Blinken"),
        ("The Ukrainian General Staff reported 1,200 Russian soldiers killed.",
         "The Ukrainian General Staff"),
        ("North Korea sent 3,000 more troops, media reported, citing the NIS.", "the NIS"),
        ("ISW estimated that 12,000 troops were present.", "ISW"),
    ],
)  # fmt: skip
def test_the_origin_is_who_the_sentence_names(text, who):
    assert one(text)["attributed_to"] == who


def test_source_id_is_the_default_origin():
    c = one("About 12,000 troops were deployed.", source_id="dantzler-blog")
    assert c["attributed_to"] == "dantzler-blog"


@pytest.mark.parametrize(
    ("text", "modality"),
    [
        ("Russia could be deploying up to 3,000 additional troops.", "possible"),
        ("Up to 500 soldiers were reportedly killed.", "reported"),
        ("The Kremlin denied that 500 soldiers were killed.", "denied"),
        ("An estimated 500 soldiers were killed.", "estimated"),
        ("500 soldiers were killed.", "asserted"),
    ],
)
def test_modality_comes_from_the_wording(text, modality):
    assert one(text)["modality"] == modality


# -- shape -----------------------------------------------------------------------------------


def test_candidate_has_the_claim_input_shape_with_quote_span_and_confidence():
    text = "Headline\n\nIn December 2024, approximately 12,000 North Korean troops were deployed."
    c = one(text)
    assert set(c) >= {
        "subject", "attribute", "value", "hedge", "raw", "valid_time", "attributed_to",
        "modality", "quote", "span", "confidence", "extraction",
    }  # fmt: skip
    assert set(c["value"]) == {"low", "best", "high", "hedge", "raw"}
    start, end = c["span"]
    assert text[start:end] == c["quote"] and c["quote"].startswith("In December 2024")
    assert c["subject"] == "north-korean-troops"
    assert c["extraction"] == {"method": "rules", "version": 1}
    assert 0 <= c["confidence"] <= 1


def test_subject_override_applies_to_every_candidate():
    text = "About 12,000 troops were deployed. Over 3,000 were killed or wounded."
    claims = extract_claims(text, published_at=PUB, subject="dprk-troops-kursk")
    assert [c["subject"] for c in claims] == ["dprk-troops-kursk"] * 2


def test_candidates_normalise_like_posted_claims():
    for c in extract_claims(
        "Up to 3,000 additional troops. About 1,000 were killed in January.", published_at=PUB
    ):
        v = parse_value({k: c["value"][k] for k in ("low", "best", "high", "hedge")})
        assert (v.low, v.best, v.high) == bounds(c)


def test_long_unpunctuated_text_is_cut_into_bounded_sentences():
    claims = extract_claims("12 troops " * 2000, published_at=PUB, max_claims=50)
    assert len(claims) == 50 and all(len(c["quote"]) <= 1500 for c in claims)


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return TestClient(app)


def test_extract_route_answers_candidates(client):
    r = client.post(
        "/v1/extract",
        json={
            "text": "According to Ukrainian officials, over 3,000 North Korean troops were killed.",
            "published_at": "2025-02-17",
            "source": {"id": "wire"},
            "subject": "dprk-troops-kursk",
        },
    )
    assert r.status_code == 200
    [c] = r.json()["claims"]
    assert c["subject"] == "dprk-troops-kursk" and c["attribute"] == "killed"
    assert c["value"] == {"low": 3000, "best": None, "high": None, "hedge": "over",
                          "raw": "over 3,000"}  # fmt: skip
    assert c["attributed_to"] == "Ukrainian officials" and r.json()["truncated"] is False


def test_extract_route_refuses_a_bad_published_at_as_problem_json(client):
    r = client.post("/v1/extract", json={"text": "12 troops", "published_at": "last week"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["pointer"] == "/published_at"


def test_extract_route_requires_text_and_limits_it_to_one_megabyte(client):
    r = client.post("/v1/extract", json={"published_at": "2025-02-17"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/text"
    r = client.post("/v1/extract", json={"text": "é" * 600_000, "published_at": "2025-02-17"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/text"


# -- unseen prose (issue #20 item 7) ---------------------------------------------------------

FLOOD = (
    "Local officials said the waters began rising on Tuesday night. Floods in the north of "
    "the country have killed at least 230, the National Disaster Management Authority said, "
    "though aid groups put the figure closer to 300. Roughly 45,000 have been displaced, and "
    "as many as 80 villages remain cut off."
)


def _flood() -> dict[str, dict]:
    return {c["raw"]: c for c in extract_claims(FLOOD, published_at=date(2025, 8, 20))}


def test_each_number_is_attributed_to_its_nearest_speaker():
    claims = _flood()
    assert claims["at least 230"]["attributed_to"] == "the National Disaster Management Authority"
    assert claims["closer to 300"]["attributed_to"] == "aid groups"


def test_closer_to_is_approximate_and_the_figure_is_the_count_named_before():
    c = _flood()["closer to 300"]
    assert c["hedge"] == "approximately" and bounds(c) == (270, 300, 330)
    assert c["attribute"] == "killed" and c["confidence"] >= 0.5


def test_a_quantity_without_the_attributes_words_is_not_mapped_to_it():
    claims = _flood()
    displaced, villages = claims["Roughly 45,000"], claims["as many as 80"]
    for c in (displaced, villages):
        assert c["attribute"] not in default_registry() and c["confidence"] < 0.5
    assert displaced["attribute"] == "displaced"


def test_a_counted_thing_is_not_a_subject_and_no_subject_is_null():
    claims = _flood()
    assert claims["as many as 80"]["subject"] is None
    assert {c["subject"] for c in claims.values()} == {None}


def test_a_pronoun_speaker_is_the_one_named_in_the_sentence_before():
    text = (
        "The health ministry said 40 people died on Sunday. About 120 more were injured, it said."
    )
    injured = extract_claims(text, published_at=PUB)[-1]
    assert injured["attribute"] == "wounded" and injured["confidence"] >= 0.5
    assert injured["attributed_to"] == "The health ministry"


def test_a_capitalised_name_is_not_a_speech_verb():
    # "States" in "The United States" is not the verb "states"
    c = one("The United States will send 500 more troops to the region, the Pentagon said.")
    assert c["attributed_to"] == "the Pentagon"


def _by_raw(text: str, **kw) -> dict[str, dict]:
    return {c["raw"]: c for c in extract_claims(text, published_at=PUB, **kw)}


def _stored(c: dict) -> bool:
    """What ingest stores: a registry attribute at confidence 0.5 or more."""
    return c["attribute"] in default_registry() and c["confidence"] >= 0.5


def test_a_thousands_comma_does_not_split_the_speakers_clause():
    text = "The toll rose to 2,497, the Interior Ministry said, adding that 2,476 were injured."
    claims = extract_claims(text, published_at=PUB)
    assert [c["attributed_to"] for c in claims] == ["the Interior Ministry"] * 2


@pytest.mark.parametrize(
    ("text", "who"),
    [
        (
            "Nearly 400 people have died, the chief minister, Pinarayi Vijayan, said.",
            "Pinarayi Vijayan",
        ),
        (
            "A U.S. envoy, Tom Perriello, said 150,000 people had been killed.",
            "A U.S. envoy, Tom Perriello",
        ),
    ],
)
def test_an_apposed_speaker_is_the_name_before_the_verb(text, who):
    assert one(text)["attributed_to"] == who


def test_a_noun_used_like_a_speech_verb_is_not_a_speaker():
    c = one("Independent estimates of civilian deaths range from 8,000 to 25,000.")
    assert c["attribute"] == "killed" and c["hedge"] == "range"
    assert c["attributed_to"] is None


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("The agency has recorded 152 deaths so far this year.", "152"),  # the noun is the outcome
        ("The ministry said 10,022 Palestinians had been killed.", "10,022"),  # a demonym
        ("Thirty-three polling officials died of heatstroke.", "Thirty-three"),  # civilians
        ("The avalanche killed 18 climbers at base camp.", "18"),  # the verb's object
        ("Nineteen people, including two children, were killed in the fire.", "Nineteen"),
        ("The floods killed 61 people, bringing the total to 1,208.", "1,208"),  # the count before
        ("Bombs exploded near the ministry, killing 100 people.", "100"),
    ],
)
def test_a_count_of_the_dead_is_killed_however_the_sentence_names_it(text, raw):
    c = _by_raw(text)[raw]
    assert c["attribute"] == "killed" and c["confidence"] >= 0.5


def test_an_aside_inside_a_count_is_not_a_count_of_its_own():
    two = _by_raw("Nineteen people, including two children, were killed in the fire.")["two"]
    assert not _stored(two)


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("The quake killed 2,719, with 4,521 people injured and 441 missing.", "441"),
        (
            "The storm killed 1,774 people and displaced some 660,000 in the provinces.",
            "some 660,000",
        ),
        ("Floods killed 5,000. The Red Crescent put the number of missing at 10,100.", "10,100"),
        ("Ukraine and Russia exchanged hundreds of prisoners on Wednesday.", "hundreds"),
        ("Russia said 248 of its servicemen had been released from captivity.", "248"),
        ("Officials said 73 people had died and that some 33,000 were in shelters.", "some 33,000"),
    ],
)
def test_a_count_whose_own_words_are_outside_the_registry_is_not_stored(text, raw):
    assert not _stored(_by_raw(text)[raw])


def test_an_outside_word_after_the_next_and_does_not_unmap_the_count_before_it():
    c = _by_raw("The storm killed 1,774 people and displaced some 660,000 in the provinces.")
    assert c["1,774"]["attribute"] == "killed" and c["1,774"]["confidence"] >= 0.5


def test_a_deployment_needs_soldiers_or_a_deployment_verb():
    c = one("Hundreds of people remain unaccounted for in the mountains.")
    assert c["attribute"] != "personnel_deployed" and not _stored(c)
    c = _by_raw("Britain will send 800 more soldiers, while about 900 British troops remain there.")
    assert c["800"]["attribute"] == "additional_deployment"
    assert c["about 900"]["attribute"] == "personnel_deployed"


def test_a_contrasting_clause_ends_the_words_that_describe_a_count():
    c = _by_raw(
        "Britain will send 800 more soldiers, while 900 troops already stationed would stay."
    )
    assert c["900"]["attribute"] == "personnel_deployed"


def test_a_hedged_count_after_the_is_a_count_not_a_reference():
    c = one("The unit joins the roughly 5,200 troops already in Iraq.")
    assert c["attribute"] == "personnel_deployed" and bounds(c) == (4680, 5200, 5720)


def test_should_stop_ends_extraction_between_sentences():
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(ExtractionStopped):
        extract_claims("12 troops died. 14 troops died. 15 troops died.", published_at=PUB,
                       should_stop=stop)  # fmt: skip
    assert len(asked) == 3


def test_extract_route_answers_503_when_over_its_cpu_budget(client, monkeypatch):
    monkeypatch.setattr(extract_api, "EXTRACT_BUDGET_S", -1.0)
    r = client.post("/v1/extract", json={"text": "12 troops died.", "published_at": "2025-02-17"})
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["pointer"] == "/text"


def test_extract_route_answers_null_subject_when_the_text_names_none(client):
    r = client.post(
        "/v1/extract", json={"text": "80 villages were cut off.", "published_at": "2025-02-17"}
    )
    assert r.status_code == 200 and r.json()["claims"][0]["subject"] is None


# -- the held-out gold set ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "right", "candidates", "expected"),
    [
        ("heldout3", 32, 34, 37),  # written before the rules' second pass, scored once after it
        ("heldout2", 40, 40, 41),  # out of sample for the first pass only
        ("heldout", 31, 33, 34),  # its misses were read before session 6: not out of sample
        ("dev", 69, 72, 73),  # in sample
    ],
)
def test_gold_set_precision_and_recall_do_not_regress(name, right, candidates, expected):
    """Whole-claim P/R (subject, attribute, value + hedge and speaker all right) on the news
    paragraphs of tests/data/extract (bench/extract.py; figures in bench/RESULTS.md). The
    issue's target is P >= 0.9 and R >= 0.8 on unseen prose; heldout3 is the set the rules
    have not seen. The floors are what is measured, raised with every improvement."""
    from bench.extract import evaluate_whole, load

    precision, recall, *_ = evaluate_whole(load(f"{name}.jsonl"))
    assert precision >= right / candidates and recall >= right / expected
    if name == "heldout3":
        assert precision >= 0.9 and recall >= 0.8
