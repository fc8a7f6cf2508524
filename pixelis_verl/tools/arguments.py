"""Parsing the arguments a model gives a tool: numbers, points and boxes, with errors the model can act on.

Argument errors are `ToolArgumentError`s whose message is shown to the model, so each is one line that names
the tool, the argument and the value it got. Numbers may come as numbers, numeric strings or a JSON string of a
list; booleans, NaN and infinities are refused.
"""

import json
import math
from typing import Any

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
Point = tuple[float, float]  # x, y

# Longest rendering of a bad value inside an error message; verl truncates tool text to
# `multi_turn.max_tool_response_length` (256 characters by default).
_MAX_VALUE_CHARS = 60


class ToolArgumentError(ValueError):
    """An argument the model got wrong. The message goes back to the model as the tool's answer."""


def show_value(value: Any) -> str:
    """A short, JSON-looking rendering of a model-given value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_int(tool: str, value: Any, arg: str, *, low: int, high: int, hint: str = "") -> int:
    """An integer argument in [low, high] from an int, an integral float or a numeric string."""
    number = _as_number(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or not low <= number <= high:
        raise ToolArgumentError(f"{tool}: {arg} must be an integer from {low} to {high}{hint}; got {show_value(value)}")
    return int(number)


def parse_number(tool: str, value: Any, arg: str) -> float:
    """A finite number from a number or a numeric string."""
    number = _as_number(value)
    if number is None or not math.isfinite(number):
        raise ToolArgumentError(f"{tool}: {arg} must be a number; got {show_value(value)}")
    return number


def _numbers(tool: str, value: Any, arg: str, count: int, shape: str) -> list[float]:
    """`count` finite numbers from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    given = show_value(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    numbers = [_as_number(v) for v in value] if isinstance(value, list | tuple) else []
    if len(numbers) != count or None in numbers:
        raise ToolArgumentError(f"{tool}: {arg} must be a list of {count} numbers {shape}; got {given}")
    if not all(math.isfinite(n) for n in numbers):
        raise ToolArgumentError(f"{tool}: {arg} must contain finite numbers; got {given}")
    return numbers


def parse_point(tool: str, value: Any, arg: str = "point_2d") -> Point:
    """[x, y] from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    x, y = _numbers(tool, value, arg, 2, "[x, y]")
    return x, y


def parse_box(tool: str, value: Any, arg: str = "bbox_2d") -> Box:
    """[x1, y1, x2, y2] from a list/tuple of numbers or numeric strings, or a JSON string of one."""
    x1, y1, x2, y2 = _numbers(tool, value, arg, 4, "[x1, y1, x2, y2]")
    if not (x1 < x2 and y1 < y2):
        raise ToolArgumentError(
            f"{tool}: {arg} must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got {show_value(value)}"
        )
    return x1, y1, x2, y2
