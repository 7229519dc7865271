"""Quantization config: global defaults plus per-site overrides, validated against the op schema.

File format (TOML; JSON with the same structure works too)::

    [defaults]                 # any configurable SageAttention attribute
    qk_quant = "int8"
    pv_dtype = "fp16"

    [[override]]               # later overrides win; select by name, regex and/or layer
    regex = "layers\\.(0|1)/"  # re.search on the names of the site's nodes (and the new node's name)
    pv_dtype = "fp8_e4m3"

    [[override]]
    layers = [29]              # site index in graph order (see `sage-onnx inspect`)
    enabled = false            # leave these sites untouched

Configurable attributes are the schema's attributes except the structural ones the pass derives from
the graph (layout, head counts, scale, is_causal, causal_alignment). Unset attributes take the schema defaults.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sage_export.schema import SCHEMA

AttrValue = int | float | str

#: Attributes the pass derives from the graph; the config may not set them.
STRUCTURAL = frozenset({"layout", "q_num_heads", "kv_num_heads", "scale", "is_causal", "causal_alignment"})
_missing = STRUCTURAL - set(SCHEMA.attributes)
if _missing:  # the schema is the source of truth; fail loudly if it renamed what the pass writes
    raise ImportError(f"graph_passes: schema lacks structural attributes {sorted(_missing)}")

CONFIGURABLE = tuple(name for name in SCHEMA.attributes if name not in STRUCTURAL)
_SELECTOR_KEYS = {"name", "regex", "layer", "layers", "enabled"}


class ConfigError(ValueError):
    """An invalid config (message names the key and what is allowed)."""


def validate_attributes(attrs: Mapping[str, Any], where: str) -> dict[str, AttrValue]:
    """Check names against the configurable attributes and values against the schema."""
    out: dict[str, AttrValue] = {}
    for key, value in attrs.items():
        if key in STRUCTURAL:
            raise ConfigError(f"{where}: '{key}' is derived from the graph and cannot be configured")
        if key not in SCHEMA.attributes:
            raise ConfigError(f"{where}: unknown attribute '{key}'; configurable: {', '.join(CONFIGURABLE)}")
        try:
            out[key] = SCHEMA.attributes[key].validate(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return out


@dataclass(frozen=True)
class NodeOverride:
    """Attributes (or ``enabled = False``) for the sites it selects.

    A site is selected when every given selector matches: ``name`` equals one of the site's node
    names, ``regex`` is found (re.search) in one of them, the site index is in ``layers``.
    """

    attributes: Mapping[str, AttrValue] = field(default_factory=dict)
    name: str | None = None
    regex: str | None = None
    layers: tuple[int, ...] = ()
    enabled: bool | None = None

    def __post_init__(self) -> None:
        if self.name is None and self.regex is None and not self.layers:
            raise ConfigError("override needs at least one selector: name, regex or layers")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ConfigError(f"override regex {self.regex!r}: {exc}") from exc

    def matches(self, names: Sequence[str], layer: int) -> bool:
        if self.name is not None and self.name not in names:
            return False
        if self.regex is not None and not any(re.search(self.regex, n) for n in names):
            return False
        if self.layers and layer not in self.layers:
            return False
        return True

    @staticmethod
    def from_dict(raw: Mapping[str, Any], where: str) -> NodeOverride:
        layers: list[int] = []
        if "layer" in raw:
            layers.append(raw["layer"])
        if "layers" in raw:
            layers.extend(raw["layers"])
        if any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in layers):
            raise ConfigError(f"{where}: layers must be non-negative integers, got {layers}")
        enabled = raw.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ConfigError(f"{where}: enabled must be true or false")
        for key in ("name", "regex"):
            if key in raw and not isinstance(raw[key], str):
                raise ConfigError(f"{where}: {key} must be a string")
        attrs = dict(raw.get("attributes", {}))
        attrs.update({k: v for k, v in raw.items() if k not in _SELECTOR_KEYS and k != "attributes"})
        return NodeOverride(
            validate_attributes(attrs, where), raw.get("name"), raw.get("regex"), tuple(layers), enabled
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.regex is not None:
            out["regex"] = self.regex
        if self.layers:
            out["layers"] = list(self.layers)
        if self.enabled is not None:
            out["enabled"] = self.enabled
        out.update(self.attributes)
        return out


@dataclass(frozen=True)
class ResolvedConfig:
    """Config for one site: whether to rewrite it and every quantization attribute's value."""

    enabled: bool
    attributes: dict[str, AttrValue]


@dataclass(frozen=True)
class SageConfig:
    """Global attribute defaults and ordered per-site overrides (later ones win)."""

    defaults: Mapping[str, AttrValue] = field(default_factory=dict)
    overrides: tuple[NodeOverride, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", validate_attributes(self.defaults, "defaults"))

    # ------------------------------------------------------------------------------------ loading
    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> SageConfig:
        unknown = set(raw) - {"defaults", "override", "overrides"}
        if unknown:
            raise ConfigError(f"unknown top-level config key(s) {sorted(unknown)}; expected defaults, override")
        overrides = list(raw.get("override", [])) + list(raw.get("overrides", []))
        return SageConfig(
            dict(raw.get("defaults", {})),
            tuple(NodeOverride.from_dict(o, f"override[{i}]") for i, o in enumerate(overrides)),
        )

    @staticmethod
    def from_file(path: str | Path) -> SageConfig:
        path = Path(path)
        text = path.read_text()
        try:
            raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        try:
            return SageConfig.from_dict(raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def with_defaults(self, **attrs: Any) -> SageConfig:
        """A copy whose defaults are updated with ``attrs`` (None values ignored)."""
        merged = dict(self.defaults)
        merged.update({k: v for k, v in attrs.items() if v is not None})
        return replace(self, defaults=merged)

    def to_dict(self) -> dict[str, Any]:
        return {"defaults": dict(self.defaults), "override": [o.to_dict() for o in self.overrides]}

    # ---------------------------------------------------------------------------------- resolving
    def resolve(self, names: Sequence[str], layer: int) -> ResolvedConfig:
        attrs: dict[str, AttrValue] = {k: SCHEMA.attributes[k].default for k in CONFIGURABLE}
        attrs.update(self.defaults)
        enabled = True
        for o in self.overrides:
            if o.matches(names, layer):
                attrs.update(o.attributes)
                if o.enabled is not None:
                    enabled = o.enabled
        return ResolvedConfig(enabled, attrs)
