"""Attention throughput on one GPU: SageAttention's CUDA runner against torch SDPA (flash, cuDNN).

    python3 bench/bench_attention.py --out bench/out            # the full sweep
    python3 bench/bench_attention.py --out /tmp/b --quick       # D=128, N in {1K, 8K}

Shapes: B=4, H=32, D in {64, 128}, N in {1K ... 32K}, causal and not, fp16 Gaussian inputs. Each contender is
a named factory that returns a zero-argument callable for one (q, k, v, causal); timing is the median of
triton.testing.do_bench (CUDA events, L2 flushed between runs), TOPS = 4*B*H*N^2*D / t, halved when causal.
Fidelity (cos, relative L1) is measured against float64 attention on a subsample of query rows.
Writes results.json, results.md and tops.png (if matplotlib is installed) to --out.

To add a contender (e.g. an ORT session with IO binding), append a Contender to CONTENDERS: `make(q, k, v,
causal)` gets BNSH fp16 CUDA tensors and returns a callable producing the BNSH output (or None to skip).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class Contender:
    name: str
    make: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], Callable[[], torch.Tensor] | None]
    note: str = ""


# --- contenders ------------------------------------------------------------------------------------------

def _sage(kernel_only: bool, **attrs: Any):
    def make(q, k, v, causal):
        from sage_export import cuda_api

        call = cuda_api.CudaAttentionCall(q, k, v, is_causal=int(causal), **attrs)
        if kernel_only:
            call.run(cuda_api.PHASE_PREPROCESS)  # quantize once; time only the attention kernel
            return lambda: call.run(cuda_api.PHASE_ATTENTION)
        return call.run
    return make


def _sdpa(backend_name: str):
    def make(q, k, v, causal):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, backend_name)

        def run():
            with sdpa_kernel(backend):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        try:
            run()
        except RuntimeError:
            return None  # backend not available for this shape/GPU
        return run
    return make


def _ort(factory_name: str, **attrs: Any):
    """An ONNX Runtime session on the CUDA EP with IO binding on the same torch tensors (bench/ort_contenders)."""
    def make(q, k, v, causal):
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return None
        from bench import ort_contenders

        factory = getattr(ort_contenders, factory_name)
        if factory_name == "sage_op":
            run, out = factory(torch, q, k, v, is_causal=int(causal), **attrs)
        else:
            run, out = factory(torch, q, k, v, causal)

        def call():
            run()
            return out
        return call
    return make


SAGE_SM80 = dict(kernel="sm80", pv_dtype="fp16", pv_accum="fp32")
SAGE_SM89 = dict(kernel="sm89", pv_dtype="fp8_e4m3", pv_accum="fp32")
SAGE_SM89_PP = dict(kernel="sm89", pv_dtype="fp8_e4m3", pv_accum="fp16")

CONTENDERS: list[Contender] = [
    Contender("sage sm80 kernel", _sage(True, **SAGE_SM80), "(a) INT8 QK, FP16 PV, fp32 accumulation"),
    Contender("sage sm80 e2e", _sage(False, **SAGE_SM80), "(b) same, including quantization"),
    Contender("sage sm89 kernel", _sage(True, **SAGE_SM89), "(a) INT8 QK, FP8 PV two-level fp32"),
    Contender("sage sm89 e2e", _sage(False, **SAGE_SM89), "(b) same, including quantization"),
    Contender("sage sm89++ e2e", _sage(False, **SAGE_SM89_PP), "(b) FP8 PV with fp16 accumulation (2++)"),
    Contender("sage sm90 e2e", _sage(False, kernel="sm90"), "(b) Hopper TMA+wgmma kernel, INT8 QK, FP8 PV, incl. quantization"),
    Contender("sage ort sm80", _ort("sage_op", **SAGE_SM80), "(c) the op in an ORT session, IO binding"),
    Contender("sage ort auto", _ort("sage_op"), "(c) the op with default attributes (kernel=auto) in ORT"),
    Contender("ort mha", _ort("ort_multihead_attention"), "(e) com.microsoft MultiHeadAttention, fp16"),
    Contender("ort attention23", _ort("onnx_attention_23"), "(e) ONNX opset-23 Attention on ORT, fp16"),
    Contender("sdpa flash", _sdpa("FLASH_ATTENTION"), "(d) torch SDPA flash, fp16"),
    Contender("sdpa cudnn", _sdpa("CUDNN_ATTENTION"), "(d) torch SDPA cuDNN, fp16"),
]


# --- measurement -----------------------------------------------------------------------------------------

def exact_rows(q, k, v, causal: bool, rows: torch.Tensor) -> torch.Tensor:
    """float64 attention for query rows `rows` of batch 0, heads 0..1."""
    qs = q[0, :2, rows].double()
    s = qs @ k[0, :2].double().transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        keys = torch.arange(k.shape[2], device=q.device)
        s = s.masked_fill(keys[None, None, :] > rows[None, :, None], float("-inf"))
    return torch.softmax(s, dim=-1) @ v[0, :2].double()


def fidelity_rows(out: torch.Tensor, ref: torch.Tensor, rows: torch.Tensor) -> dict[str, float]:
    o = out[0, :2, rows].double().flatten()
    r = ref.flatten()
    cos = float(torch.dot(o, r) / (o.norm() * r.norm()))
    rel_l1 = float((o - r).abs().sum() / r.abs().sum())
    return {"cos": cos, "rel_l1": rel_l1}


def time_ms(fn: Callable[[], Any], warmup_ms: float, rep_ms: float) -> float:
    try:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))
    except ImportError:  # CUDA events, median of repeats
        for _ in range(3):
            fn()
        times = []
        for _ in range(10):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return sorted(times)[len(times) // 2]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    dev = torch.cuda.get_device_name()
    records = []
    selected = [c for c in CONTENDERS if not args.only or any(s in c.name for s in args.only)]
    for d in args.dims:
        for causal in (False, True):
            for n in args.seqs:
                torch.manual_seed(n + d)
                q, k, v = (torch.randn(args.batch, args.heads, n, d, device="cuda", dtype=torch.float16)
                           for _ in range(3))
                rows = torch.randperm(n, device="cuda")[: args.fidelity_rows].sort().values
                ref = exact_rows(q, k, v, causal, rows)
                flops = 4.0 * args.batch * args.heads * n * n * d / (2 if causal else 1)
                for c in selected:
                    rec = {"device": dev, "contender": c.name, "head_dim": d, "causal": causal, "seq_len": n,
                           "batch": args.batch, "heads": args.heads}
                    try:
                        fn = c.make(q, k, v, causal)
                        if fn is None:
                            continue
                        out = fn()
                        torch.cuda.synchronize()
                        rec.update(fidelity_rows(out, ref, rows))
                        ms = time_ms(fn, args.warmup_ms, args.rep_ms)
                        rec.update(ms=ms, tops=flops / (ms * 1e-3) / 1e12)
                    except Exception as exc:  # a failing contender must not stop the sweep
                        rec["error"] = f"{type(exc).__name__}: {exc}"
                    records.append(rec)
                    shown = f"{rec['tops']:7.1f} TOPS cos {rec['cos']:.5f}" if "tops" in rec else rec.get("error", "")
                    print(f"D={d:3d} causal={int(causal)} N={n:6d} {c.name:18s} {shown}", flush=True)
                    del fn
                del q, k, v
                torch.cuda.empty_cache()
    return records


# --- reports ---------------------------------------------------------------------------------------------

def markdown(records: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(r["contender"] for r in records))
    keys = list(dict.fromkeys((r["head_dim"], r["causal"], r["seq_len"]) for r in records))
    by = {(r["head_dim"], r["causal"], r["seq_len"], r["contender"]): r for r in records}
    dev = records[0]["device"] if records else "?"
    lines = [f"TOPS on {dev} (B={records[0]['batch']}, H={records[0]['heads']}, fp16 in/out; 4*B*H*N^2*D/t, "
             "halved if causal). cos / rel-L1 vs float64 attention on sampled rows in results.json.", "",
             "| D | causal | N | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for d, causal, n in keys:
        cells = []
        for name in names:
            r = by.get((d, causal, n, name))
            cells.append("-" if r is None else f"{r['tops']:.0f}" if "tops" in r else "err")
        lines.append(f"| {d} | {int(causal)} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "| contender | worst cos | worst rel-L1 |", "|---|---|---|"]
    for name in names:
        rs = [r for r in records if r["contender"] == name and "cos" in r]
        if rs:
            lines.append(f"| {name} | {min(r['cos'] for r in rs):.5f} | {max(r['rel_l1'] for r in rs):.4f} |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    panels = sorted({(r["head_dim"], r["causal"]) for r in records})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (d, causal) in zip(axes[0], panels):
        for name in dict.fromkeys(r["contender"] for r in records):
            rs = [r for r in records if r["contender"] == name and r["head_dim"] == d and r["causal"] == causal
                  and "tops" in r]
            if rs:
                ax.plot([r["seq_len"] for r in rs], [r["tops"] for r in rs], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_title(f"D={d} {'causal' if causal else 'non-causal'}")
        ax.set_xlabel("N")
        ax.set_ylabel("TOPS")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    p.add_argument("--seqs", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768])
    p.add_argument("--only", nargs="*", help="run only contenders whose name contains one of these")
    p.add_argument("--quick", action="store_true", help="D=128, N in {1K, 8K}")
    p.add_argument("--warmup-ms", type=float, default=25)
    p.add_argument("--rep-ms", type=float, default=100)
    p.add_argument("--fidelity-rows", type=int, default=256)
    args = p.parse_args(argv)
    if args.quick:
        args.dims, args.seqs = [128], [1024, 8192]
    if not torch.cuda.is_available():
        print("no GPU: nothing to benchmark")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    records = run(args)
    (args.out / "results.json").write_text(json.dumps(records, indent=1))
    table = markdown(records)
    (args.out / "results.md").write_text(table)
    plot(records, args.out / "tops.png")
    print(table)
    print(f"bench done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
