"""Read-only index over an ONNX graph: producers, consumers, types, symbolic shapes and constants.

The matchers ask questions ("who consumes this tensor?", "what are its dimensions?", "is it a
constant, and which?", "what integers does this shape tensor hold?") and never edit the graph; the
rewriter edits the ModelProto afterwards. Shapes come from ONNX shape inference (with data
propagation), completed where it left a dimension unknown by a few local rules; integer shape
tensors are evaluated symbolically (``Shape → Slice → Concat`` gives polynomials over the named
dimensions); small constant subgraphs are evaluated with ``onnx.reference``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .symbolic import Poly, product

log = logging.getLogger(__name__)

#: Ops never evaluated as constants even when every input is constant.
_NON_DETERMINISTIC = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
#: Nesting limit of the recursive shape/constant derivations (deeper answers "unknown").
_MAX_DEPTH = 200
#: Largest constant (elements) the index will materialize.
_MAX_CONST_ELEMENTS = 1 << 24

FLOAT_TYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.DOUBLE: "float64",
}
INT_TYPES = {
    TensorProto.INT64,
    TensorProto.INT32,
    TensorProto.INT16,
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.UINT16,
    TensorProto.UINT32,
    TensorProto.UINT64,
}
_UNARY_SAME_SHAPE = set(
    "Cast CastLike Identity Softmax LogSoftmax IsNaN IsInf Not Neg Sqrt Reciprocal Exp Log Abs Relu Sigmoid Tanh Erf "
    "Dropout Trilu LayerNormalization SimplifiedLayerNormalization Gelu Softplus Elu LeakyRelu Cos Sin Floor Ceil "
    "Round Sign BitwiseNot".split()
)
_BROADCAST = set("Add Sub Mul Div Pow Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor Max Min Where".split())


@dataclass(eq=False)
class Node:
    """A node of the graph with its position; hashed by identity."""

    proto: onnx.NodeProto
    index: int

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def domain(self) -> str:
        return self.proto.domain or ""

    @property
    def inputs(self) -> Sequence[str]:
        return self.proto.input

    @property
    def outputs(self) -> Sequence[str]:
        return self.proto.output

    @property
    def label(self) -> str:
        """The node's name, or op#position when it has none."""
        return self.proto.name or f"{self.op}#{self.index}"

    def input(self, i: int) -> str:
        """The i-th input name, '' when absent."""
        return self.proto.input[i] if i < len(self.proto.input) else ""

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.proto.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def has_attr(self, name: str) -> bool:
        return any(a.name == name for a in self.proto.attribute)

    def is_op(self, op: str, domain: str = "") -> bool:
        return self.op == op and self.domain in ({domain, "ai.onnx"} if domain == "" else {domain})


