"""How much Python a call runs, counted rather than timed.

A check that went quadratic (a pass over all logs per gap) is caught by its work
growing with the square of its input: the lines of Python it runs are counted with
``sys.settrace`` for an input and for one twice as big. The count does not depend on
the machine's load, as a wall-clock limit did. Loops inside C (``list.index``) are
not counted; the quadratic loops these tests guard against were Python loops and
generator expressions, which are."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


class OverBudget(Exception):
    """The call ran more lines than it was allowed (a quadratic loop: stop it early)."""


def python_lines(call: Callable[[], T], budget: int | None = None) -> tuple[T, int]:
    """``call()``'s result and the number of lines of Python it ran (every frame it
    entered). More than ``budget`` lines raise OverBudget at once."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
            if budget is not None and count > budget:
                raise OverBudget(f"more than {budget} lines of Python")
        return local

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        return local

    sys.settrace(enter)
    try:
        result = call()
    finally:
        sys.settrace(None)
    return result, count


def assert_linear(run: Callable[[int], object], n: int, *, slack: float = 2.6) -> None:
    """``run(2 * n)`` runs at most ``slack`` times the lines of ``run(n)`` (linear work
    doubles; quadratic work quadruples)."""
    _, small = python_lines(lambda: run(n))
    try:
        _, big = python_lines(lambda: run(2 * n), budget=int(small * slack))
    except OverBudget:
        raise AssertionError(
            f"{n} items ran {small} lines of Python; twice as many ran over {slack} times that"
        ) from None
    assert small > n, (small, n)  # the count saw the per-item work at all
    assert big <= small * slack, (small, big)
