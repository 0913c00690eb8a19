"""The catalogue's machinery: a registry per family of rule kinds, the base shapes of the YAML
(``Strict``, ``Label``) and what a rule kind hands a target (``Check``).

A rule kind is one registered class that carries everything the targets need: the YAML it reads,
its SQL (per dialect: ``sql_<dialect>`` methods, DuckDB today), its GX expectations, its words for
the dictionary (zh + en) and how a change of it is classified for versioning. The targets
(tongban.standards.targets.*, tongban.standards.versioning) walk the catalogues; none of them
names a kind.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

IDENT = r"^[a-z][a-z0-9_]{0,62}$"
SEMVER = r"^\d+\.\d+\.\d+$"
#: the SQL dialect the generated models are written in (a kind implements ``sql_<dialect>``)
DIALECT = "duckdb"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Label(Strict):
    zh: str
    en: str


K = TypeVar("K")


class Catalogue(Generic[K]):
    """The registered kinds of one family, in registration order (the order the targets list
    them in). ``register`` is a class decorator; the models rebuild their closed vocabularies
    (validator names, row rule union, step names) whenever a catalogue changes."""

    def __init__(self, family: str, *, instances: bool = True):
        self.family = family
        self._instances = instances  # kinds are used as instances (field rules, steps) or classes
        self._kinds: dict[str, K] = {}
        self._listeners: list[Callable[[], None]] = []

    def register(self, cls: type) -> type:
        name = kind_name(cls)
        if name in self._kinds:
            raise ValueError(f"{self.family} {name!r} is registered twice")
        self._kinds[name] = cls() if self._instances else cls  # type: ignore[assignment]
        self._changed()
        return cls

    def unregister(self, name: str) -> None:
        del self._kinds[name]
        self._changed()

    @contextmanager
    def registered(self, cls: type) -> Iterator[type]:
        """``cls`` registered for the ``with`` block only (tests of a throwaway kind)."""
        before = set(self._kinds)
        self.register(cls)
        try:
            yield cls
        finally:
            for name in set(self._kinds) - before:
                self.unregister(name)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def __getitem__(self, name: str) -> K:
        try:
            return self._kinds[name]
        except KeyError:
            raise KeyError(f"no {self.family} {name!r} in the catalogue") from None

    def get(self, name: str | None) -> K | None:
        return self._kinds.get(name) if name is not None else None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._kinds.values()))

    def __len__(self) -> int:
        return len(self._kinds)


def kind_name(cls: Any) -> str:
    """A kind's name: its ``name``, or for a row rule model the value of its ``rule: Literal[...]``
    (the YAML's tag, written once)."""
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) else cls.model_fields["rule"].annotation.__args__[0]


def sql(kind: Any, dialect: str, what: str = "sql") -> Callable[..., Any]:
    """The kind's ``<what>_<dialect>`` method: the dialect hook (a kind without SQL for a
    dialect says so instead of producing DuckDB SQL for it)."""
    impl = getattr(kind, f"{what}_{dialect}", None)
    if impl is None:
        raise NotImplementedError(f"{getattr(kind, 'name', kind)!r} has no {what} for the {dialect} dialect")
    return impl


@dataclass(frozen=True)
class Check:
    """A row rule's verdict in SQL: when ``condition`` holds, the row gets ``reason`` (a reason
    code, or SQL that yields one with ``reason_is_sql``) on ``field``, quoting ``value`` (SQL),
    masked when the field is personal data and ``masked`` is set."""

    condition: str
    reason: str
    field: str
    value: str
    reason_is_sql: bool = False
    masked: bool = True
    #: quarantine: the row is held back; warn: the row is published and the reason recorded (a
    #: committee's cross-field rule, tongban.standards.rules.cross_field)
    severity: str = "quarantine"


@dataclass(frozen=True)
class RowSql:
    """What one field rule adds to an entity's row rules: columns computed first (``helpers``
    names the ones to drop afterwards) and the checks."""

    columns: tuple[str, ...] = ()
    helpers: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()


LEVELS = ("patch", "minor", "major")


def show(value: Any) -> str:
    """A value as a versioning message writes it."""
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(sorted(choices))}"
