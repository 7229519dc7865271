"""Applying proven sites to a ModelProto: new nodes in place of the old ones, dead code removed.

For each site the SageAttention node (plus any Transpose it needs on its inputs or output) is
inserted where the last replaced node stood, so the node list stays topologically sorted; the
replaced nodes are dropped; then every producer that fed only removed nodes is removed too,
transitively (initializers likewise). Nothing else in the graph changes. The custom domain's
opset import is added, and value_info is written for the new tensors whose shapes are known.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from sage_export.onnx_node import make_sage_node
from sage_export.schema import SCHEMA

from .graph_index import GraphIndex, Node, subgraph_references
from .sites import AttentionSite, AttrValue, NewTensor, TensorRef
from .symbolic import Poly

log = logging.getLogger(__name__)


@dataclass
class PlannedRewrite:
    site: AttentionSite
    node_name: str
    attributes: dict[str, AttrValue]


class NameAllocator:
    """Fresh, unique node and tensor names."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.taken = (
            {n.name for n in g.node} | {o for n in g.node for o in n.output} | {n for n in (i.name for i in g.input)}
        )
        self.taken |= {t.name for t in g.initializer}

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name


def sage_node_name(site: AttentionSite, index: int, names: NameAllocator) -> str:
    """``<scope>/SageAttention`` from the anchor's scope (``/model/layers.0/self_attn/``), else numbered."""
    anchor = site.anchor.proto.name
    scope = anchor.rsplit("/", 1)[0] + "/" if "/" in anchor else ""
    return names.fresh(f"{scope}SageAttention" if scope else f"SageAttention_{index}")


def apply_rewrites(model: onnx.ModelProto, index: GraphIndex, plans: list[PlannedRewrite]) -> None:
    """Edit ``model`` in place (it must be the model ``index`` was built on)."""
    if not plans:
        return
    names = NameAllocator(model)
    g = model.graph
    uses: Counter[str] = Counter()
    for n in g.node:
        uses.update(i for i in n.input if i)
        uses.update(subgraph_references(n))
    outputs = {o.name for o in g.output}

    removed: set[int] = set()
    insert_at: dict[int, list[onnx.NodeProto]] = {}
    new_value_info: list[onnx.ValueInfoProto] = []
    for plan in plans:
        site = plan.site
        new_nodes, infos = _build_nodes(site, plan, index, names)
        new_value_info += infos
        anchor = max(n.index for n in site.replaced)
        insert_at.setdefault(anchor, []).extend(new_nodes)
        for n in site.replaced:
            removed.add(n.index)
            uses.subtract(i for i in n.inputs if i)
        for n in new_nodes:
            uses.update(i for i in n.input if i)

    removed |= _dead_producers(index, removed, uses, outputs)
    kept: list[onnx.NodeProto] = []
    for node in index.nodes:
        kept.extend(insert_at.get(node.index, []))
        if node.index not in removed:
            kept.append(node.proto)
    del g.node[:]
    g.node.extend(kept)

    touched = {i for n in index.nodes if n.index in removed for i in n.inputs}
    live = {i for n in g.node for i in n.input} | {r for n in g.node for r in subgraph_references(n)} | outputs
    declared_inputs = {i.name for i in g.input}
    dead_inits = [
        t for t in g.initializer if t.name in touched and t.name not in live and t.name not in declared_inputs
    ]
    for t in dead_inits:
        g.initializer.remove(t)
    produced = {o for n in g.node for o in n.output} | {i.name for i in g.input} | {t.name for t in g.initializer}
    stale = [vi for vi in g.value_info if vi.name not in produced]
    for vi in stale:
        g.value_info.remove(vi)
    unique: dict[str, onnx.ValueInfoProto] = {}
    for vi in new_value_info:
        unique.setdefault(vi.name, vi)
    new_value_info = list(unique.values())
    replaced_infos = set(unique)
    for vi in [vi for vi in g.value_info if vi.name in replaced_infos]:
        g.value_info.remove(vi)
    g.value_info.extend(new_value_info)
    _ensure_opset(model)
    log.info(
        "replaced %d attention site(s); removed %d node(s) and %d initializer(s)",
        len(plans),
        len(removed),
        len(dead_inits),
    )


def _build_nodes(
    site: AttentionSite, plan: PlannedRewrite, index: GraphIndex, names: NameAllocator
) -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto]]:
    nodes: list[onnx.NodeProto] = []
    infos: list[onnx.ValueInfoProto] = []
    created = _build_prologue(site, plan, names, nodes, infos)

    def resolve(ref: TensorRef) -> str:
        return ref if isinstance(ref, str) else created[ref]

    feeds = []
    for role, operand in (("query", site.q), ("key", site.k), ("value", site.v)):
        tensor = resolve(operand.tensor)
        src = index.dims(operand.tensor) if isinstance(operand.tensor, str) else site_dims(site, operand.tensor)
        if (
            isinstance(operand.tensor, str)
            and src is not None
            and tensor not in index.graph_inputs
            and tensor not in index.initializers
            and not _declared_fully(index, tensor)
        ):
            infos.append(_value_info(tensor, site.dtype, src))  # helps runtimes' shape inference
        if operand.perm is None:
            feeds.append(tensor)
            continue
        out = names.fresh(f"{plan.node_name}/{role}_bnsh")
        nodes.append(
            helper.make_node(
                "Transpose",
                [tensor],
                [out],
                name=names.fresh(f"{plan.node_name}/transpose_{role}"),
                perm=list(operand.perm),
            )
        )
        feeds.append(out)
        if src is not None:
            infos.append(_value_info(out, site.dtype, tuple(src[p] for p in operand.perm)))
    if site.attn_mask is not None or site.key_lengths is not None:
        feeds.append("" if site.attn_mask is None else resolve(site.attn_mask))
    if site.key_lengths is not None:
        feeds.append(resolve(site.key_lengths))
    if site.output_perm is None:
        op_out = site.output
    else:
        op_out = names.fresh(f"{plan.node_name}/output_{site.structural.get('layout', '')}".rstrip("_").lower())
        if site.out_dims is not None:
            infos.append(_value_info(op_out, site.dtype, site.out_dims))
    attrs = dict(plan.attributes)
    attrs.update(site.structural)
    nodes.append(make_sage_node(feeds, [op_out], name=plan.node_name, **attrs))
    if site.output_perm is not None:
        nodes.append(
            helper.make_node(
                "Transpose",
                [op_out],
                [site.output],
                name=names.fresh(f"{plan.node_name}/transpose_output"),
                perm=list(site.output_perm),
            )
        )
    if index.type_proto(site.output) is None and site.output_perm is None and site.out_dims is not None:
        infos.append(_value_info(site.output, site.dtype, site.out_dims))
    return nodes, infos


