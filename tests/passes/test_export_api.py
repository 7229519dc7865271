"""sage_export.export (torch → ONNX with SageAttention) and sage_export.torch_op (the op from torch)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0, the CPU wheel)")
F = torch.nn.functional

from sage_export.metrics import fidelity  # noqa: E402
from sage_export.reference import float_attention, sage_attention_reference  # noqa: E402

from .helpers import attrs_of, run_ort, sage_nodes  # noqa: E402
from .test_torch_exports import SelfAttention  # noqa: E402


@pytest.mark.parametrize("dynamo", [False, True])
def test_export_block(tmp_path, ort_library, dynamo):
    pytest.importorskip("onnxscript", reason="onnxscript not installed (needed by the dynamo exporter)")
    from sage_export.export import export

    torch.manual_seed(0)
    block = SelfAttention(kv_heads=2, causal=True)
    block.train()
    x = torch.randn(1, 32, 64)
    path = tmp_path / "block.onnx"
    result = export(
        block,
        (x,),
        path,
        config={"defaults": {"pv_dtype": "fp16"}},
        dynamo=dynamo,
        report_path=tmp_path / "report.md",
        input_names=["x"],
        require_all=True,
    )
    assert block.training, "the training flag is restored"
    assert result.path == path and len(result.report.rewritten) == 1
    model = onnx.load(path)
    (node,) = sage_nodes(model)
    assert attrs_of(node)["pv_dtype"] == "fp16" and attrs_of(node)["is_causal"] == 1
    (out,) = run_ort(model, {"x": x.numpy()}, ort_library)
    with torch.no_grad():
        ref = block.eval()(x).numpy()
    assert fidelity(out, ref).cos > 0.999
    assert "1 rewritten" in (tmp_path / "report.md").read_text()


def test_export_require_all_raises_for_masks(tmp_path):
    """A (Sq, 1) mask broadcasts along the keys: not a shape the op's attn_mask takes, so the site stays."""
    from sage_export.export import ExportError, export

    class Masked(torch.nn.Module):
        def forward(self, q, k, v, mask):  # type: ignore[no-untyped-def]
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    args = (
        torch.randn(1, 2, 8, 16),
        torch.randn(1, 2, 8, 16),
        torch.randn(1, 2, 8, 16),
        torch.ones(8, 1, dtype=torch.bool),
    )
    result = export(Masked(), args, tmp_path / "m.onnx", dynamo=False, input_names=["q", "k", "v", "mask"])
    assert len(result.report.untouched) == 1 and "graph input" in (result.report.untouched[0].reason or "")
    with pytest.raises(ExportError, match="graph input"):
        export(
            Masked(), args, tmp_path / "m2.onnx", dynamo=False, input_names=["q", "k", "v", "mask"], require_all=True
        )


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_sageattn_matches_the_reference(ort_library, rng, dtype):
    from sage_export.torch_op import sageattn

    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((1, 4, 64, 32), (1, 2, 64, 32), (1, 2, 64, 32)))
    tq, tk, tv = (torch.from_numpy(a).to(getattr(torch, dtype)) for a in (q, k, v))
    out = sageattn(tq, tk, tv, is_causal=1, pv_dtype="fp16")
    assert out.dtype == tq.dtype and out.shape == tq.shape
    args = [t.float().numpy() for t in (tq, tk, tv)]
    ref = sage_attention_reference(*args, is_causal=1, pv_dtype="fp16")
    exact = float_attention(*args, is_causal=1)
    tol = {"float32": 1e-3, "float16": 5e-3, "bfloat16": 3e-2}[dtype]  # wrapper check; the kernel has its own tests
    np.testing.assert_allclose(out.float().numpy(), ref, atol=tol * float(np.abs(ref).max()), rtol=0)
    assert fidelity(out.float().numpy(), exact).cos > 0.999


def test_sdpa_signature_and_errors(ort_library):
    from sage_export.torch_op import sageattn, sdpa

    q, k, v = torch.randn(2, 4, 32, 16), torch.randn(2, 2, 32, 16), torch.randn(2, 2, 32, 16)
    out = sdpa(q, k, v, is_causal=True, enable_gqa=True, scale=0.2)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True, scale=0.2)
    assert fidelity(out.numpy(), ref.numpy()).cos > 0.999
    with pytest.raises(ValueError, match="enable_gqa"):
        sdpa(q, k, v)
    with pytest.raises(ValueError, match="attn_mask"):
        sdpa(q, q, q, attn_mask=torch.ones(32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed"):
        sageattn(q, q, q, qk_quant="int3")
    with pytest.raises(ValueError, match="dtype"):
        sageattn(q, q.half(), q)
