"""One way to make a class selectable by name from a Hydra config: a table and its decorator.

Reward components, dataset converters and benchmark adapters are each a table name -> class, filled by a class
decorator at import; a recipe names the entry. Registering two classes under one name is a bug, reported at
import instead of one silently replacing the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


def class_registry(table: dict[str, type], kind: str) -> Callable[[str], Callable[[T], T]]:
    """A decorator factory: `@register(name)` puts the class in `table` under `name` and sets its `name`."""

    def register(name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in table and table[name] is not cls:
                raise ValueError(f"{kind} {name!r} is registered twice ({table[name].__name__} and {cls.__name__})")
            cls.name = name
            table[name] = cls
            return cls

        return decorate

    return register
