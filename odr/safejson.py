"""The one way JSON from outside is read: room socket frames, the court API,
the Torelik callback.

`json.loads` alone accepts what a hostile peer can use to crash the reader
or what reads it next: nesting deep enough to raise RecursionError (not a
ValueError), escaped lone surrogates (`"\\ud800"`) that become a `str` no
encoder can write back out, numbers of thousands of digits, `NaN` and
`Infinity`. Here each is refused with a `JSONRefused` whose `code` says why
and whose `detail` is translated and never echoes the input.
"""

import json
import math
import re

from django.utils.translation import gettext as _

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40

_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRefused(ValueError):
    """`code`: too_large, not_utf8, not_json, too_deep, bad_text, bad_number."""

    def __init__(self, code: str, *, limit: int | None = None):
        super().__init__(code)
        self.code = code
        self.limit = limit

    @property
    def detail(self) -> str:
        if self.code == "too_large":
            return _("The data is too large (at most %(bytes)d bytes).") % {"bytes": self.limit}
        if self.code == "too_deep":
            return _("The data is nested too deeply (at most %(depth)d levels).") % {"depth": self.limit}
        if self.code in ("not_utf8", "bad_text"):
            return _("The data contains text that is not valid Unicode.")
        if self.code == "bad_number":
            return _("The data contains a number that is too long or not finite.")
        return _("The data is not valid JSON.")


def _number(text: str, convert):
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONRefused("bad_number")
    value = convert(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise JSONRefused("bad_number")
    return value


def _constant(_name: str):
    raise JSONRefused("bad_number")  # NaN, Infinity, -Infinity: not JSON


def _bad_text(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _check(value, max_depth: int) -> None:
    """Depth and text of every value, without recursion (the input is hostile)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JSONRefused("too_deep", limit=max_depth)
            for key, child in item.items():
                if _bad_text(key):
                    raise JSONRefused("bad_text")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise JSONRefused("too_deep", limit=max_depth)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and _bad_text(item):
            raise JSONRefused("bad_text")


def loads(data: str | bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH):
    """The JSON value of `data` (UTF-8 when bytes), or JSONRefused."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > max_bytes:
            raise JSONRefused("too_large", limit=max_bytes)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONRefused("not_utf8") from None
    else:
        text = data
        if len(text) * 4 > max_bytes:  # cheap bound first: a UTF-8 character is at most 4 bytes
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate in the text itself
                raise JSONRefused("bad_text") from None
            if size > max_bytes:
                raise JSONRefused("too_large", limit=max_bytes)
        if _bad_text(text):
            raise JSONRefused("bad_text")
    try:
        value = json.loads(
            text,
            parse_int=lambda s: _number(s, int),
            parse_float=lambda s: _number(s, float),
            parse_constant=_constant,
        )
    except JSONRefused:
        raise
    except RecursionError:
        raise JSONRefused("too_deep", limit=max_depth) from None
    except ValueError:
        raise JSONRefused("not_json") from None
    _check(value, max_depth)
    return value
