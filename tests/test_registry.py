"""The one registry type (names -> "module:attr") and the one option parser."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ewmbench.errors import ConfigError
from ewmbench.registry import Entry, Option, Registry, parse_flag, parse_options

ROOT = Path(__file__).resolve().parents[1]


def _registry(**kwargs) -> Registry:
    return Registry(
        "widget",
        [
            Entry("json-dumps", "json:dumps", "writes JSON"),
            Entry("path", "pathlib:Path", "a path"),
        ],
        hint="(see `widgets`)",
        **kwargs,
    )


def test_listing_and_loading():
    widgets = _registry()
    assert widgets.names() == ["json-dumps", "path"]
    assert widgets.sources() == {"json-dumps": "json:dumps", "path": "pathlib:Path"}
    assert widgets.entries()["path"].description == "a path"
    assert "path" in widgets and "nope" not in widgets and 3 not in widgets
    import json

    assert widgets.load("json-dumps") is json.dumps and widgets.load("path") is Path


def test_unknown_names_the_closest_and_every_name():
    with pytest.raises(
        ConfigError,
        match=r"unknown widget 'paht' \(did you mean 'path'\?\); available: json-dumps, path \(see `widgets`\)",
    ):
        _registry().load("paht")
    # a module:attr reference is only followed where the registry allows references
    with pytest.raises(ConfigError, match="unknown widget 'json:loads'"):
        _registry().load("json:loads")
    import json

    assert _registry(references=True).load("json:loads") is json.loads
    with pytest.raises(ConfigError, match="widget 'no_such_module:x': cannot import module 'no_such_module'"):
        _registry(references=True).load("no_such_module:x")
    with pytest.raises(ConfigError, match="names nothing"):
        _registry(references=True).load("json:no_such_function")


def test_base_class_is_checked():
    paths = _registry(base=Path)
    assert paths.load("path") is Path
    with pytest.raises(ConfigError, match="'json:dumps' is not a Path subclass"):
        paths.load("json-dumps")


def test_in_process_registration_comes_after_builtins_and_refuses_a_second_object():
    widgets = _registry()

    class Local:
        """A widget of this process."""

    assert widgets.register("local", Local) is Local
    assert widgets.register("local", Local) is Local  # the same object again is fine
    assert widgets.names() == ["json-dumps", "path", "local"]
    assert widgets.sources()["local"].endswith(
        ":test_in_process_registration_comes_after_builtins_and_refuses_a_second_object.<locals>.Local"
    )
    assert widgets.entries()["local"].description == "A widget of this process."
    assert widgets.load("local") is Local
    with pytest.raises(ValueError, match="widget 'local' registered twice"):
        widgets.register("local", object)


def test_entry_points_are_listed_without_being_imported(monkeypatch):
    class Point:
        name = "plugin"
        value = "some_plugin_package.module:Thing"

    seen = []

    def fake_entry_points(group):
        seen.append(group)
        return [Point()]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    widgets = _registry(entry_point_group="ewmbench.widgets")
    assert widgets.sources()["plugin"] == "some_plugin_package.module:Thing"
    assert seen == ["ewmbench.widgets"]
    assert "some_plugin_package" not in sys.modules


def test_parse_options_reads_yaml_scalars():
    assert parse_options(["steps=4", "guidance-scale=3.5", "fast=true", "name=a b", "empty="]) == {
        "steps": 4,
        "guidance_scale": 3.5,
        "fast": True,
        "name": "a b",
        "empty": None,
    }
    with pytest.raises(ConfigError, match=r"^--x: expected key=value, got 'steps'$"):
        parse_options(["steps"], "--x")
    with pytest.raises(ConfigError, match=r"expected key=value, got '=3' \(no key\)"):
        parse_options(["=3"])
    with pytest.raises(ConfigError, match="steps: value '\\[1' is not valid YAML"):
        parse_options(["steps=[1"])


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        ("Yes", True),
        ("no", False),
        ("TRUE", True),
        ("0", False),
    ],
)
def test_parse_flag(value, expected):
    assert parse_flag(value, "x") is expected


@pytest.mark.parametrize("value", ["maybe", 2, 0.5, None, [1]])
def test_parse_flag_refuses(value):
    with pytest.raises(ConfigError, match=r"^flag must be true or false, got "):
        parse_flag(value, "flag")


def test_option_checks_type_range_and_choices():
    steps = Option("steps", int, 4, low=1, high=100)
    assert steps.parse("8", "m") == 8 and steps.parse(8.0, "m") == 8 and steps.parse(None, "m") is None
    with pytest.raises(ConfigError, match="model 'm' option 'steps' must be an integer, got 2.5"):
        steps.parse(2.5, "m")
    with pytest.raises(ConfigError, match="^p steps must be from 1 to 100, got 0$"):
        steps.check(0, "p steps")
    size = Option("size", str, "s", choices=("s", "m"))
    with pytest.raises(ConfigError, match=r"must be one of \['s', 'm'\], got 'l'"):
        size.parse("l", "m")
    assert Option("fast", bool).parse("yes", "m") is True


def test_every_registry_lists_without_importing_its_members():
    """Listing models, policies, judges and executors imports none of their modules, and nothing
    heavy is imported. (The ``ewmbench.metrics`` face re-exports each group's pure functions, so
    its metric modules are loaded with it; none of them imports torch.)"""
    code = textwrap.dedent(
        """
        import sys
        from ewmbench.loop.judges import JUDGES
        from ewmbench.loop.policies import POLICIES
        from ewmbench.metrics.base import METRICS
        from ewmbench.models.registry import MODELS
        from ewmbench.preflight import EXECUTORS

        listed = {r.kind: r.sources() for r in (MODELS, METRICS, POLICIES, JUDGES, EXECUTORS)}
        modules = {t.split(":")[0] for s in listed.values() for t in s.values()}
        loaded = sorted(m for m in modules if m in sys.modules and m not in (
            "ewmbench.loop.judges", "ewmbench.models.registry") and not m.startswith("ewmbench.metrics."))
        print(loaded, sorted(listed["executor"]), len(listed["metric"]) >= 9)
        print(any(m in sys.modules for m in ("torch", "ray", "pybullet", "websockets")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[] ['processes', 'ray', 'serial'] True", "False"]