def site_dims(site: AttentionSite, ref: NewTensor) -> tuple[Poly, ...] | None:
    """Symbolic dims the prologue declares for one of its tensors."""
    return site.prologue[ref.step].types[ref.output][1]


def _build_prologue(
    site: AttentionSite,
    plan: PlannedRewrite,
    names: NameAllocator,
    nodes: list[onnx.NodeProto],
    infos: list[onnx.ValueInfoProto],
) -> dict[NewTensor, str]:
    """The site's prologue nodes (constants as ``Constant`` nodes), with fresh names; new tensor → name."""
    created: dict[NewTensor, str] = {}
    for step, pn in enumerate(site.prologue):
        inputs: list[str] = []
        for x in pn.inputs:
            if isinstance(x, str):
                inputs.append(x)
            elif isinstance(x, NewTensor):
                inputs.append(created[x])
            else:
                const = names.fresh(f"{plan.node_name}/{pn.role}_const")
                value = numpy_helper.from_array(np.asarray(x), const)
                nodes.append(helper.make_node("Constant", [], [const], name=names.fresh(f"{const}_node"), value=value))
                inputs.append(const)
        outputs = [names.fresh(f"{plan.node_name}/{pn.role}") for _ in pn.types]
        nodes.append(
            helper.make_node(
                pn.op, inputs, outputs, name=names.fresh(f"{plan.node_name}/{pn.role}_{pn.op.lower()}"), **pn.attrs
            )
        )
        for i, (name, (elem_type, dims)) in enumerate(zip(outputs, pn.types)):
            created[NewTensor(step, i)] = name
            if dims is not None:
                infos.append(_value_info(name, elem_type, dims))
    return created


def _dead_producers(index: GraphIndex, removed: set[int], uses: Counter[str], outputs: set[str]) -> set[int]:
    """Producers that only fed removed nodes, transitively."""
    dead: set[int] = set()
    work = [i for n in index.nodes if n.index in removed for i in n.inputs if i]
    while work:
        t = work.pop()
        if uses[t] > 0 or t in outputs:
            continue
        p: Node | None = index.producer.get(t)
        if p is None or p.index in removed or p.index in dead:
            continue
        if any(uses[o] > 0 or o in outputs for o in p.outputs if o):
            continue
        dead.add(p.index)
        for i in p.inputs:
            if i:
                uses[i] -= 1
                work.append(i)
        for r in subgraph_references(p.proto):
            uses[r] -= 1
            work.append(r)
    return dead


def _value_info(name: str, elem_type: int, dims: tuple[Poly, ...]) -> onnx.ValueInfoProto:
    """value_info with every dimension named: a number, the model's symbol, or a ``sage_…`` symbol.

    A runtime's shape inference then never sees an anonymous dimension at the op (the op library's
    inference copies the query's dims). Equal polynomials get equal names, which is exactly what they
    are; made-up names never collide with the model's or with ONNX inference's ``unk__N``.
    """
    shape: list[int | str | None] = [_dim_entry(d) for d in dims]
    return helper.make_tensor_value_info(name, elem_type, shape)


def _dim_entry(d: Poly) -> int | str:
    if d.is_const:
        return int(d.value or 0)
    if len(d.terms) == 1:
        ((monomial, coef),) = d.terms.items()
        if coef == 1 and len(monomial) == 1 and not _is_internal_symbol(monomial[0]):
            return monomial[0]
    return "sage_" + re.sub(r"[^0-9A-Za-z_]+", "_", str(d)).strip("_")


def _declared_fully(index: GraphIndex, name: str) -> bool:
    t = index.declared_types.get(name)
    if t is None or not t.tensor_type.HasField("shape"):
        return False
    return all(
        d.HasField("dim_value") or (d.HasField("dim_param") and not _is_internal_symbol(d.dim_param))
        for d in t.tensor_type.shape.dim
    )


def _is_internal_symbol(sym: str) -> bool:
    """Symbols this package made up for unknown dims (``tensor[axis]``) or shape inference's ``unk__N``."""
    return sym.endswith("]") or sym.startswith("?") or sym.startswith("unk__")


def _ensure_opset(model: onnx.ModelProto) -> None:
    for o in model.opset_import:
        if o.domain == SCHEMA.domain:
            if o.version != SCHEMA.version:
                raise ValueError(
                    f"model imports {SCHEMA.domain} version {o.version}; this package writes version {SCHEMA.version}"
                )
            return
    model.opset_import.append(helper.make_opsetid(SCHEMA.domain, SCHEMA.version))
