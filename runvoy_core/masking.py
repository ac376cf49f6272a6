"""Masked secrets: the values of a run's ``--secret``, and the forms a command commonly prints them in,
replaced by ``***`` in its output before runvoy stores or shows it (decision 1901).

What is hidden, for each value (and, for a value of several lines, for each of its lines on its own, as a
command that prints it line by line or a log service that stores it line by line splits it):

- the value itself (UTF-8);
- its base64, standard and URL-safe alphabets, in the three alignments a value can take inside a longer
  encoded text (``base64(user:password)`` encodes the password shifted by the bytes before it): the
  characters that depend only on the value's bits;
- its URL encoding (``quote`` with nothing safe, and ``quote_plus``);
- its JSON string escape (ASCII and UTF-8), as a command printing JSON writes it.

Forms shorter than ``MIN_SECRET_LENGTH`` characters are not hidden: a value that short would turn ordinary
words into ``***`` everywhere and give the value away by where the stars appear.

Two maskers share those forms: ``StreamMasker`` for bytes that arrive in chunks (the local supervisor's
capture), which holds back only the end of a chunk that could be the start of a form (at most the longest
form minus one byte); ``TextMasker`` for text that arrives as lines (a cloud's log events). Imports only the
standard library (binascii, and urllib.parse/json when a value needs them): the local supervisor imports this
module only for a run that has secrets.
"""

from __future__ import annotations

import binascii

TYPE_CHECKING = False  # the supervisor imports this module: typing costs its start-up a few ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from runvoy_core.models import LogEvent, LogPage

MASK = "***"
MASK_BYTES = b"***"
MIN_SECRET_LENGTH = 4
"""Values (and encoded forms) shorter than this many characters are not masked (docs/user-guide.md)."""


def _base64_forms(raw: bytes) -> list[bytes]:
    """The base64 characters of ``raw`` that do not depend on what surrounds it, for each of the three
    offsets it can start at inside a longer encoded text, in both alphabets."""
    found: list[bytes] = []
    for offset in range(3):
        encoded = binascii.b2a_base64(b"\0" * offset + raw, newline=False)
        # character k encodes bits 6k..6k+5 of the input: keep those that hold only the value's bits
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(raw)) // 6
        fragment = encoded[first:last]
        found.append(fragment)
        found.append(fragment.replace(b"+", b"-").replace(b"/", b"_"))
    return found


def _text_forms(value: str) -> list[str]:
    forms = [value]
    if not value.isascii() or not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
        # only a value with characters that get escaped has other URL or JSON forms
        import json
        from urllib.parse import quote, quote_plus

        forms += [quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]]
        forms.append(json.dumps(value, ensure_ascii=False)[1:-1])
    return forms


def secret_forms(values: Iterable[str]) -> list[bytes]:
    """Every form of ``values`` to hide, as UTF-8 bytes, longest first, none shorter than the minimum."""
    pieces: list[str] = []
    for value in values:
        if not value:
            continue
        pieces.append(value)
        if "\n" in value or "\r" in value:
            pieces += [line for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    forms: set[bytes] = set()
    for piece in pieces:
        if len(piece) < MIN_SECRET_LENGTH:
            continue
        for text in _text_forms(piece):
            forms.add(text.encode("utf-8"))
        forms.update(_base64_forms(piece.encode("utf-8")))
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=lambda f: (-len(f), f))


def _intervals(data: bytes | str, forms: Sequence[bytes] | Sequence[str]) -> list[list[int]]:
    """Every occurrence of every form (overlapping ones too), merged into sorted disjoint ``[start, end)``:
    masking the union leaves no piece of one form visible because another overlapped it."""
    spans: list[tuple[int, int]] = []
    for form in forms:
        size = len(form)
        at = data.find(form)  # type: ignore[arg-type]
        while at >= 0:
            spans.append((at, at + size))
            at = data.find(form, at + 1)  # type: ignore[arg-type]
    if not spans:
        return []
    spans.sort()
    merged: list[list[int]] = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, end])
    return merged


