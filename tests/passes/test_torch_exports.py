"""Tiny torch modules exported by both torch.onnx exporters, rewritten, and run before/after in ORT."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0, the CPU wheel)")
F = torch.nn.functional
pytest.importorskip("onnxscript", reason="onnxscript not installed (needed by the dynamo exporter)")

from .helpers import attrs_of, check_rewrite, sage_nodes  # noqa: E402


class SDPA(torch.nn.Module):
    def __init__(self, causal: bool = False, scale: float | None = None, gqa: bool = False) -> None:
        super().__init__()
        self.causal, self.scale, self.gqa = causal, scale, gqa

    def forward(self, q, k, v):  # type: ignore[no-untyped-def]
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale, enable_gqa=self.gqa)


class SelfAttention(torch.nn.Module):
    """HF-style block: projections, view/transpose to BNSH, repeat_kv for GQA, SDPA, output projection."""

    def __init__(
        self,
        hidden: int = 64,
        heads: int = 4,
        kv_heads: int = 2,
        causal: bool = True,
        mask: str | None = None,
        enable_gqa: bool = False,
    ) -> None:
        super().__init__()
        self.h, self.kvh, self.d = heads, kv_heads, hidden // heads
        self.q = torch.nn.Linear(hidden, heads * self.d)
        self.k = torch.nn.Linear(hidden, kv_heads * self.d)
        self.v = torch.nn.Linear(hidden, kv_heads * self.d)
        self.o = torch.nn.Linear(heads * self.d, hidden)
        self.causal, self.mask, self.enable_gqa = causal, mask, enable_gqa

    def forward(self, x):  # type: ignore[no-untyped-def]
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.h, self.d).transpose(1, 2)
        k = self.k(x).view(b, s, self.kvh, self.d).transpose(1, 2)
        v = self.v(x).view(b, s, self.kvh, self.d).transpose(1, 2)
        if self.kvh != self.h and not self.enable_gqa:
            rep = self.h // self.kvh
            k = k[:, :, None].expand(b, self.kvh, rep, s, self.d).reshape(b, self.h, s, self.d)
            v = v[:, :, None].expand(b, self.kvh, rep, s, self.d).reshape(b, self.h, s, self.d)
        mask = None
        if self.mask == "bool_tril":
            mask = torch.ones(s, s, dtype=torch.bool).tril()
        elif self.mask == "float_zero":
            mask = torch.zeros(s, s)
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=self.causal and mask is None, enable_gqa=self.enable_gqa
        )
        return self.o(o.transpose(1, 2).reshape(b, s, -1))


class Eager(torch.nn.Module):
    """Eager attention: MatMul → Div → masked_fill(tril) → Softmax → MatMul."""

    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.causal = causal

    def forward(self, q, k, v):  # type: ignore[no-untyped-def]
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if self.causal:
            s = q.shape[-2]
            keep = torch.ones(s, s, dtype=torch.bool).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v


def export(module, args, names, path: Path, exporter: str, dynamic: bool):  # type: ignore[no-untyped-def]
    dynamo = exporter.startswith("dy")
    opset = int(exporter[2:])
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = None
            if dynamic:
                batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
                axes = {0: batch, 2: seq} if args[0].dim() == 4 else {0: batch, 1: seq}
                shapes = {n: axes for n in names}
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=list(names),
                dynamic_shapes=shapes,
                verbose=False,
            )
        else:
            axes = {n: ({0: "batch", 2: "seq"} if args[0].dim() == 4 else {0: "batch", 1: "seq"}) for n in names}
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=list(names),
                dynamic_axes=axes if dynamic else None,
            )
    return onnx.load(str(path))


def qkv(b: int, hq: int, hkv: int, s: int, d: int, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, s, d, generator=g) for h in (hq, hkv, hkv))


SDPA_CASES = [
    # id, module, kv heads, exporters, dynamic, expected (is_causal, scale)
    ("plain", lambda: SDPA(), 4, ["ts14", "ts17", "ts20", "dy18", "dy22", "dy23"], False, (0, 0.0)),
    ("causal-dynamic", lambda: SDPA(causal=True), 4, ["ts17", "ts20", "dy18", "dy22"], True, (1, 0.0)),
    ("causal-opset23", lambda: SDPA(causal=True), 4, ["dy23"], False, (1, 0.0)),
    ("scale", lambda: SDPA(scale=0.3), 4, ["ts17", "dy18"], False, (0, 0.3)),
    ("gqa-causal", lambda: SDPA(causal=True, gqa=True), 2, ["dy18", "dy23"], False, (1, 0.0)),
]


@pytest.mark.parametrize("exporter", ["ts17", "dy18", "dy23"])
def test_sdpa_causal_cross_attention(tmp_path, ort_library, exporter):
    """PyTorch's is_causal with Sq != Skv is top-left (j <= i): rewritten with causal_alignment top_left."""
    g = torch.Generator().manual_seed(5)
    q, k, v = (
        torch.randn(1, 4, 12, 32, generator=g),
        torch.randn(1, 4, 20, 32, generator=g),
        torch.randn(1, 4, 20, 32, generator=g),
    )
    model = export(SDPA(causal=True), (q, k, v), ["q", "k", "v"], tmp_path / f"cross_{exporter}.onnx", exporter, False)
    checked = check_rewrite(model, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy()}, ort_library, sites=1)
    a = attrs_of(sage_nodes(checked.model)[0])
    assert (a["is_causal"], a["causal_alignment"]) == (1, "top_left")


