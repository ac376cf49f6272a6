"""The base of runvoy's records: msgspec Structs with the few pydantic-style methods the code base uses.

Why not pydantic (decision 1410): every CLI command builds records, and importing pydantic plus building its
models costs more than the whole start-up budget of a command (100 ms). msgspec defines a Struct in
microseconds and validates while it decodes. The method names (``model_validate``, ``model_dump`` ...) are kept
so that provider code written against the pydantic records keeps working.

Differences that matter:
- The constructor does not validate: ``Resources(cpu=Decimal(1))`` trusts its arguments (mypy checks their
  types). Input from outside (a config file, a CLI option, JSON) goes through ``model_validate`` or
  ``model_validate_json``, which check types, bounds and forms and raise ``RecordError`` naming the field.
- A field whose accepted form needs parsing ("10m", "2GiB", "256m" CPU) is declared with a *parsed type*
  (``parsed_type``): while decoding, its parser turns the input into the stored value; a constructor given a
  string parses it too (``__post_init__``), so ``Resources(cpu="1")`` still works.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import msgspec

T = TypeVar("T")

_PARSERS: dict[type, tuple[type, Callable[[Any], Any]]] = {}
"""marker type -> (stored type, parser)."""

_PATH = re.compile(r"`\$([^`]*)`")
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a table",
    "null": "nothing",
}
_EXPECTED = re.compile(r"Expected `([^`]+)`(?:, got `([^`]+)`)?(?: (>=|<=|>|<) (\S+))?")
_WORDS = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}


def _in_words(problem: str) -> str:
    """msgspec's "Expected `int` <= 100" as "must be a whole number at most 100"."""
    found = _EXPECTED.fullmatch(problem)
    if found is None:
        return problem
    expected, got, op, bound = found.groups()
    kinds = " or ".join(_KINDS.get(k.strip(), k.strip()) for k in expected.split("|"))
    text = f"must be {kinds}"
    if op:
        text += f" {_WORDS[op]} {bound}"
    if got:
        text += f", not {_KINDS.get(got, got)}"
    return text


class RecordError(ValueError):
    """A record failed validation. ``path`` is the field (``request.resources.cpu``, ``env[FOO]``), or ""
    for a rule across fields; ``problem`` the accepted form in words."""

    def __init__(self, problem: str, path: str = "") -> None:
        self.problem = problem
        self.path = path
        super().__init__(f"{path}: {problem}" if path else problem)

    @classmethod
    def from_msgspec(cls, exc: msgspec.ValidationError) -> RecordError:
        text = str(exc)
        path = ""
        problem, sep, where = text.rpartition(" - at ")
        if sep and (found := _PATH.fullmatch(where)):
            path = found.group(1).lstrip(".")
        else:
            problem = text
        if problem.startswith("Object contains unknown field "):
            field = problem.removeprefix("Object contains unknown field ").strip("`")
            path = f"{path}.{field}" if path else field
            problem = "unknown setting"
        return cls(_in_words(problem), path)


def parsed_type(stored: type[T], parser: Callable[[Any], T], name: str) -> type[T]:
    """A marker type for a field whose input is parsed (``Annotated``-style, for msgspec): declare the field
    with it at run time and with ``stored`` for mypy (``if TYPE_CHECKING``)."""
    marker = type(name, (stored,), {"__module__": __name__})
    _PARSERS[marker] = (stored, parser)
    return marker


def _decode(kind: type, value: Any) -> Any:
    entry = _PARSERS.get(kind)
    if entry is not None:
        _, parser = entry
        if isinstance(value, bool):  # True is an int: "--timeout true" is not one second
            raise ValueError(f"{value!r} is not a valid value")
        return kind(parser(value))  # msgspec checks the type; __post_init__ stores the plain value
    if kind is Path:
        if not isinstance(value, str):
            raise ValueError(f"expected a path, got {type(value).__name__}")
        return Path(value)
    raise NotImplementedError


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):  # a subclass (proto-plus's DatetimeWithNanoseconds): as the plain type
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
        )
    for marker, (stored, _) in _PARSERS.items():
        if isinstance(value, marker):
            return stored(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_JSON = msgspec.json.Encoder(enc_hook=_encode)


class Record(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A runvoy record. Subclasses declare fields as msgspec does; see the module docstring."""

    __parsed__: ClassVar[tuple[tuple[str, type, Callable[[Any], Any]], ...] | None] = None

    def __post_init__(self) -> None:
        parsed = type(self).__dict__.get("__parsed__")
        if parsed is None:
            parsed = _parsed_fields(type(self))
        for name, stored, parser in parsed:
            value = getattr(self, name)
            if value is not None and type(value) is not stored:
                setattr(self, name, stored(parser(value)) if not isinstance(value, stored) else stored(value))

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Validate input from outside (a dict of JSON-like values); raises RecordError."""
        if isinstance(data, cls):
            return data
        try:
            return msgspec.convert(data, cls, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            raise RecordError.from_msgspec(exc) from None

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        try:
            return msgspec.json.decode(text, type=cls, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            raise RecordError.from_msgspec(exc) from None
        except msgspec.DecodeError as exc:
            raise RecordError(f"not valid JSON: {exc}") from None

    def model_dump(self, *, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        """A dict of builtins; ``mode="python"`` keeps datetimes and decimals as objects."""
        keep: Iterable[type] = () if mode == "json" else (datetime, date, Decimal)
        out: dict[str, Any] = msgspec.to_builtins(self, builtin_types=tuple(keep), enc_hook=_encode)
        return out

    def model_dump_json(self) -> str:
        return _JSON.encode(self).decode()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied (not validated, as pydantic's); ``deep`` copies nested values too."""
        copied = msgspec.json.decode(_JSON.encode(self), type=type(self), dec_hook=_decode) if deep else self
        return msgspec.structs.replace(copied, **(update or {}))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__


def _parsed_fields(cls: type[Record]) -> tuple[tuple[str, type, Callable[[Any], Any]], ...]:
    """The fields of ``cls`` declared with a parsed type (plain or optional), computed once per class."""
    found = []
    for field in msgspec.structs.fields(cls):
        kinds = getattr(field.type, "__args__", None) or (field.type,)
        for kind in kinds:
            entry = _PARSERS.get(kind) if isinstance(kind, type) else None
            if entry is not None:
                found.append((field.name, entry[0], entry[1]))
    result = tuple(found)
    cls.__parsed__ = result
    return result
