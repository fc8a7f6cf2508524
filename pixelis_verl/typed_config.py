"""Typed config blocks and one-line config errors: the leaf every layer may import.

`from_dict` turns a recipe block into its dataclass and names any key the dataclass lacks, so a typo fails at
startup instead of being silently ignored; `RecipeError` is the one-line, key-naming error every entry prints.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")


class RecipeError(ValueError):
    """A user-facing configuration mistake; its message is one line that names the key or file."""


def from_dict(cls: type[T], values: dict[str, Any], where: str) -> T:
    """A config block as its dataclass; a key the dataclass lacks fails at startup naming it, not silently.

    A field whose default factory is a dataclass is a nested block, built (and checked) the same way.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    values = dict(values)
    for f in fields(cls):
        if is_dataclass(f.default_factory) and isinstance(values.get(f.name), dict):
            values[f.name] = from_dict(f.default_factory, values[f.name], f"{where}.{f.name}")
    return cls(**values)


def values_at(cfg: DictConfig, key: str) -> list[Any]:
    """The value(s) at `key`: a list's items, a single value as a list of one, nothing for an unset key."""
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    return [] if value is None else list(value) if OmegaConf.is_list(value) else [value]
