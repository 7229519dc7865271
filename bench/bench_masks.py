"""The key-padding fast path against the unmasked op on the valid keys alone.

    python3 bench/bench_masks.py --out bench/out/masks

B=4, H=32, D=128, fp16, Sq = N, N in {2K, 8K}. For each kernel path:

* `unmasked N/2`: K and V hold N/2 keys, no optional input (the baseline);
* `key_lengths N/2`: K and V hold N keys, key_lengths = N/2 for every batch (plain kernel: the loop stops at
  ceil(L_b/64) blocks, preprocessing skips the padding tiles). Goal: within 5% of the baseline end to end;
* `bool padding N/2`: a (B, N) prefix bool mask (mask kernel: key bits per block, V converted);
* `additive (B,1,N,N)`: an fp16 additive mask, 0 on the first N/2 keys and -inf after (general path: every block
  of all N keys reads the mask).

TOPS count the valid pairs only (4*B*H*N*(N/2)*D / t) so that every row compares with the baseline. Timing is the
median of triton.testing.do_bench (as bench/bench_attention.py); baseline and masked runs alternate `--repeats`
times and each takes its median, which keeps clock drift out of the ratio. Writes masks.json and masks.md to --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_attention import time_ms  # noqa: E402
from sage_export import cuda_api  # noqa: E402

PATHS = {"sm80": {"kernel": "sm80", "pv_dtype": "fp16"}, "sm89": {"kernel": "sm89", "pv_dtype": "fp8_e4m3"},
         "sm90": {"kernel": "sm90", "pv_dtype": "fp8_e4m3"}}
# The C API's phase-split runs (attention kernel alone) exist for the portable kernels only.
KERNEL_PHASE = {"sm80", "sm89"}
GOAL = 1.05  # key_lengths N/2 may take at most 5% longer than the unmasked op on N/2 keys


def contenders(q, k, v, attrs: dict) -> dict[str, tuple[cuda_api.CudaAttentionCall, Any]]:
    b, n = q.shape[0], k.shape[2]
    half = n // 2
    kh, vh = k[:, :, :half].contiguous(), v[:, :, :half].contiguous()
    lengths = torch.full((b,), half, dtype=torch.int32, device=q.device)
    pad = (torch.arange(n, device=q.device) < half)[None, :].expand(b, n).contiguous()
    additive = torch.zeros(b, 1, n, n, dtype=torch.float16, device=q.device)
    additive[..., half:] = float("-inf")
    return {
        "unmasked N/2": (cuda_api.CudaAttentionCall(q, kh, vh, **attrs), None),
        "key_lengths N/2": (cuda_api.CudaAttentionCall(q, k, v, key_lengths=lengths, **attrs), lengths),
        "bool padding N/2": (cuda_api.CudaAttentionCall(q, k, v, attn_mask=pad, **attrs), pad),
        "additive (B,1,N,N)": (cuda_api.CudaAttentionCall(q, k, v, attn_mask=additive, **attrs), additive),
    }


def measure(fns: dict[str, Callable[[], Any]], repeats: int, warmup_ms: float, rep_ms: float) -> dict[str, float]:
    """Median over `repeats` alternating rounds of each callable's do_bench median."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_ms(fn, warmup_ms, rep_ms))
    return {name: statistics.median(ts) for name, ts in times.items()}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    dev = torch.cuda.get_device_name()
    records = []
    for kernel in args.kernels:
        attrs = PATHS[kernel]
        for n in args.seqs:
            torch.manual_seed(n)
            q, k, v = (torch.randn(args.batch, args.heads, n, args.dim, device="cuda", dtype=torch.float16)
                       for _ in range(3))
            calls = contenders(q, k, v, attrs)
            base_out = calls["unmasked N/2"][0].run().clone()
            valid_ops = 4.0 * args.batch * args.heads * n * (n // 2) * args.dim
            phase_list = [("end to end", cuda_api.PHASE_ALL)]
            if kernel in KERNEL_PHASE:
                phase_list.append(("attention kernel", cuda_api.PHASE_ATTENTION))
            for phase, phases in phase_list:
                fns = {}
                for name, (call, _) in calls.items():
                    call.run()  # also prepares the workspace for the kernel-only phase
                    fns[name] = (lambda c=call, p=phases: c.run(p))
                torch.cuda.synchronize()
                ms = measure(fns, args.repeats, args.warmup_ms, args.rep_ms)
                for name, (call, _) in calls.items():
                    out = call.run()
                    torch.cuda.synchronize()
                    diff = (out.float() - base_out.float()).abs().max().item()
                    rec = {"device": dev, "kernel": kernel, "seq_len": n, "valid_keys": n // 2, "phase": phase,
                           "contender": name, "batch": args.batch, "heads": args.heads, "head_dim": args.dim,
                           "ms": ms[name], "tops_valid": valid_ops / (ms[name] * 1e-3) / 1e12,
                           "ratio_vs_unmasked": ms[name] / ms["unmasked N/2"], "max_abs_diff_vs_unmasked": diff,
                           "describe": call.describe()}
                    if name == "key_lengths N/2":
                        rec["within_goal"] = rec["ratio_vs_unmasked"] <= GOAL
                    records.append(rec)
                    print(f"{kernel} N={n:5d} {phase:16s} {name:20s} {ms[name]:7.3f} ms "
                          f"{rec['tops_valid']:6.1f} TOPS  x{rec['ratio_vs_unmasked']:.3f}  max|diff| {diff:.2e}",
                          flush=True)
            del calls, q, k, v, base_out
            torch.cuda.empty_cache()
    return records


def markdown(records: list[dict[str, Any]]) -> str:
    dev = records[0]["device"] if records else "?"
    r0 = records[0] if records else {"batch": "?", "heads": "?", "head_dim": "?"}
    lines = [f"Key-padding fast path on {dev} (B={r0['batch']}, H={r0['heads']}, D={r0['head_dim']}, fp16, Sq = N). "
             "ms = median of do_bench; TOPS over the N/2 valid keys; ratio = time / time of the unmasked op on N/2 "
             f"keys (goal for key_lengths: <= {GOAL:.2f} end to end).", "",
             "| kernel | N | phase | contender | ms | TOPS (valid) | ratio | max abs diff vs unmasked |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        mark = (" ok" if r["within_goal"] else " MISSED") if "within_goal" in r and r["phase"] == "end to end" else ""
        lines.append(f"| {r['kernel']} | {r['seq_len']} | {r['phase']} | {r['contender']} | {r['ms']:.3f} | "
                     f"{r['tops_valid']:.0f} | {r['ratio_vs_unmasked']:.3f}{mark} | "
                     f"{r['max_abs_diff_vs_unmasked']:.2e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--seqs", type=int, nargs="+", default=[2048, 8192])
    p.add_argument("--kernels", nargs="+", default=["sm80", "sm89"], choices=sorted(PATHS),
                   help="kernel paths; sm90 needs an sm_90 GPU and is timed end to end only")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup-ms", type=float, default=25)
    p.add_argument("--rep-ms", type=float, default=100)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU: nothing to benchmark")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    records = run(args)
    (args.out / "masks.json").write_text(json.dumps(records, indent=1))
    table = markdown(records)
    (args.out / "masks.md").write_text(table)
    print(table)
    goal = [r for r in records if "within_goal" in r and r["phase"] == "end to end"]
    print(f"key_lengths fast path within {GOAL:.2f}x end to end: {sum(r['within_goal'] for r in goal)}/{len(goal)}; "
          f"bench done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