@pytest.mark.parametrize("case", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_exports(tmp_path, ort_library, case):
    name, build, hkv, exporters, dynamic, (causal, scale) = case
    for exporter in exporters:
        args = qkv(2, 4, hkv, 16, 32, seed=len(name))
        model = export(build(), args, ["q", "k", "v"], tmp_path / f"{name}_{exporter}.onnx", exporter, dynamic)
        feeds = {
            n: t.numpy() for n, t in zip("qkv", qkv(3 if dynamic else 2, 4, hkv, 24 if dynamic else 16, 32, seed=7))
        }
        checked = check_rewrite(model, feeds, ort_library, sites=1)
        a = attrs_of(sage_nodes(checked.model)[0])
        assert a["is_causal"] == causal, exporter
        expected_scale = scale if scale else 1 / math.sqrt(32)
        assert a["scale"] in (0.0, pytest.approx(expected_scale, rel=1e-5)), exporter
        if hkv != 4:  # the un-expanded K/V (2 heads) feed the op
            node = sage_nodes(checked.model)[0]
            assert _static_dims(checked.model, node.input[1])[1] == hkv, exporter


def _static_dims(model: onnx.ModelProto, name: str) -> list[int | None]:
    from graph_passes.graph_index import GraphIndex
    from graph_passes.pipeline import infer_shapes

    dims = GraphIndex(model, infer_shapes(model)).dims(name)
    assert dims is not None, name
    return [d.value for d in dims]


BLOCK_CASES = [
    ("gqa-repeat-kv", dict(kv_heads=2, causal=True), ["ts17", "dy18"], True, 1),
    ("gqa-enable-gqa", dict(kv_heads=2, causal=True, enable_gqa=True), ["dy18"], True, 1),
    ("mha-bool-tril-mask", dict(kv_heads=4, causal=False, mask="bool_tril"), ["ts17", "dy18"], False, 1),
    ("mha-zero-float-mask", dict(kv_heads=4, causal=False, mask="float_zero"), ["ts17", "dy18"], False, 0),
]


@pytest.mark.parametrize("case", BLOCK_CASES, ids=[c[0] for c in BLOCK_CASES])
def test_attention_block_exports(tmp_path, ort_library, case):
    name, kwargs, exporters, dynamic, causal = case
    torch.manual_seed(0)
    block = SelfAttention(**kwargs)
    for exporter in exporters:
        x = torch.randn(2, 16, 64)
        model = export(block, (x,), ["x"], tmp_path / f"{name}_{exporter}.onnx", exporter, dynamic)
        feeds = {
            "x": np.random.default_rng(3).standard_normal((3, 24, 64) if dynamic else (2, 16, 64)).astype(np.float32)
        }
        checked = check_rewrite(model, feeds, ort_library, sites=1)
        node = sage_nodes(checked.model)[0]
        a = attrs_of(node)
        assert a["is_causal"] == causal, exporter
        assert a["layout"] in ("BSNH", "BNSH")
        if kwargs["kv_heads"] != 4:
            assert any("GQA expansion undone" in n for n in checked.report.sites[0].notes), exporter
            assert _static_dims(checked.model, node.input[1])[1 if a["layout"] == "BNSH" else 2] == kwargs["kv_heads"]


@pytest.mark.parametrize("exporter", ["ts17", "dy18"])
@pytest.mark.parametrize("causal", [False, True])
def test_eager_exports(tmp_path, ort_library, exporter, causal):
    args = qkv(1, 4, 4, 16, 32, seed=1)
    model = export(Eager(causal), args, ["q", "k", "v"], tmp_path / f"eager_{exporter}.onnx", exporter, False)
    checked = check_rewrite(model, {n: t.numpy() for n, t in zip("qkv", args)}, ort_library, sites=1)
    assert attrs_of(sage_nodes(checked.model)[0])["is_causal"] == int(causal)
