"""Tiny randomly initialised Hugging Face models (no downloads) through both exporters, static and dynamic.

GPT-2, Llama (GQA, RoPE, causal), BERT and ViT, each with eager and SDPA attention: every attention site
must be rewritten, with the exact float semantics of the original (onnx.reference oracle, where it can
run the graph) and cos ≥ 0.999 through ORT with the op library (int8 Q·Kᵀ, fp16 P̃·V).
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0, the CPU wheel)")
transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install transformers)")
pytest.importorskip("onnxscript", reason="onnxscript not installed (needed by the dynamo exporter)")

from graph_passes import rewrite_model  # noqa: E402
from sage_export.metrics import fidelity  # noqa: E402

from .helpers import INT8_FP16, attrs_of, run_ort, run_reference, sage_nodes  # noqa: E402

SMALL = dict(initializer_range=0.2)


def build(arch: str, impl: str):  # type: ignore[no-untyped-def]
    T = transformers
    common = dict(SMALL, attn_implementation=impl)
    if arch == "gpt2":
        cfg = T.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, **common)
        return T.GPT2Model(cfg), True
    if arch == "llama":
        cfg = T.LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=128, vocab_size=100, **common)  # fmt: skip
        return T.LlamaModel(cfg), True
    if arch == "bert":
        cfg = T.BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                           vocab_size=100, **common)  # fmt: skip
        return T.BertModel(cfg), False
    cfg = T.ViTConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128, image_size=32,
                      patch_size=8, **common)  # fmt: skip
    return T.ViTModel(cfg), False


class Wrapper(torch.nn.Module):
    def __init__(self, model, arch: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.model, self.arch = model, arch

    def forward(self, x):  # type: ignore[no-untyped-def]
        if self.arch == "vit":
            return self.model(pixel_values=x).last_hidden_state
        # Llama: an explicit all-ones mask keeps transformers off its packed-sequence detection (aten::diff).
        extra = {"attention_mask": torch.ones_like(x)} if self.arch == "llama" else {}
        return self.model(input_ids=x, **extra).last_hidden_state


def example(arch: str, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if arch == "vit":
        return rng.standard_normal((length // 6, 3, 32, 32)).astype(np.float32)  # dynamic axis: batch
    return rng.integers(0, 100, (1, length)).astype(np.int64)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "bert", "vit"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_hf_architecture(tmp_path, ort_library, arch, impl):
    torch.manual_seed(0)
    model, causal = build(arch, impl)
    assert model.config._attn_implementation == impl
    wrapper = Wrapper(model.eval(), arch).eval()
    axis = 0 if arch == "vit" else 1
    for dynamo in (False, True):
        for dynamic in (False, True):
            path = tmp_path / f"{arch}_{impl}_{dynamo}_{dynamic}.onnx"
            x = torch.from_numpy(example(arch, 12, 0))
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if dynamo:
                    shapes = {"x": {axis: torch.export.Dim("n")}} if dynamic else None
                    torch.onnx.export(wrapper, (x,), str(path), dynamo=True, opset_version=18, input_names=["x"],
                                      dynamic_shapes=shapes)  # fmt: skip
                else:
                    axes = {"x": {axis: "n"}} if dynamic else None
                    torch.onnx.export(wrapper, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                                      dynamic_axes=axes)  # fmt: skip
            original = onnx.load(str(path))
            rewritten, report = rewrite_model(original, INT8_FP16)
            label = f"{arch}/{impl}/{'dynamo' if dynamo else 'torchscript'}/{'dynamic' if dynamic else 'static'}"
            assert len(report.sites) == 2 and len(report.rewritten) == 2, f"{label}\n{report.to_markdown()}"
            assert report.shape_inference == "ok", label
            assert all(attrs_of(n)["is_causal"] == int(causal) for n in sage_nodes(rewritten)), label
            feeds = {"x": example(arch, 18 if dynamic else 12, 1)}
            (before,) = run_ort(original, feeds)
            (after,) = run_ort(rewritten, feeds, ort_library)
            assert fidelity(after, before).cos >= 0.999, label
            try:
                (exact,) = run_reference(rewritten, feeds)
            except Exception:  # noqa: BLE001 - onnx.reference lacks some ops' edge cases (BERT's GatherElements)
                continue
            np.testing.assert_allclose(exact, before, rtol=0, atol=1e-4 * float(np.abs(before).max()), err_msg=label)
