"""Benchmark of the sm_90a SageAttention path against torch SDPA (flash and cuDNN) in the same process.

TOPS = 4*B*H*N^2*D / t, halved when causal. Times are medians of triton.testing.do_bench (CUDA events).
Rows: sage end to end (both quantization passes + attention), sage attention kernel only, the
quantization passes alone, torch SDPA flash, torch SDPA cuDNN; all fp16, BNSH, Gaussian inputs.
Writes <out>/bench_sm90.json and <out>/bench_sm90.md.

    python3 bench/bench_sm90.py --out bench/out            # B=4 H=32 D=64,128 N=1K..32K, causal and not
    python3 bench/bench_sm90.py --quick --out /tmp/b        # a few points
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # sage_export, for the binding
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "gpu_sm90"))

from sm90_binding import Sm90Library  # noqa: E402


def tops(b: int, h: int, n: int, d: int, causal: bool, ms: float) -> float:
    ops = 4.0 * b * h * n * n * d
    if causal:
        ops /= 2
    return ops / (ms * 1e-3) / 1e12


def bench_point(lib, b, h, n, d, causal, args):
    import torch
    import triton.testing
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    torch.manual_seed(0)
    q, k, v = (torch.randn(b, h, n, d, dtype=torch.float16, device="cuda") for _ in range(3))
    out = torch.empty_like(q)
    call = lib.make_call(q, k, v, out, is_causal=int(causal))
    ws = torch.empty(lib.workspace_bytes(call), dtype=torch.uint8, device="cuda")

    def timed(fn):
        return triton.testing.do_bench(fn, warmup=args.warmup, rep=args.rep, return_mode="median")

    row = {"B": b, "H": h, "N": n, "D": d, "causal": causal}
    row["sage_e2e_ms"] = timed(lambda: lib.run(call, ws, phase=0))
    row["sage_kernel_ms"] = timed(lambda: lib.run(call, ws, phase=2))
    row["sage_quant_ms"] = timed(lambda: lib.run(call, ws, phase=1))
    for name, backend in (() if args.no_sdpa else (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION))):
        try:
            with sdpa_kernel(backend):
                sdpa(q, k, v, is_causal=causal)
                row[f"{name}_ms"] = timed(lambda: sdpa(q, k, v, is_causal=causal))
        except RuntimeError as e:  # backend unavailable for this shape/build
            row[f"{name}_ms"] = None
            row[f"{name}_error"] = str(e).splitlines()[0][:200]
    for key in ("sage_e2e", "sage_kernel", "flash", "cudnn"):
        ms = row.setdefault(f"{key}_ms", None)
        row[f"{key}_tops"] = None if ms is None else tops(b, h, n, d, causal, ms)
    del q, k, v, out, ws
    torch.cuda.empty_cache()
    return row


def markdown(rows, device: str) -> str:
    def f(x):
        return "-" if x is None else f"{x:.0f}"

    lines = [
        f"# sm90 SageAttention benchmark ({device})",
        "",
        "TOPS = 4·B·H·N²·D/t (halved if causal), fp16 BNSH Gaussian inputs, median of triton do_bench.",
        "",
        "| B | H | D | causal | N | sage e2e | sage kernel | quant ms | SDPA flash | SDPA cuDNN |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['B']} | {r['H']} | {r['D']} | {'yes' if r['causal'] else 'no'} | {r['N']} | "
            f"{f(r['sage_e2e_tops'])} | {f(r['sage_kernel_tops'])} | {r['sage_quant_ms']:.3f} | "
            f"{f(r['flash_tops'])} | {f(r['cudnn_tops'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dims", default="128,64")
    ap.add_argument("--ns", default="1024,2048,4096,8192,16384,32768")
    ap.add_argument("--causal", default="0,1")
    ap.add_argument("--quick", action="store_true", help="D=128 N=1K,8K and D=64 N=16K only")
    ap.add_argument("--warmup", type=float, default=25.0, help="do_bench warm-up, ms")
    ap.add_argument("--rep", type=float, default=100.0, help="do_bench repetition time, ms")
    ap.add_argument("--lib", default=None)
    ap.add_argument("--points", default="", help="explicit D:N:causal list, e.g. 128:8192:0,64:16384:1")
    ap.add_argument("--no-sdpa", action="store_true", help="time the sage path only")
    ap.add_argument("--tag", default="", help="label stored with the rows (e.g. a kernel variant)")
    args = ap.parse_args()

    import torch

    lib = Sm90Library(args.lib)
    device = torch.cuda.get_device_name()
    points = []
    if args.points:
        for item in args.points.split(","):
            d, n, c = item.split(":")
            points.append((int(d), int(n), bool(int(c))))
    elif args.quick:
        points = [(128, 1024, False), (128, 8192, False), (128, 8192, True), (64, 16384, False)]
    else:
        for d in (int(x) for x in args.dims.split(",")):
            for c in (bool(int(x)) for x in args.causal.split(",")):
                for n in (int(x) for x in args.ns.split(",")):
                    points.append((d, n, c))
    rows = []
    t0 = time.time()
    for d, n, c in points:
        r = bench_point(lib, args.batch, args.heads, n, d, c, args)
        r["tag"] = args.tag
        rows.append(r)
        print(
            f"{args.tag:>6} D={d:3d} causal={int(c)} N={n:6d}: sage e2e {r['sage_e2e_tops'] or 0:7.1f}  kernel "
            f"{r['sage_kernel_tops'] or 0:7.1f}  quant {r['sage_quant_ms']:.3f} ms  flash {r['flash_tops'] or 0:6.1f}  "
            f"cudnn {r['cudnn_tops'] or 0:6.1f} TOPS",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "library": str(lib.path), "seconds": round(time.time() - t0, 1)}
    (args.out / "bench_sm90.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / "bench_sm90.md").write_text(markdown(rows, device))
    print(markdown(rows, device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
