"""One registry of named, frozen experiment configs.

Every table row of the paper is a named config: a frozen dataclass built by a factory that
takes a preset name (`smoke`, `default`, `paper`). Overrides (`"train.base_lr=0.01"`) are
applied on top, then the config's `validate()` checks cross-field rules, so an invalid
combination fails when the config is built, never half-way through a run.

    cfg = registry.build("table1/lrcn_fc6/rgb", preset="paper", overrides=["train.max_iter=10"])
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lrcn_tf.errors import UserError

PRESETS = ("smoke", "default", "paper")

_FACTORIES: dict[str, Callable[[str], Any]] = {}


class ConfigError(UserError):
    """An unknown config name, preset or field, or a value that breaks a config rule."""


def register(name: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """Registers `factory(preset) -> frozen dataclass` under `name`."""

    def wrap(factory: Callable[[str], Any]) -> Callable[[str], Any]:
        if name in _FACTORIES:
            raise ConfigError(f"config {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return wrap


def names(prefix: str = "") -> list[str]:
    """Registered config names (all of them, or those starting with `prefix`)."""
    _import_all()
    return sorted(n for n in _FACTORIES if n.startswith(prefix))


def build(name: str, preset: str = "default", overrides: Iterable[str] | Mapping[str, Any] = ()):
    """Builds, overrides and validates the config `name` for `preset`.

    Args:
      name: a registered name, e.g. "table1/lrcn_fc6/rgb".
      preset: one of PRESETS.
      overrides: "dotted.field=value" strings or a {dotted.field: value} mapping.

    Returns:
      The validated frozen dataclass.

    Raises:
      ConfigError: unknown name, preset or field, unparsable value, or a broken rule.
    """
    _import_all()
    if name not in _FACTORIES:
        raise ConfigError(f"unknown config {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = _FACTORIES[name](preset)
    cfg = apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def validate(cfg: Any) -> None:
    """Runs `validate()` of the config and of every nested config, innermost first."""
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if dataclasses.is_dataclass(value):
            validate(value)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()


def apply_overrides(cfg: Any, overrides: Iterable[str] | Mapping[str, Any]) -> Any:
    """Returns a copy of `cfg` with dotted fields replaced; string values are parsed by type."""
    items = overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides)
    for key, value in items:
        cfg = _replace_path(cfg, key.split("."), value, key)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form field=value")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _replace_path(cfg: Any, path: list[str], value: Any, full_key: str) -> Any:
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"override {full_key!r}: {path[0]!r} is not a config section")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if path[0] not in fields:
        raise ConfigError(
            f"override {full_key!r}: {type(cfg).__name__} has no field {path[0]!r}; "
            f"fields: {', '.join(fields)}"
        )
    current = getattr(cfg, path[0])
    if len(path) > 1:
        new = _replace_path(current, path[1:], value, full_key)
    else:
        hint = typing.get_type_hints(type(cfg))[path[0]]
        new = _coerce(value, hint, full_key)
    return dataclasses.replace(cfg, **{path[0]: new})


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Parses `value` (often a flag string) into the annotated type `hint`."""
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null", "") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"override {key!r}: {value!r} is not one of {args}")
        return value
    if origin is tuple:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        inner = args[0] if args else str
        return tuple(_coerce(p, inner, key) for p in parts)
    try:
        if hint is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint in (int, float, str):
            return hint(value)
    except ValueError:
        raise ConfigError(f"override {key!r}: cannot read {value!r} as {hint.__name__}") from None
    raise ConfigError(f"override {key!r}: fields of type {hint} cannot be set from a flag")


def _import_all() -> None:
    """Imports every module of lrcn_tf.configs so that their @register calls run."""
    import importlib
    import pkgutil
    from pathlib import Path

    # The folder, not the package object: importing lrcn_tf.configs here would be a cycle.
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name != "registry":
            importlib.import_module(f"lrcn_tf.configs.{info.name}")