@dataclass
class GraphIndex:
    """Index over ``model.graph``; ``inferred`` (shape-inferred copy) supplies value_info if given."""

    model: onnx.ModelProto
    inferred: onnx.ModelProto | None = None
    nodes: list[Node] = field(init=False)
    producer: dict[str, Node] = field(init=False)
    consumers: dict[str, list[Node]] = field(init=False)
    graph_inputs: set[str] = field(init=False)
    graph_outputs: set[str] = field(init=False)
    initializers: dict[str, TensorProto] = field(init=False)
    opsets: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.nodes = [Node(n, i) for i, n in enumerate(g.node)]
        self.producer = {o: n for n in self.nodes for o in n.outputs if o}
        self.consumers = defaultdict(list)
        for n in self.nodes:
            for name in set(n.inputs):
                if name:
                    self.consumers[name].append(n)
            for name in subgraph_references(n.proto):
                self.consumers[name].append(n)
        self.initializers = {t.name: t for t in g.initializer}
        self.graph_inputs = {i.name for i in g.input if i.name not in self.initializers}
        self.graph_outputs = {o.name for o in g.output}
        self.opsets = {o.domain or "": o.version for o in self.model.opset_import}
        self.opsets.setdefault("ai.onnx", self.opsets.get("", 0))
        self._types: dict[str, onnx.TypeProto] = {}
        self.declared_types: dict[str, onnx.TypeProto] = {}  # the model's own value_info/inputs/outputs
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            if vi.type.HasField("tensor_type"):
                self.declared_types.setdefault(vi.name, vi.type)
        for src in ([self.inferred.graph] if self.inferred is not None else []) + [g]:
            for vi in list(src.value_info) + list(src.input) + list(src.output):
                if vi.type.HasField("tensor_type"):
                    self._types.setdefault(vi.name, vi.type)
        self._dims: dict[str, tuple[Poly, ...] | None] = {}
        self._consts: dict[str, np.ndarray | None] = {}
        self._syms: dict[str, list[Poly | None] | None] = {}
        self._depth = 0
        self._maybe_const: set[str] = set()
        self._maybe_const = self._constant_closure(with_shapes=False)
        self._maybe_const = self._constant_closure(with_shapes=True)
        for cache in (self._dims, self._consts, self._syms):
            cache.clear()

    def _guarded(self, fn: Any, *args: Any) -> Any:
        """Call a recursive derivation, answering None (unknown) beyond _MAX_DEPTH nested calls."""
        if self._depth >= _MAX_DEPTH:
            return None
        self._depth += 1
        try:
            return fn(*args)
        finally:
            self._depth -= 1

    # ---------------------------------------------------------------------------------- structure
    @property
    def opset(self) -> int:
        """Version of the default ONNX domain."""
        return self.opsets.get("", 0)

    def uses(self, name: str) -> list[Node]:
        return self.consumers.get(name, [])

    def is_graph_output(self, name: str) -> bool:
        return name in self.graph_outputs

    def is_used(self, name: str) -> bool:
        return bool(name) and (name in self.graph_outputs or bool(self.consumers.get(name)))

    def node_of(self, name: str) -> Node | None:
        return self.producer.get(name)

    def sole_consumer(self, name: str) -> Node | None:
        """The single consumer of ``name`` when it has exactly one and is not a graph output."""
        users = self.uses(name)
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0]

    def graph_input_ancestors(self, name: str, limit: int = 2000) -> set[str]:
        """Graph inputs whose *values* reach ``name`` (edges into Shape/Size carry no values)."""
        seen: set[str] = set()
        found: set[str] = set()
        stack = [name]
        while stack and len(seen) < limit:
            t = stack.pop()
            if t in seen or not t:
                continue
            seen.add(t)
            if t in self.graph_inputs:
                found.add(t)
                continue
            p = self.producer.get(t)
            if p is None or p.op in ("Shape", "Size"):
                continue
            stack.extend(p.inputs)
        return found

    # ---------------------------------------------------------------------------------------- types
    def elem_type(self, name: str) -> int | None:
        if name in self.initializers:
            return self.initializers[name].data_type
        t = self._types.get(name)
        if t is not None and t.tensor_type.elem_type:
            return t.tensor_type.elem_type
        p = self.producer.get(name)
        if p is not None and p.op == "Constant":
            v = self.const_value(name)
            if v is not None:
                return helper.np_dtype_to_tensor_dtype(v.dtype)
        return None

    def type_proto(self, name: str) -> onnx.TypeProto | None:
        return self._types.get(name)

    # --------------------------------------------------------------------------------------- shapes
    def rank(self, name: str) -> int | None:
        d = self.dims(name)
        return None if d is None else len(d)

    def dims(self, name: str) -> tuple[Poly, ...] | None:
        """Symbolic dimensions of ``name``; unknown entries become symbols unique to (tensor, axis)."""
        if name in self._dims:
            return self._dims[name]
        self._dims[name] = None  # cycle guard
        known = self._declared_dims(name)
        derived = None
        if known is None or any(d is None for d in known):
            derived = self._guarded(self._derived_dims, name)
        out: tuple[Poly, ...] | None
        if known is None and derived is None:
            out = None
        else:
            rank = len(known) if known is not None else len(derived)  # type: ignore[arg-type]
            if derived is not None and len(derived) != rank:
                derived = None
            entries = []
            for axis in range(rank):
                d = known[axis] if known is not None else None
                fallback = self._inferred_symbol(name, axis)
                if d is None and derived is not None:
                    d = derived[axis]
                entries.append(d if d is not None else fallback or Poly.sym(f"{name}[{axis}]"))
            out = tuple(entries)
        self._dims[name] = out
        return out

    def _declared_dims(self, name: str) -> list[Poly | None] | None:
        if name in self.initializers:
            return [Poly.const(d) for d in self.initializers[name].dims]
        p = self.producer.get(name)
        if p is not None and p.op == "Constant":
            v = self.const_value(name)
            return None if v is None else [Poly.const(d) for d in v.shape]
        t = self._types.get(name)
        if t is None or not t.tensor_type.HasField("shape"):
            return None
        out: list[Poly | None] = []
        for d in t.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                out.append(Poly.const(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param and not _is_inference_symbol(d.dim_param):
                out.append(Poly.sym(d.dim_param))
            else:
                out.append(None)
        return out

    def _inferred_symbol(self, name: str, axis: int) -> Poly | None:
        """Shape inference's made-up symbol (``unk__N``) for a dim it could not compute, if any."""
        t = self._types.get(name)
        if t is None or not t.tensor_type.HasField("shape") or axis >= len(t.tensor_type.shape.dim):
            return None
        d = t.tensor_type.shape.dim[axis]
        return Poly.sym(d.dim_param) if d.HasField("dim_param") and _is_inference_symbol(d.dim_param) else None

    def _derived_dims(self, name: str) -> list[Poly | None] | None:
        """Dimensions from the producer's inputs, for the ops attention chains use."""
        p = self.producer.get(name)
        if p is None or p.domain not in ("", "ai.onnx"):
            return None
        op = p.op
        if op == "Split":
            return self._split_dims(p, list(p.outputs).index(name))
        if name != p.outputs[0]:
            return None
        if op in _UNARY_SAME_SHAPE:
            return _opt(self.dims(p.input(0)))
        if op == "Transpose":
            d = self.dims(p.input(0))
            if d is None:
                return None
            perm = p.attr("perm") or list(reversed(range(len(d))))
            return [d[i] for i in perm]
        if op == "Reshape":
            return self._reshape_dims(p)
        if op in ("Unsqueeze", "Squeeze"):
            d = self.dims(p.input(0))
            axes = self.axes_of(p)
            if d is None or axes is None:
                return None
            if op == "Unsqueeze":
                rank = len(d) + len(axes)
                norm = sorted(a % rank for a in axes)
                out: list[Poly | None] = list(d)
                for a in norm:
                    out.insert(a, Poly.const(1))
                return out
            norm_s = {a % len(d) for a in axes}
            return [x for i, x in enumerate(d) if i not in norm_s]
        if op in _BROADCAST:
            shapes = [self.dims(i) for i in p.inputs if i]
            if any(s is None for s in shapes):
                return None
            return broadcast_dims([list(s) for s in shapes if s is not None])
        if op == "Expand":
            d, target = self.dims(p.input(0)), self.sym_value(p.input(1))
            if d is None or target is None:
                return None
            return broadcast_dims([list(d), list(target)])
        if op == "Gather":
            data_dims, index_dims = self.dims(p.input(0)), self.dims(p.input(1))
            if data_dims is None or index_dims is None:
                return None
            axis = p.attr("axis", 0) % len(data_dims)
            gathered: list[Poly | None] = [*data_dims[:axis], *index_dims, *data_dims[axis + 1 :]]
            return gathered
        if op == "Slice":
            return self._slice_dims(p)
        if op == "Gemm":
            a_dims, b_dims = self.dims(p.input(0)), self.dims(p.input(1))
            if a_dims is None or b_dims is None or len(a_dims) != 2 or len(b_dims) != 2:
                return None
            m = a_dims[1] if p.attr("transA", 0) else a_dims[0]
            n = b_dims[0] if p.attr("transB", 0) else b_dims[1]
            return [m, n]
        if op == "Concat":
            maybe_parts = [self.dims(i) for i in p.inputs if i]
            parts = [d for d in maybe_parts if d is not None]
            if not parts or len(parts) != len(maybe_parts) or any(len(d) != len(parts[0]) for d in parts):
                return None
            axis = p.attr("axis", 0) % len(parts[0])
            total = Poly.const(0)
            for d in parts:
                total = total + d[axis]
            joined: list[Poly | None] = list(parts[0])
            joined[axis] = total
            return joined
        if op == "Range":
            start, limit, delta = (self.sym_value(p.input(i)) for i in range(3))
            if start and limit and delta == [Poly.const(1)] and start[0] is not None and limit[0] is not None:
                length = limit[0] - start[0]
                return [length] if length.is_dim_like() else None  # max(0, limit − start) = length when ≥ 0
            return None
        if op == "MatMul":
            lhs, rhs = self.dims(p.input(0)), self.dims(p.input(1))
            if lhs is None or rhs is None or len(lhs) < 2 or len(rhs) < 2:
                return None
            batch = broadcast_dims([list(lhs[:-2]), list(rhs[:-2])])
            return None if batch is None else batch + [lhs[-2], rhs[-1]]
        return None

    def _split_dims(self, p: Node, which: int) -> list[Poly | None] | None:
        """Output ``which`` of a Split: sizes from the split input/attribute, or an even division."""
        d = self.dims(p.input(0))
        if d is None:
            return None
        axis = p.attr("axis", 0) % len(d)
        sizes: list[int] | None = None
        if p.has_attr("split"):
            sizes = list(p.attr("split"))
        elif p.input(1):
            v = self.const_value(p.input(1))
            sizes = None if v is None else [int(x) for x in np.ravel(v)]
        out: list[Poly | None] = list(d)
        if sizes is not None:
            if which >= len(sizes):
                return None
            out[axis] = Poly.const(sizes[which])
            return out
        parts = len(p.outputs)
        if d[axis].is_const and (d[axis].value or 0) % parts == 0:
            out[axis] = Poly.const((d[axis].value or 0) // parts)
            return out
        even = d[axis].exact_div(parts)
        out[axis] = even
        return out if even is not None else None

    def _slice_dims(self, p: Node) -> list[Poly | None] | None:
        """Slice with (symbolically) known bounds: exact lengths where provable, else unknown."""
        d = self.dims(p.input(0))
        if d is None or self.opset < 10:
            return None
        starts, ends = self.sym_value(p.input(1)), self.sym_value(p.input(2))
        axes = self.sym_value(p.input(3)) if p.input(3) else [Poly.const(i) for i in range(len(starts or []))]
        steps = self.sym_value(p.input(4)) if p.input(4) else [Poly.const(1)] * len(starts or [])
        if starts is None or ends is None or axes is None or steps is None:
            return None
        out: list[Poly | None] = list(d)
        big = 1 << 62
        for s0, e0, a0, st in zip(starts, ends, axes, steps):
            if a0 is None or not a0.is_const:
                return None
            a = int(a0.value or 0) % len(d)
            size = d[a]
            if s0 is None or e0 is None or st != Poly.const(1):
                out[a] = None
            elif size.is_const and s0.is_const and e0.is_const:
                b, e = _clamp_slice(int(s0.value or 0), int(e0.value or 0), int(size.value or 0), 1)
                out[a] = Poly.const(max(0, e - b))
            elif s0 == Poly.const(0) and (e0 == size or (e0.is_const and (e0.value or 0) >= big)):
                out[a] = size  # the whole axis
            else:
                out[a] = None
        return out

    def _reshape_dims(self, p: Node) -> list[Poly | None] | None:
        src = self.dims(p.input(0))
        target = self.sym_value(p.input(1))
        if target is None:
            return None
        allowzero = p.attr("allowzero", 0)
        out: list[Poly | None] = []
        infer_at = None
        for i, t in enumerate(target):
            if t is None:
                out.append(None)
            elif t == Poly.const(0) and not allowzero:
                out.append(src[i] if src is not None and i < len(src) else None)
            elif t == Poly.const(-1):
                infer_at = i
                out.append(None)
            else:
                out.append(t)
        if infer_at is not None and src is not None and all(d is not None for i, d in enumerate(out) if i != infer_at):
            rest = product(d for i, d in enumerate(out) if i != infer_at and d is not None)
            out[infer_at] = product(src).div_poly(rest)
        return out

    def axes_of(self, node: Node) -> list[int] | None:
        """The axes of Unsqueeze/Squeeze/Reduce*: attribute (old opsets) or second input (new)."""
        if node.has_attr("axes"):
            return list(node.attr("axes"))
        if len(node.inputs) > 1 and node.input(1):
            v = self.const_value(node.input(1))
            return None if v is None else [int(x) for x in np.ravel(v)]
        return [] if node.op == "Squeeze" else None

    # ------------------------------------------------------------------------------------ constants
    def _constant_closure(self, with_shapes: bool) -> set[str]:
        """Tensors that may be constant: initializers, Constant, Shape of static tensors, and closure."""
        maybe: set[str] = set(self.initializers)
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx") or n.op in _NON_DETERMINISTIC or _has_subgraph(n.proto):
                continue
            if n.op == "Constant":
                maybe.update(n.outputs)
            elif n.op in ("Shape", "Size"):
                if not with_shapes:
                    continue
                d = self.dims(n.input(0))
                if d is not None and all(x.is_const for x in d):
                    maybe.update(n.outputs)
            elif n.inputs and all((not i) or i in maybe for i in n.inputs):
                maybe.update(o for o in n.outputs if o)
        return maybe

    def is_constant(self, name: str) -> bool:
        return name in self._maybe_const and self.const_value(name) is not None

    def const_value(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when it is computable from constants alone (memoized), else None."""
        if not name:
            return None
        if name in self._consts:
            return self._consts[name]
        self._consts[name] = None  # cycle guard
        value: np.ndarray | None = None
        if name in self.initializers:
            value = numpy_helper.to_array(self.initializers[name])
        elif name in self._maybe_const:
            p = self.producer.get(name)
            if p is not None:
                value = self._guarded(self._evaluate, p, name)
        self._consts[name] = value
        return value

    def _evaluate(self, node: Node, name: str) -> np.ndarray | None:
        if node.op == "Constant":
            return _constant_attr(node.proto)
        if node.op in ("Shape", "Size"):
            d = self.dims(node.input(0))
            if d is None or not all(x.is_const for x in d):
                return None
            shape = [int(x.value or 0) for x in d]
            if node.op == "Size":
                return np.array(int(np.prod(shape)), dtype=np.int64)
            start, end = node.attr("start", 0), node.attr("end", None)
            return np.array(shape[slice(start, end)], dtype=np.int64)
        declared = self._declared_dims(name)
        if declared is not None and all(d is not None and d.is_const for d in declared):
            count = 1
            for entry in declared:
                count *= int(entry.value or 0) if entry is not None else 1
            if count > _MAX_CONST_ELEMENTS:
                return None
        feeds: dict[str, np.ndarray] = {}
        for i in node.inputs:
            if not i:
                continue
            v = self.const_value(i)
            if v is None:
                return None
            feeds[i] = v
        try:
            return _run_single_node(node.proto, feeds, self.model.opset_import)[list(node.outputs).index(name)]
        except Exception as exc:  # noqa: BLE001 - any evaluation failure just means "not a known constant"
            log.debug("constant evaluation of %s failed: %s", node.label, exc)
            return None

    def scalar_value(self, name: str) -> float | None:
        """The value of a single-element constant, else None."""
        v = self.const_value(name)
        if v is None or v.size != 1:
            return None
        return float(np.ravel(v)[0])

    # ------------------------------------------------------------------------ symbolic int vectors
    def sym_value(self, name: str) -> list[Poly | None] | None:
        """Integer values of a shape-like tensor (rank ≤ 1) as polynomials; None when not derivable."""
        if not name:
            return None
        if name in self._syms:
            return self._syms[name]
        self._syms[name] = None
        out = self._guarded(self._sym_value, name)
        self._syms[name] = out
        return out

    def _sym_value(self, name: str) -> list[Poly | None] | None:
        if name in self._maybe_const:
            v = self.const_value(name)
            if (
                v is not None
                and v.ndim <= 1
                and v.size <= 64
                and (np.issubdtype(v.dtype, np.integer) or v.dtype == np.bool_)
            ):
                return [Poly.const(int(x)) for x in np.ravel(v)]
        p = self.producer.get(name)
        if p is None or p.domain not in ("", "ai.onnx"):
            return None
        op = p.op
        if op == "Shape":
            d = self.dims(p.input(0))
            if d is None:
                return None
            return list(d[slice(p.attr("start", 0), p.attr("end", None))])
        if op == "Size":
            d = self.dims(p.input(0))
            return None if d is None else [product(d)]
        if op == "Concat":
            out: list[Poly | None] = []
            for part_name in p.inputs:
                part = self.sym_value(part_name)
                if part is None:
                    return None
                out.extend(part)
            return out
        if op in ("Unsqueeze", "Squeeze", "Identity", "Reshape", "Flatten", "Cast"):
            if op == "Cast" and p.attr("to") not in INT_TYPES:
                return None
            return self.sym_value(p.input(0))
        if op == "Gather":
            data, idx = self.sym_value(p.input(0)), self.const_value(p.input(1))
            if data is None or idx is None or p.attr("axis", 0) != 0:
                return None
            try:
                return [data[int(i)] for i in np.ravel(idx)]
            except IndexError:
                return None
        if op == "Slice":
            return self._sym_slice(p)
        if op in ("Add", "Sub", "Mul", "Div"):
            a, b = self.sym_value(p.input(0)), self.sym_value(p.input(1))
            if a is None or b is None:
                return None
            return _elementwise(op, a, b)
        if op == "Neg":
            a = self.sym_value(p.input(0))
            return None if a is None else [None if x is None else -x for x in a]
        if op == "Equal":
            a, b = self.sym_value(p.input(0)), self.sym_value(p.input(1))
            if a is None or b is None:
                return None
            return _elementwise("Equal", a, b)
        if op == "Where":
            c, a, b = (self.sym_value(p.input(i)) for i in range(3))
            if c is None or a is None or b is None:
                return None
            n = max(len(c), len(a), len(b))
            if any(len(x) not in (1, n) for x in (c, a, b)):
                return None
            picked: list[Poly | None] = []
            for pos in range(n):
                ci = c[pos if len(c) > 1 else 0]
                if ci is None or not ci.is_const:
                    picked.append(None)
                else:
                    src = a if ci.value else b
                    picked.append(src[pos if len(src) > 1 else 0])
            return picked
        if op == "ConstantOfShape":
            shape = self.sym_value(p.input(0))
            value = p.attr("value")
            if shape is None or len(shape) != 1 or shape[0] is None or not shape[0].is_const:
                return None
            fill = 0 if value is None else int(numpy_helper.to_array(value).ravel()[0])
            return [Poly.const(fill)] * int(shape[0].value or 0)
        return None

    def _sym_slice(self, p: Node) -> list[Poly | None] | None:
        data = self.sym_value(p.input(0))
        if data is None:
            return None
        if self.opset < 10:
            starts, ends, axes, steps = p.attr("starts"), p.attr("ends"), p.attr("axes"), None
        else:
            vals = [self.const_value(p.input(i)) if p.input(i) else None for i in range(1, 5)]
            if vals[0] is None or vals[1] is None:
                return None
            starts, ends = list(np.ravel(vals[0])), list(np.ravel(vals[1]))
            axes = None if vals[2] is None else list(np.ravel(vals[2]))
            steps = None if vals[3] is None else list(np.ravel(vals[3]))
        if (
            starts is None
            or ends is None
            or len(starts) != 1
            or (axes is not None and [int(a) for a in axes] not in ([0], [-1]))
        ):
            return None
        step = 1 if not steps else int(steps[0])
        if step not in (1, -1):
            return None
        n = len(data)
        s, e = _clamp_slice(int(starts[0]), int(ends[0]), n, step)
        return data[s:e:step] if step == 1 else data[s : (None if e < 0 else e) : step]


# ------------------------------------------------------------------------------------------ helpers
def _is_inference_symbol(param: str) -> bool:
    """ONNX shape inference names dims it cannot compute ``unk__N``; they carry no information."""
    return param.startswith("unk__")


def broadcast_dims(shapes: list[list[Poly | None]]) -> list[Poly | None] | None:
    """Numpy broadcasting of symbolic shapes; an undecidable pair gives an unknown entry."""
    rank = max(len(s) for s in shapes)
    out: list[Poly | None] = []
    one = Poly.const(1)
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        non_one = [d for d in dims if d is None or d != one]
        if not non_one:
            out.append(one)
        elif all(d is not None and d == non_one[0] for d in non_one):
            out.append(non_one[0])
        else:
            out.append(None)
    return out


def _opt(d: tuple[Poly, ...] | None) -> list[Poly | None] | None:
    return None if d is None else list(d)


def _elementwise(op: str, a: list[Poly | None], b: list[Poly | None]) -> list[Poly | None] | None:
    n = max(len(a), len(b))
    if len(a) not in (1, n) or len(b) not in (1, n):
        return None
    out: list[Poly | None] = []
    for i in range(n):
        x, y = a[i if len(a) > 1 else 0], b[i if len(b) > 1 else 0]
        if x is None or y is None:
            out.append(None)
        elif op == "Add":
            out.append(x + y)
        elif op == "Sub":
            out.append(x - y)
        elif op == "Mul":
            out.append(x * y)
        elif op == "Div":
            out.append(x.exact_div(y.value) if y.is_const and y.value else None)
        elif op == "Equal":
            if x == y:
                out.append(Poly.const(1))
            elif x.is_const and y.is_const:
                out.append(Poly.const(0))
            elif (x.is_dim_like() and y.is_const and (y.value or 0) < 0) or (
                y.is_dim_like() and x.is_const and (x.value or 0) < 0
            ):
                out.append(Poly.const(0))
            else:
                out.append(None)
    return out


def _clamp_slice(start: int, end: int, n: int, step: int) -> tuple[int, int]:
    if start < 0:
        start += n
    if end < 0:
        end += n
    if step > 0:
        return max(0, min(start, n)), max(0, min(end, n))
    return max(-1, min(start, n - 1)), max(-1, min(end, n - 1))


def _constant_attr(node: onnx.NodeProto) -> np.ndarray | None:
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if a.name == "value":
            return numpy_helper.to_array(v)
        if a.name == "value_float":
            return np.array(v, dtype=np.float32)
        if a.name == "value_int":
            return np.array(v, dtype=np.int64)
        if a.name == "value_floats":
            return np.array(v, dtype=np.float32)
        if a.name == "value_ints":
            return np.array(v, dtype=np.int64)
    return None


def _run_single_node(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray], opsets: Iterable[onnx.OperatorSetIdProto]
) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    inputs = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()
    ]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
    graph = helper.make_graph([node], "const_eval", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[o for o in opsets if (o.domain or "") in ("", "ai.onnx")])
    result = ReferenceEvaluator(model).run(None, feeds)
    return [np.asarray(r) for r in result]


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def subgraph_references(node: onnx.NodeProto) -> Iterator[str]:
    """Outer-scope names a node's subgraphs read (they count as consumers)."""
    for a in node.attribute:
        graphs = (
            [a.g]
            if a.type == onnx.AttributeProto.GRAPH
            else list(a.graphs)
            if a.type == onnx.AttributeProto.GRAPHS
            else []
        )
        for g in graphs:
            local = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
            for n in g.node:
                for i in n.input:
                    if i and i not in local:
                        yield i
                yield from subgraph_references(n)