class StreamMasker:
    """Masks one stream of bytes fed in chunks of any size.

    ``feed`` returns what can be let out now; it holds back the longest end of the data that is the start
    of a form (so a value split across chunks is still found whole), never more than the longest form
    minus one byte. ``flush`` masks and returns what is held, at the end of the stream.
    """

    __slots__ = ("_covered", "_forms", "_held", "_prefixes", "longest")

    def __init__(self, forms: Sequence[bytes]) -> None:
        self._forms = list(forms)
        self.longest = max((len(f) for f in self._forms), default=0)
        self._held = b""
        self._covered = 0
        """How many bytes at the start of ``_held`` belong to a mask already let out."""
        # last byte -> lengths of the proper prefixes of a form that end with it (longest first)
        prefixes: dict[int, set[tuple[int, bytes]]] = {}
        for form in self._forms:
            for size in range(1, len(form)):
                prefixes.setdefault(form[size - 1], set()).add((size, form))
        self._prefixes = {last: sorted(found, reverse=True) for last, found in prefixes.items()}

    @property
    def held(self) -> int:
        return len(self._held)

    def _pending(self, data: bytes) -> int:
        """The length of the longest end of ``data`` that is a proper prefix of a form."""
        if not data:
            return 0
        for size, form in self._prefixes.get(data[-1], ()):
            if size <= len(data) and data.endswith(form[:size]):
                return size
        return 0

    def feed(self, data: bytes | memoryview) -> bytes:
        buffer = self._held + bytes(data) if self._held else bytes(data)
        return self._mask(buffer, len(buffer) - self._pending(buffer))

    def flush(self) -> bytes:
        return self._mask(self._held, len(self._held))

    def _mask(self, buffer: bytes, cut: int) -> bytes:
        spans = _intervals(buffer, self._forms)
        covered, self._covered = self._covered, 0
        if covered:  # the mask already let out continues into what was held: it is not repeated
            if spans and spans[0][0] <= covered:
                spans[0][0] = 0
                spans[0][1] = max(spans[0][1], covered)
            else:
                spans.insert(0, [0, covered])
        out: list[bytes] = []
        position = 0
        for start, end in spans:
            if start >= cut:
                break  # starts in what is held back: found again, whole, with the next chunk
            out.append(buffer[position:start])
            if not (covered and start == 0):
                out.append(MASK_BYTES)
            position = end
            if end > cut:
                self._covered = end - cut
        if position < cut:
            out.append(buffer[position:cut])
        self._held = buffer[cut:]
        return b"".join(out)


class TextMasker:
    """Masks text that arrives line by line (one log event at a time). A value of several lines is found
    through its lines, each a form of its own; a line shorter than the minimum stays visible."""

    __slots__ = ("_forms",)

    def __init__(self, forms: Sequence[bytes]) -> None:
        self._forms = [f.decode("utf-8") for f in forms if b"\n" not in f and b"\r" not in f]

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        spans = _intervals(text, self._forms)
        if not spans:
            return text
        out: list[str] = []
        position = 0
        for start, end in spans:
            out.append(text[position:start])
            out.append(MASK)
            position = end
        out.append(text[position:])
        return "".join(out)

    def mask_events(self, events: Sequence[LogEvent], pattern: str | None = None) -> list[LogEvent]:
        """The events, masked; with ``pattern``, only those whose masked message still contains it (a
        grep for a secret's characters must not tell which lines held it)."""
        masked: list[LogEvent] = []
        for event in events:
            message = self.mask(event.message)
            if pattern is not None and pattern not in message:
                continue
            masked.append(
                event if message == event.message else event.model_copy(update={"message": message})
            )
        return masked

    def mask_page(self, page: LogPage, pattern: str | None = None) -> LogPage:
        return page.model_copy(update={"events": self.mask_events(page.events, pattern)})


def text_masker(values: Iterable[str]) -> TextMasker | None:
    """A masker for ``values``; None when none of them is long enough to mask."""
    masker = TextMasker(secret_forms(values))
    return masker if masker else None


def mask_function(masker: TextMasker | None) -> Callable[[str], str] | None:
    return masker.mask if masker is not None else None
