"""Typed, frozen views of params.yaml sections.

Each section is a frozen dataclass. `from_mapping` rejects unknown keys with the nearest valid name, so a
typo in `dvc exp run -S` fails loudly instead of being silently ignored.

Profiles: every section holds the papers' values; the top-level `profile` selects an overlay from
`profiles` (`cpu`: the CPU-sized default run, one block of overrides by section, each with its reason)
or none (`paper`). `load_params` returns the params with the selected overlay applied.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aubench.errors import ConfigError

T = TypeVar("T")


def load_params(path: str | Path = "params.yaml", profile: bool = True) -> dict[str, Any]:
    """Read the whole params file as a plain mapping, with the selected profile applied (`profile`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the project root)")
    with path.open() as handle:
        params = yaml.safe_load(handle) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return apply_profile(params) if profile else params


def apply_profile(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with the overlay `profiles.<profile>` applied (`paper`, the default, applies none)."""
    name = params.get("profile", "paper")
    if name == "paper":
        return params
    profiles = params.get("profiles") or {}
    if name not in profiles:
        raise ConfigError(f"profile: unknown profile {name!r}; use paper or one of {', '.join(profiles) or '(none)'}")
    patched = copy.deepcopy(params)
    for section_name, changes in (profiles[name] or {}).items():
        if section_name not in patched:
            raise ConfigError(f"profiles.{name}.{section_name}: params.yaml has no section {section_name!r}")
        for dotted, value in (changes or {}).items():
            set_dotted(patched[section_name], dotted, value, f"profiles.{name}.{section_name}")
    return patched


def set_dotted(mapping: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """mapping["a"]["b"] = value for dotted = "a.b" (creating missing subsections)."""
    *parents, leaf = str(dotted).split(".")
    target = mapping
    for parent in parents:
        target = target.setdefault(parent, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{where}.{dotted}: {parent!r} is not a section")
    target[leaf] = copy.deepcopy(value)


def from_mapping(cls: type[T], mapping: Any, where: str) -> T:
    """Build dataclass `cls` from `mapping`, checking keys and types; `where` names the section."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in mapping:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"{where}.{key}: unknown key{hint}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name in mapping:
            values[name] = _coerce(mapping[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = args[0]
        return tuple(_coerce(item, item_type, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def section(cls: type[T], params: dict[str, Any], name: str) -> T:
    """The params section `name` as a `cls` instance (a missing section means all defaults)."""
    return from_mapping(cls, params.get(name, {}), name)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable copy of a config dataclass (for saving resolved configurations)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
