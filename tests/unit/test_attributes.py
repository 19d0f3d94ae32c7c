"""The attribute registry is data: shipped entries, aliases, phrase matching, user extension."""

from __future__ import annotations

import pytest

from shared.attributes import AttributeRegistry, RegistryError, default_registry


@pytest.fixture
def reg():
    return default_registry()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("personnel_deployed", "stock"),
        ("additional_deployment", "delta"),
        ("killed", "cumulative"),
        ("wounded", "cumulative"),
        ("captured", "cumulative"),
        ("killed_or_wounded", "cumulative"),
        ("withdrawal", "state"),
        ("deployment_status", "state"),
        ("commander", "categorical"),
    ],
)
def test_shipped_registry_has_the_contract_attributes(reg, name, kind):
    spec = reg.get(name)
    assert spec is not None and spec.kind == kind


def test_personnel_is_counted_in_troops(reg):
    assert reg.get("personnel_deployed").unit == "troops"


def test_killed_or_wounded_is_composite_of_killed_and_wounded(reg):
    assert reg.get("killed_or_wounded").composite_of == ("killed", "wounded")


def test_aliases_map_to_the_canonical_name(reg):
    assert reg.canonical("troops") == "personnel_deployed"
    assert reg.canonical("Soldiers") == "personnel_deployed"
    assert reg.canonical("casualties") == "killed_or_wounded"
    assert reg.canonical("killed") == "killed"


def test_unknown_names_are_returned_unchanged(reg):
    assert reg.canonical("drones/shot down") == "drones/shot down"
    assert reg.get("drones/shot down") is None


def test_unknown_attribute_gets_a_default_kind_by_value(reg):
    assert reg.spec_for("drones_shot_down", numeric=True).kind == "stock"
    assert reg.spec_for("spokesperson", numeric=False).kind == "categorical"
    assert reg.spec_for("troops", numeric=False).kind == "stock"  # known: its own kind


@pytest.mark.parametrize(
    ("phrase", "name"),
    [
        ("the initial troops", "personnel_deployed"),
        ("soldiers", "personnel_deployed"),
        ("additional troops", "additional_deployment"),
        ("killed or wounded", "killed_or_wounded"),
        ("prisoners of war", "captured"),
    ],
)
def test_phrase_matching_prefers_the_longest_alias(reg, phrase, name):
    assert reg.match_phrase(phrase) == name


def test_phrase_matching_refuses_a_tie_and_unknown_words(reg):
    assert reg.match_phrase("troops killed") is None  # personnel_deployed vs killed: a guess
    assert reg.match_phrase("the weather") is None


def test_state_value_aliases_canonicalise(reg):
    assert reg.canonical_value("deployment_status", "pulled back") == "withdrawn"
    assert reg.canonical_value("deployment_status", "Redeployed") == "deployed"
    assert reg.canonical_value("deployment_status", "on leave") == "on leave"


def test_default_registry_is_cached():
    assert default_registry() is default_registry()


def test_extra_file_adds_and_overrides_without_code(tmp_path):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[attributes.drones_shot_down]\nkind = "cumulative"\nunit = "drones"\n'
        'aliases = ["drones downed"]\n\n'
        '[attributes.killed]\nunit = "persons"\n',
        encoding="utf-8",
    )
    reg = AttributeRegistry.load(extra_path=extra)
    assert reg.get("drones_shot_down").kind == "cumulative"
    assert reg.canonical("drones downed") == "drones_shot_down"
    killed = reg.get("killed")
    assert killed.unit == "persons" and killed.kind == "cumulative"  # other fields kept


@pytest.mark.parametrize(
    "toml",
    [
        '[attributes.x]\nkind = "level"\n',
        '[attributes.x]\nkind = "stock"\ncolour = "red"\n',
        '[attributes.x]\nkind = "stock"\ncomposite_of = ["y"]\n',
        '[attributes.x]\nkind = "stock"\naliases = ["z"]\n[attributes.y]\nkind = "stock"\n'
        'aliases = ["z"]\n',
        "not = toml = at all",
    ],
)
def test_malformed_registry_is_rejected(toml):
    with pytest.raises(RegistryError):
        AttributeRegistry.from_toml(toml)


def test_an_extra_file_may_declare_a_signed_measure():
    reg = AttributeRegistry.from_toml('[attributes.temperature]\nkind = "measure"\nunit = "°C"\n')
    spec = reg.get("temperature")
    assert spec is not None and spec.kind == "measure" and spec.unit == "°C"
