"""docs/TENSORRT.md documents the plugin's fields; its table must say what the schema says (no build needed).
On a mismatch the failure prints the table to paste."""
from __future__ import annotations

from pathlib import Path

from sage_export.schema import SCHEMA

DOC = Path(__file__).resolve().parents[2] / "docs" / "TENSORRT.md"
BEGIN, END = "<!-- plugin-fields:begin -->", "<!-- plugin-fields:end -->"
FIELD_TYPES = {"int": "kINT32", "float": "kFLOAT32", "string": "kCHAR"}
ONNX_TYPES = {"int": "INT", "float": "FLOAT", "string": "STRING"}


def expected_table() -> str:
    rows = ["| Field | PluginField type | ONNX attribute | Default | Allowed | Meaning |", "|---|---|---|---|---|---|"]
    for name, spec in SCHEMA.attributes.items():
        if spec.allowed is not None:
            allowed = ", ".join(f"`{v}`" for v in spec.allowed)
        elif spec.min is not None:
            allowed = f">= {spec.min}"
        else:
            allowed = "any"
        doc = spec.doc.replace("|", "\\|")
        rows.append(
            f"| `{name}` | {FIELD_TYPES[spec.type]} | {ONNX_TYPES[spec.type]} | `{spec.default}` | {allowed} | {doc} |"
        )
    return "\n".join(rows)


def test_field_table_matches_schema():
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} lacks the {BEGIN} ... {END} markers"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == expected_table(), f"update the table in {DOC} to:\n{expected_table()}"


if __name__ == "__main__":
    print(expected_table())
