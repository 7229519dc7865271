"""Summarises an Nsight Compute source-page export (ncu -i rep --page source --csv --print-source sass):
stall samples per reason over the whole kernel and over an address range, and the hottest instructions.

    python3 plugin/cuda/sm90/tools/stall_report.py src.csv [--lo 0x39d0 --hi 0x6110] [--top 40]
"""

from __future__ import annotations

import argparse
import csv
import pathlib
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Instr:
    address: int
    source: str
    samples: int
    executed: int
    stalls: dict[str, int] = field(default_factory=dict)

    @property
    def opcode(self) -> str:
        words = self.source.split()
        op = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "")
        return op.split(".")[0]


def _int(text: str) -> int:
    try:
        return int(float(text.replace(",", ""))) if text else 0
    except ValueError:
        return 0


def load(path: pathlib.Path) -> list[Instr]:
    rows = list(csv.reader(path.open()))
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    header = rows[header_at]
    col = {name: i for i, name in enumerate(header)}
    stall_cols = [n for n in header if n.startswith("stall_") and "Not Issued" not in n]
    out = []
    for r in rows[header_at + 1 :]:
        if len(r) < len(header) or not r[0].startswith("0x"):
            continue
        out.append(Instr(int(r[0], 16), r[col["Source"]].strip(), _int(r[col["Warp Stall Sampling (All Samples)"]]),
                         _int(r[col["Instructions Executed"]]), {n[6:]: _int(r[col[n]]) for n in stall_cols}))
    return out


def summary(instrs: list[Instr], title: str) -> str:
    total = sum(i.samples for i in instrs) or 1
    reasons: Counter[str] = Counter()
    by_op: Counter[str] = Counter()
    for i in instrs:
        reasons.update(i.stalls)
        by_op[i.opcode] += i.samples
    lines = [f"== {title}: {total} samples, {sum(i.executed for i in instrs)} warp instructions executed"]
    lines.append("  reasons: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in reasons.most_common(10) if v))
    lines.append("  samples by opcode: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in by_op.most_common(14)))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", type=pathlib.Path)
    ap.add_argument("--lo", type=lambda s: int(s, 16), default=None)
    ap.add_argument("--hi", type=lambda s: int(s, 16), default=None)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    instrs = load(args.csv)
    report = [summary(instrs, "kernel")]
    region = instrs
    if args.lo is not None and args.hi is not None:
        region = [i for i in instrs if args.lo <= i.address < args.hi]
        report.append(summary(region, f"range {args.lo:#x}..{args.hi:#x}"))
    total = sum(i.samples for i in instrs) or 1
    report.append(f"== hottest instructions (share of all samples; top reasons)")
    for i in sorted(region, key=lambda x: -x.samples)[: args.top]:
        top = ", ".join(f"{k} {v}" for k, v in Counter(i.stalls).most_common(3) if v)
        report.append(f"  {i.address:#07x} {100 * i.samples / total:5.2f}%  {i.source[:60]:60s} {top}")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
