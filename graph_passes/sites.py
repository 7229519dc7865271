"""What a matcher returns: a proven attention site (how to feed SageAttention) or a rejected one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from .graph_index import Node
from .symbolic import Poly

AttrValue = int | float | str

#: Causal masking as PyTorch and ONNX Attention without a cache define it: key j visible to query i iff
#: j <= i, for any Sq and Skv (the op's ``causal_alignment`` value for that).
TOP_LEFT = "top_left"
#: ONNX Attention's causal masking with an external cache (``nonpad_kv_seqlen``): j <= i + L_b - Sq, where
#: L_b is the batch's number of valid keys (the op's ``key_lengths``).
BOTTOM_RIGHT = "bottom_right"


@dataclass(frozen=True)
class NewTensor:
    """Output ``output`` of node ``step`` of a site's prologue: a tensor the rewrite creates."""

    step: int
    output: int = 0


#: A tensor of the original graph (its name) or one the rewrite creates.
TensorRef = str | NewTensor


@dataclass
class PrologueNode:
    """A node the rewrite inserts before SageAttention (mask reshapes, projections, ...).

    Inputs are tensor references or numpy arrays (which become ``Constant`` nodes). ``types`` gives, per
    output, the element type and symbolic dims written as value_info (dims None: type only).
    """

    op: str
    inputs: list[TensorRef | np.ndarray]
    role: str
    types: list[tuple[int, tuple[Poly, ...] | None]]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prologue:
    """Builder for a site's prologue; the opset decides how Unsqueeze/Split take their axes/sizes."""

    opset: int
    nodes: list[PrologueNode] = field(default_factory=list)

    def add(
        self,
        op: str,
        inputs: list[TensorRef | np.ndarray],
        role: str,
        types: list[tuple[int, tuple[Poly, ...] | None]],
        **attrs: Any,
    ) -> list[NewTensor]:
        self.nodes.append(PrologueNode(op, inputs, role, types, attrs))
        step = len(self.nodes) - 1
        return [NewTensor(step, i) for i in range(len(types))]

    def one(
        self,
        op: str,
        inputs: list[TensorRef | np.ndarray],
        role: str,
        elem_type: int,
        dims: tuple[Poly, ...] | None,
        **attrs: Any,
    ) -> NewTensor:
        return self.add(op, inputs, role, [(elem_type, dims)], **attrs)[0]

    def unsqueeze(
        self, x: TensorRef, axes: list[int], role: str, elem_type: int, dims: tuple[Poly, ...] | None
    ) -> NewTensor:
        if self.opset >= 13:
            return self.one("Unsqueeze", [x, np.asarray(axes, np.int64)], role, elem_type, dims)
        return self.one("Unsqueeze", [x], role, elem_type, dims, axes=list(axes))

    def split(
        self, x: TensorRef, axis: int, sizes: list[int], role: str, elem_type: int, dims: list[tuple[Poly, ...] | None]
    ) -> list[NewTensor]:
        types = [(elem_type, d) for d in dims]
        if self.opset >= 13:
            return self.add("Split", [x, np.asarray(sizes, np.int64)], role, types, axis=axis)
        return self.add("Split", [x], role, types, axis=axis, split=list(sizes))

    def scalar(self, value: float, elem_type: int) -> np.ndarray | TensorRef:
        """A scalar constant of ``elem_type``; bfloat16 goes through a Cast (numpy has no bfloat16)."""
        if elem_type == TensorProto.BFLOAT16:
            return self.one("Cast", [np.asarray(value, np.float32)], "cast_constant", elem_type, (), to=elem_type)
        return np.asarray(value, helper.tensor_dtype_to_np_dtype(elem_type))


@dataclass(frozen=True)
class OpInput:
    """A tensor fed to SageAttention, optionally through a Transpose with ``perm``."""

    tensor: TensorRef
    perm: tuple[int, ...] | None = None


@dataclass
class AttentionSite:
    """A proven attention site.

    The SageAttention node replaces ``replaced`` (the nodes between the operands and ``output``) and
    produces ``output`` — directly, or through a Transpose ``output_perm`` when the op runs in a
    layout different from the original output's. When ``bypass`` is set (a Transpose consuming the
    original output), the op writes that Transpose's output instead and the Transpose goes away.
    """

    form: str
    anchor: Node
    replaced: list[Node]
    output: str
    q: OpInput
    k: OpInput
    v: OpInput
    structural: dict[str, AttrValue]
    dtype: int
    output_perm: tuple[int, ...] | None = None
    bypass: Node | None = None
    out_dims: tuple[Poly, ...] | None = None
    notes: list[str] = field(default_factory=list)
    #: Tensor fed to the op's ``attn_mask`` input (bool: true = attend, or additive float), if any.
    attn_mask: TensorRef | None = None
    #: Tensor fed to the op's ``key_lengths`` input (int32/int64 (B)), if any.
    key_lengths: TensorRef | None = None
    #: Nodes inserted before the op that compute the new tensors among the feeds.
    prologue: list[PrologueNode] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [n.label for n in self.replaced]

    def describe(self, ref: TensorRef) -> str:
        """How a fed tensor reads in reports: a graph tensor's name, or the prologue chain that makes it."""
        if isinstance(ref, str):
            return ref
        node = self.prologue[ref.step]
        sources = [self.describe(x) for x in node.inputs if isinstance(x, (str, NewTensor))]
        suffix = f"[{ref.output}]" if len(node.types) > 1 else ""
        return f"{node.op}({', '.join(sources)}){suffix}"


@dataclass
class RejectedSite:
    """Attention that stays untouched, with the reason."""

    form: str
    anchor: Node
    nodes: list[Node]
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [n.label for n in self.nodes]


Site = AttentionSite | RejectedSite


class Reject(Exception):
    """Raised inside a matcher to reject the site being matched; ``str(exc)`` is the reason."""
