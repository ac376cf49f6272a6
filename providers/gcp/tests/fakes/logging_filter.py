"""A subset of the Cloud Logging query language, enough for what runvoy and the client library send:
comparisons (= != > >= < <= :) on field paths (quoted segments allowed), AND / OR / NOT / '-',
juxtaposition as AND, and parentheses. Timestamps compare as instants; anything else as strings.
An expression outside this subset is refused (as the real API refuses an invalid filter)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .discovery import RequestRejected

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>>=|<=|!=|=~|!~|=|>|<|:)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()=<>!:"]+))'
)
_TIMESTAMP_FIELDS = {"timestamp", "receiveTimestamp"}

Predicate = Callable[[dict[str, Any]], bool]


@functools.lru_cache(maxsize=65536)
def parse_instant(text: str) -> tuple[int, int]:
    """(epoch seconds, nanoseconds) of an RFC 3339 timestamp, keeping all nine fraction digits."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$", text)
    if m is None:
        raise RequestRejected(f"Invalid timestamp in filter: {text}")
    zone = m.group(3).replace("Z", "+00:00")
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    base = datetime.fromisoformat(m.group(1) + zone)
    nanos = int((m.group(2) or "0").ljust(9, "0"))
    return int(base.astimezone(UTC).timestamp()), nanos


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise RequestRejected(f"Unparseable filter near: {text[pos : pos + 20]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise RequestRejected("Unexpected end of filter")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda entry: True
        pred = self.parse_or()
        if self.peek() is not None:
            raise RequestRejected(f"Unexpected token in filter: {self.peek()[1]!r}")  # type: ignore[index]
        return pred

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == ("word", "OR"):
            self.next()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while True:
            token = self.peek()
            if token is None or token[0] == "rp" or token == ("word", "OR"):
                break
            if token == ("word", "AND"):
                self.next()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def parse_unary(self) -> Predicate:
        token = self.peek()
        if token == ("word", "NOT"):
            self.next()
            inner = self.parse_unary()
            return lambda e: not inner(e)
        if token is not None and token[0] == "word" and token[1].startswith("-") and len(token[1]) > 1:
            # "-field=value" negates a comparison
            self.tokens[self.i] = ("word", token[1][1:])
            inner = self.parse_unary()
            return lambda e: not inner(e)
        if token is not None and token[0] == "lp":
            self.next()
            inner = self.parse_or()
            if self.next()[0] != "rp":
                raise RequestRejected("Unbalanced parentheses in filter")
            return inner
        return self.parse_comparison()

    def parse_field(self) -> list[str]:
        kind, text = self.next()
        path: list[str] = []
        if kind == "str":
            return [_unquote(text)]
        if kind != "word":
            raise RequestRejected(f"Expected a field name in filter, got {text!r}")
        # a word may run into a quoted segment: labels."run.googleapis.com/execution_name"
        path.extend(p for p in text.split(".") if p)
        while text.endswith(".") and self.peek() is not None and self.peek()[0] == "str":  # type: ignore[index]
            _, quoted = self.next()
            path.append(_unquote(quoted))
            nxt = self.peek()
            if nxt is not None and nxt[0] == "word" and nxt[1].startswith("."):
                self.next()
                path.extend(p for p in nxt[1].split(".") if p)
                text = nxt[1]
            else:
                text = ""
        return path

    def parse_comparison(self) -> Predicate:
        path = self.parse_field()
        kind, op = self.next()
        if kind != "op":
            raise RequestRejected(f"Expected a comparison after {'.'.join(path)!r}")
        vkind, raw = self.next()
        if vkind not in ("str", "word"):
            raise RequestRejected(f"Expected a value after {op!r}")
        value = _unquote(raw) if vkind == "str" else raw
        if op in ("=~", "!~"):
            raise RequestRejected("Regular expressions are not supported by this fake")
        return _comparison(path, op, value)


def _lookup(entry: dict[str, Any], path: list[str]) -> Any:
    node: Any = entry
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _comparison(path: list[str], op: str, value: str) -> Predicate:
    is_time = path[-1] in _TIMESTAMP_FIELDS and len(path) == 1
    want: Any = parse_instant(value) if is_time else value

    def check(entry: dict[str, Any]) -> bool:
        got = _lookup(entry, path)
        if got is None:
            return op == "!="
        have: Any = parse_instant(got) if is_time else str(got)
        if op == ":":
            return str(want).lower() in str(have).lower()
        return {
            "=": have == want,
            "!=": have != want,
            ">": have > want,
            ">=": have >= want,
            "<": have < want,
            "<=": have <= want,
        }[op]

    return check


def compile_filter(text: str | None) -> Predicate:
    return _Parser(text or "").parse()
