"""The SageAttention op contract, loaded from sage_attention.toml (the one source of truth).

The C++ side reads the same file through plugin/cmake/gen_schema.py, so attribute names, types, defaults and
allowed values cannot drift between the ORT op, the TensorRT plugin and the Python passes.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Mapping

SCHEMA_PATH = Path(__file__).resolve().parent / "sage_attention.toml"

AttrValue = int | float | str


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    type: str  # "int" | "float" | "string"
    default: AttrValue
    allowed: tuple[AttrValue, ...] | None
    min: float | None
    doc: str

    def validate(self, value: Any) -> AttrValue:
        """The value converted to the attribute's type; ValueError naming the attribute otherwise."""
        if self.type == "string":
            if not isinstance(value, str):
                raise ValueError(f"attribute '{self.name}' must be a string; allowed values: {self._allowed_text()}")
            result: AttrValue = value
        elif self.type == "int":
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int):
                raise ValueError(f"attribute '{self.name}' must be an integer, got {value!r}")
            result = value
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                raise ValueError(f"attribute '{self.name}' must be a finite number, got {value!r}")
            result = float(value)
        if self.allowed is not None and result not in self.allowed:
            raise ValueError(f"attribute '{self.name}' is {result!r}; allowed values: {self._allowed_text()}")
        if self.min is not None and result < self.min:  # type: ignore[operator]
            raise ValueError(f"attribute '{self.name}' is {result!r}; it must be >= {self.min}")
        return result

    def _allowed_text(self) -> str:
        return ", ".join(repr(v) for v in self.allowed) if self.allowed else "any"


@dataclass(frozen=True)
class OpSchema:
    name: str
    domain: str
    version: int
    inputs: tuple[str, ...]
    required_inputs: int
    outputs: tuple[str, ...]
    attributes: Mapping[str, AttributeSpec]

    def defaults(self) -> dict[str, AttrValue]:
        return {name: spec.default for name, spec in self.attributes.items()}

    def validate(self, attrs: Mapping[str, Any]) -> dict[str, AttrValue]:
        """Checks names and values; returns the attributes with every unspecified one at its default."""
        unknown = sorted(set(attrs) - set(self.attributes))
        if unknown:
            raise ValueError(f"unknown SageAttention attribute(s) {unknown}; known: {sorted(self.attributes)}")
        merged = self.defaults()
        for name, value in attrs.items():
            merged[name] = self.attributes[name].validate(value)
        return merged


@cache
def load_schema(path: Path = SCHEMA_PATH) -> OpSchema:
    raw = tomllib.loads(path.read_text())
    attrs = {
        a["name"]: AttributeSpec(
            name=a["name"],
            type=a["type"],
            default=a["default"],
            allowed=tuple(a["allowed"]) if "allowed" in a else None,
            min=a.get("min"),
            doc=a["doc"],
        )
        for a in raw["attribute"]
    }
    return OpSchema(
        name=raw["op"]["name"],
        domain=raw["op"]["domain"],
        version=int(raw["op"]["version"]),
        inputs=tuple(i["name"] for i in raw["input"]),
        required_inputs=sum(1 for i in raw["input"] if not i.get("optional", False)),
        outputs=tuple(o["name"] for o in raw["output"]),
        attributes=attrs,
    )


SCHEMA = load_schema()
OP_NAME = SCHEMA.name
OP_DOMAIN = SCHEMA.domain
OP_VERSION = SCHEMA.version
