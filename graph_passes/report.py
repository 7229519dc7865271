"""Per-model report of the rewrite: every attention site, what was done with it, and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

AttrValue = int | float | str


@dataclass
class SiteReport:
    """One attention site. ``index`` is the site's position in graph order (the config's layer)."""

    index: int
    form: str
    anchor: str
    nodes: list[str]
    rewritten: bool
    reason: str | None = None
    sage_node: str | None = None
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    output: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelReport:
    model: str
    opset: int
    domain: str
    domain_version: int
    sites: list[SiteReport] = field(default_factory=list)
    existing_sage_nodes: list[str] = field(default_factory=list)
    shape_inference: str = "not run"
    messages: list[str] = field(default_factory=list)

    @property
    def rewritten(self) -> list[SiteReport]:
        return [s for s in self.sites if s.rewritten]

    @property
    def untouched(self) -> list[SiteReport]:
        return [s for s in self.sites if not s.rewritten]

    def summary(self) -> str:
        return (
            f"{self.model}: {len(self.sites)} attention site(s), {len(self.rewritten)} rewritten, "
            f"{len(self.untouched)} untouched"
        )

    # ---------------------------------------------------------------------------------- formats
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = {"sites": len(self.sites), "rewritten": len(self.rewritten), "untouched": len(self.untouched)}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [
            f"# SageAttention rewrite report: {self.model}",
            "",
            f"- default-domain opset {self.opset}; custom domain `{self.domain}` version {self.domain_version}",
            f"- {len(self.sites)} attention site(s): **{len(self.rewritten)} rewritten**, "
            f"{len(self.untouched)} untouched",
            f"- shape inference after the rewrite: {self.shape_inference}",
        ]
        if self.existing_sage_nodes:
            lines.append(f"- SageAttention nodes already present: {', '.join(self.existing_sage_nodes)}")
        lines += [f"- {m}" for m in self.messages]
        lines += ["", "| # | form | anchor | rewritten | attributes / reason |", "|---|---|---|---|---|"]
        for s in self.sites:
            if s.rewritten:
                detail = ", ".join(f"{k}={v}" for k, v in s.attributes.items())
            else:
                detail = s.reason or ""
            lines.append(f"| {s.index} | {s.form} | `{s.anchor}` | {'yes' if s.rewritten else 'no'} | {_md(detail)} |")
        notes = [(s.index, n) for s in self.sites for n in s.notes]
        if notes:
            lines += ["", "## Notes", ""]
            lines += [f"- site {i}: {_md(n)}" for i, n in notes]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write JSON (``.json``) or markdown (anything else)."""
        path = Path(path)
        path.write_text(self.to_json() if path.suffix.lower() == ".json" else self.to_markdown())


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
