"""The one escaping of user text for a terminal or a log (ewmbench.text)."""

from ewmbench.text import for_rich, for_terminal


def test_control_characters_become_visible_escapes():
    assert for_terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert for_terminal("line\r\nnext\ttab\x7f\x9b") == "line\\x0d\\x0anext\\x09tab\\x7f\\x9b"
    assert for_terminal("abc\u202edcba") == "abc\\u202edcba"
    assert for_terminal("ordinary text, é and 漢字") == "ordinary text, é and 漢字"


def test_newlines_kept_only_when_asked():
    assert for_terminal("one\ntwo\x1b", keep_newlines=True) == "one\ntwo\\x1b"
    assert "\n" not in for_terminal("one\ntwo")


def test_bytes_of_a_name_that_is_not_utf8_are_shown_not_raised():
    name = b"clip\xff.mp4".decode("utf-8", "surrogateescape")
    assert for_terminal(name) == "clip\\xff.mp4"


def test_rich_markup_is_escaped_after_control_characters():
    assert for_rich("[bold]x[/bold]\x1b") == "\\[bold]x\\[/bold]\\x1b"
    assert for_rich("[red]") == "\\[red]"
