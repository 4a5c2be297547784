"""User-supplied text made safe to show: the one place that escapes it for a terminal or a log.

Paths, names, messages and request fields come from files and clients we do not control. Printed
raw, an ESC byte starts an ANSI sequence (moves the cursor, retitles the window, hides what
follows) and a ``[`` starts rich markup. ``for_terminal`` writes every control character as a
visible escape; ``for_rich`` also escapes rich markup, for text printed through a rich console.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

# C0 controls (tab and newline too: a log line stays one line), DEL, C1 controls, and the Unicode
# line/paragraph separators and bidirectional overrides that reorder what is shown.
_FORMAT = "\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff"  # zero-width, separators, bidi
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_FORMAT}]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def for_terminal(text: object, *, keep_newlines: bool = False, limit: int | None = None) -> str:
    """``text`` as one printable line: control characters (ESC, CR, newline, tab, DEL, C1,
    bidirectional overrides) shown as ``\\xNN`` / ``\\uNNNN`` escapes, and bytes of a name that is
    not UTF-8 shown as ``\\xNN`` instead of failing the print. ``keep_newlines`` leaves line feeds
    alone, for a message of our own that lists one problem a line (never for a log line).
    ``limit`` cuts what is shown to that many characters (text from a bundle or a client)."""
    value = str(text)
    try:  # a file name read from disk: its undecodable bytes come back as themselves
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # any other lone surrogate
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    value = (_UNSAFE_BUT_NEWLINE if keep_newlines else _UNSAFE).sub(_visible, value)
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


def for_rich(text: object, *, keep_newlines: bool = False, limit: int | None = None) -> str:
    """``for_terminal`` with rich markup escaped too: for text printed through a rich console."""
    return _escape_markup(for_terminal(text, keep_newlines=keep_newlines, limit=limit))
