"""A registry of bad-input cases: each builds its broken input in a fresh workspace and says what
the command must answer (exit status and the words that name the file or option and the problem)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.bad_input.tools import Outcome, Workspace, run_cli, tree_hash


@dataclass
class Case:
    name: str
    build: Callable  # (Workspace) -> list[str] (the command line)
    code: int
    needles: tuple[str, ...]
    nothing_written: bool  # the output folder is as it was before the command (absent, mostly)


def registry() -> tuple[list[Case], Callable]:
    cases: list[Case] = []

    def case(code: int, *needles: str, nothing_written: bool | None = None):
        def register(build):
            cases.append(
                Case(
                    build.__name__,
                    build,
                    code,
                    needles,
                    code == 2 if nothing_written is None else nothing_written,
                )
            )
            return build

        return register

    return cases, case


def check(case: Case, ws: Workspace, as_subprocess: bool = False) -> Outcome:
    args = case.build(ws)
    output_before = tree_hash(ws.out)
    outcome = run_cli(args, ws.inputs(), as_subprocess=as_subprocess)
    assert outcome.code == case.code, f"exit {outcome.code}, expected {case.code}: {outcome.output}"
    for needle in case.needles:
        assert needle in outcome.output, f"{needle!r} not in: {outcome.output}"
    if case.nothing_written:
        assert tree_hash(ws.out) == output_before, f"{ws.out} was written"
    return outcome


def parametrize(cases: list[Case]):
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])
