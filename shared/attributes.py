"""The attribute registry: what each attribute is (kind, unit, composites, aliases).

The registry is data (`attributes.toml`, shipped inside the package) so that users add
attributes without code: `AttributeRegistry.load(extra_path=...)` merges their own file.
The only I/O here is reading those TOML files.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast

from shared.model import AttributeKind, AttributeSpec

KINDS: tuple[str, ...] = ("stock", "delta", "cumulative", "measure", "state", "categorical")
NUMERIC_KINDS = frozenset({"stock", "delta", "cumulative", "measure"})
# Kinds whose numbers may carry a sign (a temperature of -3); the others are counts.
SIGNED_KINDS = frozenset({"measure"})
_FIELDS = frozenset({"kind", "unit", "label", "composite_of", "aliases", "value_aliases"})
_PACKAGED = "attributes.toml"


class RegistryError(ValueError):
    """The registry file is malformed (unknown kind, clashing alias, missing composite part)."""


@functools.lru_cache(maxsize=4096)  # pure; consensus asks it for every claim it admits
def attribute_key(text: str) -> str:
    """Lookup key for names and aliases: case, spaces, '-' and '_' do not matter."""
    return re.sub(r"[\s\-_]+", "_", text.strip().casefold())


_key = attribute_key


def _words(text: str) -> tuple[str, ...]:
    # A crude plural fold ("troops" ~ "troop") applied to both sides is enough for matching
    # aliases; a stemmer would be a dependency for little gain.
    out = []
    for w in re.findall(r"[a-z0-9]+", text.casefold()):
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return tuple(out)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class AttributeRegistry:
    """Attribute specs by canonical name, with alias lookup and phrase matching."""

    def __init__(self, specs: Iterable[AttributeSpec]) -> None:
        self._specs: dict[str, AttributeSpec] = {}
        self._keys: dict[str, str] = {}  # _key(name or alias) -> canonical name
        self._phrases: list[tuple[tuple[str, ...], str]] = []  # alias words -> name
        for spec in specs:
            self._specs[spec.name] = spec
        for spec in self._specs.values():
            for alias in (spec.name, *spec.aliases):
                owner = self._keys.setdefault(_key(alias), spec.name)
                if owner != spec.name:
                    # One alias, two attributes: canonical() could not answer, so refuse.
                    raise RegistryError(f"alias {alias!r} belongs to both {owner} and {spec.name}")
                self._phrases.append((_words(alias), spec.name))
            for part in spec.composite_of:
                if part not in self._specs:
                    raise RegistryError(f"{spec.name}: composite part {part!r} is not an attribute")

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load(cls, extra_path: str | Path | None = None) -> AttributeRegistry:
        """The packaged registry, merged with an optional user TOML file of the same shape."""
        text = resources.files(__name__.rpartition(".")[0]).joinpath(_PACKAGED).read_text("utf-8")
        table = _parse(text, source=_PACKAGED)
        if extra_path is not None:
            path = Path(extra_path)
            extra = _parse(path.read_text(encoding="utf-8"), source=str(path))
            for name, fields in extra.items():
                # An existing name is overridden field by field, so a user can add an alias
                # list or change a unit without restating the whole entry.
                table[name] = {**table.get(name, {}), **fields}
        return cls.from_table(table)

    @classmethod
    def from_toml(cls, text: str) -> AttributeRegistry:
        return cls.from_table(_parse(text, source="<text>"))

    @classmethod
    def from_table(cls, table: Mapping[str, Mapping[str, Any]]) -> AttributeRegistry:
        return cls(_spec(name, fields) for name, fields in table.items())

    # -- lookups ------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[AttributeSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def canonical(self, name: str) -> str:
        """Canonical attribute name for a name or alias, ignoring case and spacing
        ("Death toll" -> killed); unknown names come back unchanged (they are opaque)."""
        if name in self._specs:
            return name
        return self._keys.get(_key(name), name)

    def get(self, name: str) -> AttributeSpec | None:
        return self._specs.get(self.canonical(name))

    def spec_for(self, name: str, *, numeric: bool) -> AttributeSpec:
        """The spec; for an unknown attribute a default (numeric: stock, text: categorical)."""
        spec = self.get(name)
        if spec is not None:
            return spec
        return AttributeSpec(name=name, kind="stock" if numeric else "categorical", implicit=True)

    def match_phrase(self, text: str) -> str | None:
        """Attribute a noun phrase refers to ("the initial troops" -> personnel_deployed).

        The longest matching alias wins; a tie between two attributes gives None, because
        picking one would be a guess.
        """
        words = _words(text)
        best: dict[str, int] = {}
        for alias_words, name in self._phrases:
            if _contains(words, alias_words):
                best[name] = max(best.get(name, 0), len(alias_words))
        if not best:
            return None
        top = max(best.values())
        winners = [name for name, score in best.items() if score == top]
        return winners[0] if len(winners) == 1 else None

    def canonical_value(self, attribute: str, text: str) -> str:
        """Canonical state/categorical value ("pulled back" -> "withdrawn"); else unchanged."""
        spec = self.get(attribute)
        if spec is None:
            return text
        wanted = _key(text)
        for canonical, spellings in spec.value_aliases:
            if wanted == _key(canonical) or any(wanted == _key(s) for s in spellings):
                return canonical
        return text


@functools.cache
def default_registry() -> AttributeRegistry:
    """The packaged registry, read once per process."""
    return AttributeRegistry.load()


# -- TOML -> specs ----------------------------------------------------------------------


def _parse(text: str, *, source: str) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: {exc}") from exc
    unknown = set(data) - {"attributes"}
    if unknown:
        raise RegistryError(f"{source}: unknown top-level keys {sorted(unknown)}")
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise RegistryError(f"{source}: [attributes] must be a table")
    out: dict[str, dict[str, Any]] = {}
    for name, fields in attributes.items():
        if not isinstance(fields, dict):
            raise RegistryError(f"{source}: attributes.{name} must be a table")
        extra = set(fields) - _FIELDS
        if extra:
            raise RegistryError(f"{source}: attributes.{name}: unknown keys {sorted(extra)}")
        out[name] = dict(fields)
    return out


def _strings(name: str, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"attributes.{name}.{field} must be a list of strings")
    return tuple(value)


def _spec(name: str, fields: Mapping[str, Any]) -> AttributeSpec:
    kind = fields.get("kind")
    if kind not in KINDS:
        raise RegistryError(f"attributes.{name}.kind must be one of {', '.join(KINDS)}")
    for field in ("unit", "label"):
        if fields.get(field) is not None and not isinstance(fields[field], str):
            raise RegistryError(f"attributes.{name}.{field} must be a string")
    value_aliases = fields.get("value_aliases", {})
    if not isinstance(value_aliases, dict):
        raise RegistryError(f"attributes.{name}.value_aliases must be a table")
    return AttributeSpec(
        name=name,
        kind=cast(AttributeKind, kind),
        unit=fields.get("unit"),
        label=fields.get("label"),
        composite_of=_strings(name, "composite_of", fields.get("composite_of", [])),
        aliases=_strings(name, "aliases", fields.get("aliases", [])),
        value_aliases=tuple(
            (value, _strings(name, f"value_aliases.{value}", spellings))
            for value, spellings in value_aliases.items()
        ),
    )
