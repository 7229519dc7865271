"""The pass pipeline: infer shapes → find attention sites → resolve config → rewrite → validate."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import onnx

from sage_export.schema import SCHEMA

from .config import SageConfig
from .decomposed import MatchOptions, find_decomposed
from .fused import FusedOptions, find_fused
from .graph_index import GraphIndex
from .report import ModelReport, SiteReport
from .rewrite import NameAllocator, PlannedRewrite, apply_rewrites, sage_node_name
from .sites import AttentionSite, Site

log = logging.getLogger(__name__)

_PROTOBUF_LIMIT = 2**31 - 2**24  # leave headroom under protobuf's 2 GiB serialization limit


@dataclass(frozen=True)
class RewriteOptions:
    """Pass options (not op attributes).

    prefer_bsnh: feed BSNH tensors (skipping the exporter's transposes) when Q, K and V all have them.
    assume_unpadded_gqa: rewrite GroupQueryAttention even when seqlens_k is a runtime input.
    infer_shapes: run ONNX shape inference (with data propagation) before matching.
    validate: run strict ONNX shape inference on the result and record the outcome in the report.
    """

    prefer_bsnh: bool = True
    assume_unpadded_gqa: bool = False
    infer_shapes: bool = True
    validate: bool = True


def approx_size(model: onnx.ModelProto) -> int:
    """Bytes of initializer data (what dominates a model's size), without serializing it."""
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data) or 8 * (len(t.float_data) + len(t.int64_data) + len(t.double_data) + len(t.int32_data))
    return total


def skeleton(model: onnx.ModelProto, max_bytes: int = 1 << 16) -> onnx.ModelProto:
    """``model`` with large initializers turned into typed graph inputs: same shapes, cheap to serialize.

    Shape inference and data propagation only need the *values* of small (shape-like) initializers.
    """
    g = model.graph
    small = [t for t in g.initializer if len(t.raw_data) <= max_bytes and len(t.float_data) <= max_bytes // 4]
    large = [
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in g.initializer
        if len(t.raw_data) > max_bytes or len(t.float_data) > max_bytes // 4
    ]
    declared = {i.name for i in g.input}
    graph = onnx.helper.make_graph(
        list(g.node),
        g.name,
        list(g.input) + [v for v in large if v.name not in declared],
        list(g.output),
        small,
        value_info=list(g.value_info),
    )
    out = onnx.helper.make_model(graph, opset_imports=list(model.opset_import), functions=list(model.functions))
    out.ir_version = model.ir_version
    return out


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """Shape-inferred skeleton of ``model`` (data propagation on), or None when inference fails."""
    try:
        return onnx.shape_inference.infer_shapes(skeleton(model), check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - inference is an aid; matching still works on declared shapes
        log.warning("ONNX shape inference failed (%s); matching on declared shapes only", exc)
        return None


def find_attention(model: onnx.ModelProto, options: RewriteOptions = RewriteOptions()) -> tuple[GraphIndex, list[Site]]:
    """Every attention site of ``model`` in graph order, proven or rejected; the model is not changed."""
    inferred = infer_shapes(model) if options.infer_shapes else None
    index = GraphIndex(model, inferred)
    sites = find_fused(index, FusedOptions(options.assume_unpadded_gqa))
    sites += find_decomposed(index, MatchOptions(options.prefer_bsnh))
    sites.sort(key=lambda s: s.anchor.index)
    log.info("found %d attention site(s)", len(sites))
    return index, sites


def existing_sage_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == SCHEMA.name and n.domain == SCHEMA.domain]


def rewrite_model(
    model: onnx.ModelProto,
    config: SageConfig | None = None,
    options: RewriteOptions = RewriteOptions(),
    name: str = "model",
    inplace: bool = False,
) -> tuple[onnx.ModelProto, ModelReport]:
    """Replace every provable attention site of ``model`` by a SageAttention node.

    Returns the rewritten model (a copy unless ``inplace``) and the report. Sites that cannot be
    proven equivalent, or that the config disables, are left untouched and reported with the reason.
    """
    config = config or SageConfig()
    if not inplace:
        model = copy.deepcopy(model)
    index, sites = find_attention(model, options)
    report = ModelReport(
        name,
        index.opset,
        SCHEMA.domain,
        SCHEMA.version,
        existing_sage_nodes=[n.name or n.op_type for n in existing_sage_nodes(model)],
    )
    names = NameAllocator(model)
    plans: list[PlannedRewrite] = []
    for i, site in enumerate(sites):
        plan, entry = _plan(site, i, config, names)
        report.sites.append(entry)
        if plan is not None:
            plans.append(plan)
    apply_rewrites(model, index, plans)
    if options.validate:
        report.shape_inference = validate(model)
    log.info(report.summary())
    return model, report


def _plan(site: Site, i: int, config: SageConfig, names: NameAllocator) -> tuple[PlannedRewrite | None, SiteReport]:
    entry = SiteReport(
        index=i, form=site.form, anchor=site.anchor.label, nodes=site.names, rewritten=False, notes=list(site.notes)
    )
    if not isinstance(site, AttentionSite):
        entry.reason = site.reason
        log.info("site %d (%s at %s) untouched: %s", i, site.form, site.anchor.label, site.reason)
        return None, entry
    node_name = sage_node_name(site, i, names)
    resolved = config.resolve([*site.names, node_name], i)
    if not resolved.enabled:
        entry.reason = "disabled by the config"
        return None, entry
    attrs = dict(resolved.attributes)
    attrs.update(site.structural)
    entry.rewritten = True
    entry.sage_node = node_name
    entry.attributes = attrs
    entry.inputs = {
        role: site.describe(op.tensor) + ("" if op.perm is None else f" (Transpose {list(op.perm)})")
        for role, op in (("query", site.q), ("key", site.k), ("value", site.v))
    }
    for role, ref in (("attn_mask", site.attn_mask), ("key_lengths", site.key_lengths)):
        if ref is not None:
            entry.inputs[role] = site.describe(ref)
    entry.output = site.output
    return PlannedRewrite(site, node_name, dict(resolved.attributes)), entry


def validate(model: onnx.ModelProto) -> str:
    """Run strict ONNX shape inference (on the weightless skeleton); 'ok' or the error."""
    try:
        onnx.shape_inference.infer_shapes(skeleton(model), check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        log.warning("shape inference on the rewritten model failed: %s", exc)
        return f"failed: {exc}"
    return "ok"


def load_model(path: str | Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Save; weights go to an external-data file next to ``path`` when the model exceeds 2 GiB."""
    path = Path(path)
    if approx_size(model) > _PROTOBUF_LIMIT:
        onnx.save_model(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=path.name + ".data"
        )
    else:
        onnx.save_model(model, str(path))


def rewrite_file(
    src: str | Path,
    dst: str | Path,
    config: SageConfig | None = None,
    options: RewriteOptions = RewriteOptions(),
    report_path: str | Path | None = None,
) -> ModelReport:
    model = load_model(src)
    rewritten, report = rewrite_model(model, config, options, name=Path(src).name, inplace=True)
    save_model(rewritten, dst)
    if report_path is not None:
        report.save(report_path)
    return report
