"""Shared helpers for the graph-pass tests: running models before/after, an exact float oracle, builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from graph_passes import ModelReport, RewriteOptions, SageConfig, rewrite_model
from graph_passes.ort_run import make_session, prepare_feeds
from sage_export.metrics import fidelity
from sage_export.reference import float_attention
from sage_export.schema import SCHEMA

#: The accuracy config of the issue: INT8 Q·Kᵀ, FP16 P̃·V.
INT8_FP16 = SageConfig(defaults={"qk_quant": "int8", "pv_dtype": "fp16"})
F32 = TensorProto.FLOAT


class SageAttentionFloat(OpRun):
    """onnx.reference kernel for SageAttention computing *exact* float attention (no quantization).

    Running a rewritten model with it checks the rewrite's semantics (scale, layout, heads, causal)
    to float rounding, independently of the op library's quantization error.
    """

    op_domain = SCHEMA.domain

    def _run(self, query, key, value, attn_mask=None, key_lengths=None, **attrs):  # type: ignore[no-untyped-def, override]
        a = {name: getattr(self, name, None) for name in SCHEMA.attributes}
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in a.items() if v is not None}
        known = ("layout", "q_num_heads", "kv_num_heads", "scale", "is_causal", "causal_alignment")
        kwargs = {k: v for k, v in a.items() if k in known}
        out = float_attention(query, key, value, attn_mask=attn_mask, key_lengths=key_lengths, **kwargs)
        return (out.astype(query.dtype),)


SageAttentionFloat.__name__ = SCHEMA.name


def run_reference(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(x) for x in ReferenceEvaluator(model, new_ops=[SageAttentionFloat]).run(None, dict(feeds))]


def run_ort(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], library: Path | None = None) -> list[np.ndarray]:
    session = make_session(model, library)
    return [np.asarray(x) for x in session.run(None, prepare_feeds(session, feeds))]


def sage_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == SCHEMA.name and n.domain == SCHEMA.domain]


def attrs_of(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


@dataclass
class Checked:
    model: onnx.ModelProto
    report: ModelReport
    cos: list[float]


def check_rewrite(
    model: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    library: Path | None,
    *,
    sites: int,
    rewritten: int | None = None,
    config: SageConfig = INT8_FP16,
    options: RewriteOptions = RewriteOptions(),
    min_cos: float = 0.999,
    exact_rtol: float = 2e-4,
    oracle: bool = True,
    before: Sequence[np.ndarray] | None = None,
    keep: np.ndarray | None = None,
) -> Checked:
    """Rewrite, then check: the report, strict shape inference, exact float semantics, ORT fidelity.

    ``before``: the original's outputs when ORT cannot run it (else ORT CPU runs it). ``keep``: a bool array
    broadcastable to the (first) output; only those elements are compared (rows the original defines
    differently, e.g. fully masked ones, are left out).
    """
    rewritten = sites if rewritten is None else rewritten
    before = list(before) if before is not None else run_ort(model, feeds)
    if keep is not None:
        before = [b[np.broadcast_to(keep, b.shape)] for b in before]
    out, report = rewrite_model(model, config, options)
    assert len(report.sites) == sites, report.to_markdown()
    assert len(report.rewritten) == rewritten, report.to_markdown()
    assert len(sage_nodes(out)) == rewritten
    assert report.shape_inference == "ok", report.shape_inference
    onnx.checker.check_model(out)
    if rewritten:
        assert any(o.domain == SCHEMA.domain and o.version == SCHEMA.version for o in out.opset_import)
    if oracle:
        exact = run_reference(out, feeds)
        if keep is not None:
            exact = [e[np.broadcast_to(keep, e.shape)] for e in exact]
        for b, e in zip(before, exact):
            scale = max(1e-6, float(np.max(np.abs(b))))
            np.testing.assert_allclose(e.astype(np.float64), b.astype(np.float64), rtol=0, atol=exact_rtol * scale)
    cos: list[float] = []
    if library is not None:
        after = run_ort(out, feeds, library)
        if keep is not None:
            after = [a[np.broadcast_to(keep, a.shape)] for a in after]
        for b, a in zip(before, after):
            if np.issubdtype(b.dtype, np.floating):
                f = fidelity(a, b)
                cos.append(f.cos)
                assert f.cos >= min_cos, f"{f} (report: {report.to_markdown()})"
    return Checked(out, report, cos)


def assert_untouched(
    model: onnx.ModelProto, reason_part: str, options: RewriteOptions = RewriteOptions(), sites: int = 1
) -> ModelReport:
    """The pass finds the site(s), leaves the model byte-identical and reports ``reason_part``."""
    out, report = rewrite_model(model, INT8_FP16, options)
    assert len(report.sites) == sites, report.to_markdown()
    assert not report.rewritten, report.to_markdown()
    assert out.SerializeToString() == model.SerializeToString()
    reasons = " | ".join(s.reason or "" for s in report.sites)
    assert reason_part.lower() in reasons.lower(), reasons
    return report


# ----------------------------------------------------------------------------------- graph builders
def const(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, int, Sequence[Any]]],
    outputs: Sequence[tuple[str, int, Sequence[Any] | None]],
    inits: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None if s is None else list(s)) for n, t, s in outputs],
        list(inits),
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8 if opset <= 17 else 10
    return model


def eager_attention(
    b: int = 2,
    h: int = 4,
    s: int = 16,
    d: int = 32,
    *,
    scale_op: str = "Div",
    softmax_axis: int = -1,
    mask: np.ndarray | None = None,
    mask_input: bool = False,
    k_transpose: Sequence[int] = (0, 2, 3, 1),
    dropout_training: bool | None = None,
    score_scale: Any = None,
    extra_score_output: bool = False,
    dv: int | None = None,
    causal_where: np.ndarray | None = None,
    dtype: int = F32,
    opset: int = 17,
) -> onnx.ModelProto:
    """BERT-style eager attention from BSNH inputs: Q·Kᵀ → Div|Mul → [Where causal] → [Add mask] → Softmax → P·V."""
    dv = dv or d
    np_t = helper.tensor_dtype_to_np_dtype(dtype)
    nodes = [
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3], name="/attn/Transpose_q"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=list(k_transpose), name="/attn/Transpose_k"),
        helper.make_node("Transpose", ["v"], ["vt"], perm=[0, 2, 1, 3], name="/attn/Transpose_v"),
        helper.make_node("MatMul", ["qt", "kt"], ["scores"], name="/attn/MatMul"),
    ]
    inits = []
    scale_value = score_scale if score_scale is not None else (np.sqrt(d) if scale_op == "Div" else 1 / np.sqrt(d))
    inits.append(const("scale", scale_value, np_t))
    nodes.append(helper.make_node(scale_op, ["scores", "scale"], ["scaled"], name="/attn/Scale"))
    last = "scaled"
    inputs = [("q", dtype, [b, s, h, d]), ("k", dtype, [b, s, h, d]), ("v", dtype, [b, s, h, dv])]
    if causal_where is not None:
        inits += [const("causal", causal_where, bool), const("neg", np.finfo(np.float32).min, np_t)]
        nodes.append(helper.make_node("Where", ["causal", last, "neg"], ["biased"], name="/attn/Where"))
        last = "biased"
    if mask is not None or mask_input:
        if mask_input:
            inputs.append(("mask", dtype, [b, 1, 1, s]))
        else:
            inits.append(const("mask", mask, np_t))
        nodes.append(helper.make_node("Add", [last, "mask"], ["masked"], name="/attn/Add"))
        last = "masked"
    nodes.append(helper.make_node("Softmax", [last], ["probs"], axis=softmax_axis, name="/attn/Softmax"))
    last = "probs"
    if dropout_training is not None:
        inits += [const("ratio", 0.1), const("training", dropout_training, bool)]
        nodes.append(helper.make_node("Dropout", ["probs", "ratio", "training"], ["dropped"], name="/attn/Dropout"))
        last = "dropped"
    nodes += [
        helper.make_node("MatMul", [last, "vt"], ["ctx"], name="/attn/MatMul_1"),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="/attn/Transpose_out"),
        helper.make_node("Reshape", ["ctx_t", "out_shape"], ["out"], name="/attn/Reshape_out"),
    ]
    inits.append(const("out_shape", [b, s, h * dv], np.int64))
    outputs: list[tuple[str, int, Any]] = [("out", dtype, [b, s, h * dv])]
    if extra_score_output:
        outputs.append(("scores", dtype, None))
    return make_model(nodes, inputs, outputs, inits, opset=opset)


def random_feeds(
    model: onnx.ModelProto, seed: int, shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, np.ndarray]:
    from graph_passes.ort_run import random_inputs

    return random_inputs(model, shapes=shapes, seed=seed)
