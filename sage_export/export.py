"""Export a torch model to ONNX with its attention as ``com.sageattention::SageAttention`` nodes.

Approach: export normally with ``torch.onnx.export`` (TorchScript exporter with ``dynamo=False``, the
dynamo exporter otherwise), then run the graph pass (``graph_passes.rewrite_model``) on the result.
Every call of ``torch.nn.functional.scaled_dot_product_attention`` — including the ones inside
Hugging Face attention modules — exports as a recognisable pattern (a MatMul-Softmax-MatMul
decomposition before opset 23, one ONNX ``Attention`` node from opset 23 with the dynamo exporter),
which the pass replaces when it can prove the replacement equivalent. Eager (non-SDPA) attention
written as MatMul → scale → Softmax → MatMul is found the same way. Sites the pass cannot prove
(for example a padding mask fed as a graph input) stay as exported and are listed in the report;
``require_all=True`` turns that into an error.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

log = logging.getLogger(__name__)

DEFAULT_OPSET = {False: 17, True: 18}  # TorchScript / dynamo


@dataclass
class ExportResult:
    path: Path
    report: Any  # graph_passes.ModelReport


class ExportError(RuntimeError):
    """The export succeeded but attention sites were left untouched while require_all was set."""


def export(
    model: Any,
    args: tuple[Any, ...] | Any,
    path: str | Path,
    *,
    config: Any = None,
    dynamo: bool = True,
    opset: int | None = None,
    options: Any = None,
    report_path: str | Path | None = None,
    require_all: bool = False,
    **export_kwargs: Any,
) -> ExportResult:
    """Export ``model(*args)`` to ``path`` with SageAttention nodes in place of its attention.

    Args:
        model: a ``torch.nn.Module`` (put in eval mode for the export, restored afterwards).
        args: example inputs, as for ``torch.onnx.export``.
        path: where to write the ONNX model (weights go to ``path.data`` beyond 2 GiB).
        config: ``graph_passes.SageConfig``, a mapping in its file format, or a TOML/JSON file path.
        dynamo: use the dynamo exporter (True) or the TorchScript exporter (False).
        opset: default-domain opset; 17 (TorchScript) or 18 (dynamo) when None. With dynamo and
            opset ≥ 23, SDPA exports as one ONNX ``Attention`` node, which the pass maps directly.
        options: ``graph_passes.RewriteOptions``.
        report_path: also write the report (``.json`` → JSON, else markdown).
        require_all: raise ``ExportError`` if any attention site could not be rewritten.
        export_kwargs: passed to ``torch.onnx.export`` (input_names, dynamic_axes/dynamic_shapes, ...).

    Returns:
        ``ExportResult(path, report)`` with the per-site ``graph_passes.ModelReport``.
    """
    import torch

    from graph_passes import RewriteOptions, SageConfig, rewrite_model
    from graph_passes.pipeline import save_model

    cfg = _as_config(config, SageConfig)
    opts = options if options is not None else RewriteOptions()
    opset = opset if opset is not None else DEFAULT_OPSET[bool(dynamo)]
    path = Path(path)
    was_training = bool(getattr(model, "training", False))
    args_tuple = args if isinstance(args, tuple) else (args,)
    with tempfile.TemporaryDirectory(prefix="sage_export_") as tmp:
        raw = Path(tmp) / "exported.onnx"
        try:
            model.eval()
            with torch.no_grad():
                torch.onnx.export(model, args_tuple, str(raw), dynamo=dynamo, opset_version=opset, **export_kwargs)
        finally:
            model.train(was_training)
        exported = onnx.load(str(raw))
    rewritten, report = rewrite_model(exported, cfg, opts, name=path.name, inplace=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(rewritten, path)
    if report_path is not None:
        report.save(report_path)
    log.info("%s", report.summary())
    if require_all and report.untouched:
        reasons = "; ".join(f"site {s.index} ({s.anchor}): {s.reason}" for s in report.untouched)
        raise ExportError(f"{len(report.untouched)} attention site(s) left untouched: {reasons}")
    return ExportResult(path, report)


def _as_config(config: Any, config_type: Any) -> Any:
    if config is None:
        return config_type()
    if isinstance(config, config_type):
        return config
    if isinstance(config, Mapping):
        return config_type.from_dict(config)
    if isinstance(config, (str, Path)):
        return config_type.from_file(config)
    raise TypeError(f"config must be a SageConfig, a mapping or a file path, not {type(config).__name__}")
