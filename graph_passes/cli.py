"""``sage-onnx``: put SageAttention into ONNX models, inspect them, and compare them through ONNX Runtime.

    sage-onnx rewrite IN.onnx OUT.onnx [--config FILE] [--qk int8|int4] [--pv fp8_e4m3|fp16] [--report FILE]
    sage-onnx inspect MODEL.onnx [--json]
    sage-onnx run MODEL.onnx [--config FILE] [--inputs FILE.npz] [--dim NAME=N] [--repeat N]

Quantization attributes come from (lowest to highest precedence) the op schema's defaults, the config
file's [defaults], the command-line flags, and the config file's per-site [[override]] tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sage_export.schema import SCHEMA

from .config import CONFIGURABLE, ConfigError, SageConfig
from .pipeline import RewriteOptions, existing_sage_nodes, load_model, rewrite_model, save_model
from .report import ModelReport

log = logging.getLogger("graph_passes.cli")

#: Short spellings of the two attributes people change most.
_ALIASES = {"qk_quant": "--qk", "pv_dtype": "--pv"}
_TYPES = {"int": int, "float": float, "string": str}


# ------------------------------------------------------------------------------------- arguments
def _add_quant_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quantization attributes (override the config's [defaults]; schema: sage_attention.toml)")
    g.add_argument(
        "--config", metavar="FILE", help="quantization config, TOML or JSON: [defaults] and [[override]] tables"
    )
    for name in CONFIGURABLE:
        spec = SCHEMA.attributes[name]
        flags = [f"--{name.replace('_', '-')}"]
        if name in _ALIASES:
            flags.insert(0, _ALIASES[name])
        choices = list(spec.allowed) if spec.allowed is not None else None
        g.add_argument(
            *flags,
            dest=f"attr_{name}",
            type=_TYPES[spec.type],
            choices=choices,
            default=None,
            metavar="|".join(map(str, choices)) if choices else spec.type.upper(),
            help=f"{spec.doc} (schema default: {spec.default})",
        )


def _add_pass_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pass options")
    g.add_argument(
        "--no-bsnh",
        action="store_true",
        help="always feed BNSH tensors (default: feed BSNH when Q, K and V all come from BSNH tensors)",
    )
    g.add_argument(
        "--assume-unpadded-gqa",
        action="store_true",
        help="rewrite GroupQueryAttention whose seqlens_k is a runtime input, assuming no padding",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sage-onnx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rw = sub.add_parser(
        "rewrite",
        help="replace attention with SageAttention nodes and save the model",
        description="Replace every provably equivalent attention site of IN with a SageAttention node "
        "and save the result as OUT; untouched sites are listed with their reason.",
    )
    rw.add_argument("input", metavar="IN", help="input ONNX model")
    rw.add_argument("output", metavar="OUT", help="output ONNX model (weights go to OUT.data beyond 2 GiB)")
    rw.add_argument(
        "--report", metavar="FILE", help="write the per-site report: .json for JSON, anything else markdown"
    )
    _add_quant_flags(rw)
    _add_pass_flags(rw)

    ins = sub.add_parser(
        "inspect",
        help="list attention sites and SageAttention nodes",
        description="List every attention site (and whether the pass would rewrite it, or why not) "
        "and the SageAttention nodes already in MODEL. The model is not changed.",
    )
    ins.add_argument("model", metavar="MODEL", help="ONNX model")
    ins.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_quant_flags(ins)
    _add_pass_flags(ins)

    run = sub.add_parser(
        "run",
        help="run the model through ONNX Runtime before and after the rewrite",
        description="Run MODEL through ONNX Runtime (CPU) as given and after the rewrite, on random or "
        "given inputs; print each output's fidelity (cosine, relative L1, RMSE, max abs "
        "error) and the median latency of both.",
    )
    run.add_argument(
        "model", metavar="MODEL", help="ONNX model (SageAttention nodes already in it are run as they are)"
    )
    run.add_argument("--inputs", metavar="FILE.npz", help="input arrays by graph-input name (default: random)")
    run.add_argument(
        "--dim", action="append", default=[], metavar="NAME=N", help="value of a symbolic dimension (repeatable)"
    )
    run.add_argument(
        "--shape", action="append", default=[], metavar="INPUT=D0,D1,..", help="shape of one random input (repeatable)"
    )
    run.add_argument(
        "--default-dim", type=int, default=8, metavar="N", help="value of other symbolic dimensions (default 8)"
    )
    run.add_argument(
        "--int-high",
        type=int,
        default=100,
        metavar="N",
        help="random integer inputs are drawn from [0, N) (default 100)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    run.add_argument(
        "--repeat", type=int, default=10, metavar="N", help="timed runs per model after one warm-up (default 10)"
    )
    run.add_argument("--threads", type=int, default=0, metavar="N", help="ORT intra-op threads (default: ORT's choice)")
    run.add_argument(
        "--library", metavar="PATH", help="SageAttention ORT library (default: sage_export.ort_library_path())"
    )
    run.add_argument("--save-rewritten", metavar="PATH", help="also save the rewritten model")
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    _add_quant_flags(run)
    _add_pass_flags(run)
    return parser


def _config(args: argparse.Namespace) -> SageConfig:
    config = SageConfig.from_file(args.config) if args.config else SageConfig()
    flags = {name: getattr(args, f"attr_{name}") for name in CONFIGURABLE}
    return config.with_defaults(**flags)


def _options(args: argparse.Namespace) -> RewriteOptions:
    return RewriteOptions(prefer_bsnh=not args.no_bsnh, assume_unpadded_gqa=args.assume_unpadded_gqa)


# -------------------------------------------------------------------------------------- commands
def cmd_rewrite(args: argparse.Namespace, out: TextIO) -> int:
    model = load_model(args.input)
    rewritten, report = rewrite_model(model, _config(args), _options(args), name=Path(args.input).name, inplace=True)
    save_model(rewritten, args.output)
    if args.report:
        report.save(args.report)
    _print_sites(report, out)
    print(f"{report.summary()}; shape inference: {report.shape_inference}; saved {args.output}", file=out)
    return 0


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    model = load_model(args.model)
    existing = existing_sage_nodes(model)
    _, report = rewrite_model(
        model,
        _config(args),
        RewriteOptions(not args.no_bsnh, args.assume_unpadded_gqa, validate=False),
        name=Path(args.model).name,
        inplace=True,
    )
    nodes: list[dict[str, Any]] = [
        {
            "name": n.name,
            "inputs": list(n.input),
            "outputs": list(n.output),
            "attributes": {a.name: _attr(a) for a in n.attribute},
        }
        for n in existing
    ]
    if args.json:
        print(json.dumps({"sage_nodes": nodes, "report": report.to_dict()}, indent=2, ensure_ascii=False), file=out)
        return 0
    print(f"{len(nodes)} SageAttention node(s) in the model", file=out)
    for n in nodes:
        attrs = ", ".join(f"{k}={v}" for k, v in n["attributes"].items())
        print(
            f"  {n['name'] or '(unnamed)'}: {', '.join(n['inputs'])} -> {', '.join(n['outputs'])}  [{attrs}]", file=out
        )
    print(f"{len(report.sites)} attention site(s) found; {len(report.rewritten)} would be rewritten", file=out)
    _print_sites(report, out, would=True)
    return 0


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    from sage_export import ort_library_path

    from .ort_run import compare_outputs, make_session, random_inputs, run_and_time

    progress = _Progress(sys.stderr)
    library = Path(args.library) if args.library else ort_library_path()
    progress.phase(f"loading {args.model}")
    model = load_model(args.model)
    if args.inputs:
        with np.load(args.inputs) as data:
            feeds = {k: data[k] for k in data.files}
    else:
        feeds = random_inputs(
            model,
            dims=_pairs(args.dim, int),
            shapes=_pairs(args.shape, _shape),
            default_dim=args.default_dim,
            int_high=args.int_high,
            seed=args.seed,
        )
    progress.phase("building the original session")
    original = make_session(model, library if existing_sage_nodes(model) else None, args.threads)
    output_names = [o.name for o in original.get_outputs()]
    ref, t_ref = run_and_time(original, feeds, args.repeat, "original", progress.step)
    del original
    progress.phase("rewriting")
    rewritten, report = rewrite_model(model, _config(args), _options(args), name=Path(args.model).name, inplace=True)
    if args.save_rewritten:
        save_model(rewritten, args.save_rewritten)
    progress.phase("building the rewritten session")
    session = make_session(rewritten, library, args.threads)
    got, t_new = run_and_time(session, feeds, args.repeat, "rewritten", progress.step)
    progress.done()
    comparisons = compare_outputs(output_names, ref, got)
    result: dict[str, Any] = {
        "model": args.model,
        "summary": report.summary(),
        "inputs": {k: list(np.shape(v)) for k, v in feeds.items()},
        "outputs": [
            {
                "name": c.name,
                "cos": c.fidelity.cos if c.fidelity else None,
                "rel_l1": c.fidelity.rel_l1 if c.fidelity else None,
                "rmse": c.fidelity.rmse if c.fidelity else None,
                "max_abs": c.max_abs,
                "equal": c.equal,
            }
            for c in comparisons
        ],
        "latency_ms": {"original": t_ref.median_ms, "rewritten": t_new.median_ms, "runs": args.repeat},
    }
    if args.json:
        print(json.dumps(result, indent=2), file=out)
        return 0
    print(report.summary(), file=out)
    print("inputs: " + ", ".join(f"{k}{list(np.shape(v))}" for k, v in feeds.items()), file=out)
    for c in comparisons:
        if c.fidelity is not None:
            print(f"  {c.name}: {c.fidelity} max_abs={c.max_abs:.3e}", file=out)
        else:
            print(f"  {c.name}: {'identical' if c.equal else 'DIFFERENT'} (non-float output)", file=out)
    if args.repeat:
        ratio = t_ref.median_ms / t_new.median_ms if t_new.median_ms else float("nan")
        print(
            f"latency (median of {args.repeat}): original {t_ref.median_ms:.3f} ms, rewritten {t_new.median_ms:.3f} ms "
            f"({ratio:.2f}x)",
            file=out,
        )
    return 0


# --------------------------------------------------------------------------------------- helpers
def _print_sites(report: ModelReport, out: TextIO, would: bool = False) -> None:
    for s in report.sites:
        if s.rewritten:
            status = "would rewrite" if would else "rewritten"
            keys = ("layout", "scale", "is_causal", "q_num_heads", "kv_num_heads", "qk_quant", "pv_dtype")
            attrs = ", ".join(f"{k}={s.attributes[k]}" for k in keys if k in s.attributes)
            print(f"  [{s.index}] {s.form} at {s.anchor}: {status} -> {s.sage_node} ({attrs})", file=out)
        else:
            print(f"  [{s.index}] {s.form} at {s.anchor}: untouched: {s.reason}", file=out)


def _attr(a: Any) -> Any:
    import onnx

    v = onnx.helper.get_attribute_value(a)
    return v.decode() if isinstance(v, bytes) else v


def _pairs(items: Sequence[str], convert: Any) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected NAME=VALUE, got {item!r}")
        out[key] = convert(value)
    return out


def _shape(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


class _Progress:
    """Progress on stderr: phases, and timed runs (a live counter on terminals, quarter marks otherwise)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()

    def phase(self, text: str) -> None:
        self._clear()
        print(f"[{time.perf_counter() - self.start:6.1f}s] {text}", file=self.stream, flush=True)

    def step(self, label: str, i: int, n: int) -> None:
        if self.tty:
            print(f"\r  {label}: run {i}/{n}", end="", file=self.stream, flush=True)
        elif n >= 4 and i % max(1, n // 4) == 0 or i == n:
            print(f"  {label}: run {i}/{n}", file=self.stream, flush=True)

    def done(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=self.stream, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    commands = {"rewrite": cmd_rewrite, "inspect": cmd_inspect, "run": cmd_run}
    try:
        return commands[args.command](args, sys.stdout)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"sage-onnx: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
