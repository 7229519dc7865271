"""What a matcher returns: a proven attention site (how to feed SageAttention) or a rejected one."""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph_index import Node
from .symbolic import Poly

AttrValue = int | float | str

#: Causal masking as PyTorch and ONNX Attention without a cache define it: key j visible to query i iff
#: j <= i, for any Sq and Skv (the op's ``causal_alignment`` value for that).
TOP_LEFT = "top_left"


@dataclass(frozen=True)
class OpInput:
    """A tensor fed to SageAttention, optionally through a Transpose with ``perm``."""

    tensor: str
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
    attn_mask: str | None = None
    #: Feed ``Not(attn_mask)`` instead (a bool condition that is true where the key is masked).
    mask_negated: bool = False

    @property
    def names(self) -> list[str]:
        return [n.label for n in self.replaced]


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
