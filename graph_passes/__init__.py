"""Graph passes that put ``com.sageattention::SageAttention`` into existing ONNX models.

    from graph_passes import rewrite_model, SageConfig
    model, report = rewrite_model(onnx.load("model.onnx"), SageConfig(defaults={"pv_dtype": "fp16"}))

Recognised: the ONNX ``Attention`` op (opset 23+), com.microsoft ``MultiHeadAttention`` and
``GroupQueryAttention``, and attention written out as MatMul → Softmax → MatMul (torch.onnx exports of
``scaled_dot_product_attention`` with either exporter, eager HF attention). A site is rewritten only
when the replacement is provably equivalent; everything else is left untouched and reported.
"""

from __future__ import annotations

from .config import CONFIGURABLE, ConfigError, NodeOverride, SageConfig
from .pipeline import RewriteOptions, existing_sage_nodes, find_attention, rewrite_file, rewrite_model
from .report import ModelReport, SiteReport

__all__ = [
    "CONFIGURABLE",
    "ConfigError",
    "ModelReport",
    "NodeOverride",
    "RewriteOptions",
    "SageConfig",
    "SiteReport",
    "existing_sage_nodes",
    "find_attention",
    "rewrite_file",
    "rewrite_model",
]
