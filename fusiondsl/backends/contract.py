"""Autograd of kernel-backed layers, shared by the C and Triton backends.

A fuse node with its result's cotangent is a closed multilinear diagram over its *roles*
(operands ``x0…``, result ``out``, weights ``w``). A backend's kernel for one role takes every
other role and returns ∂F/∂role. So the backward of ``Contract(target=t)`` with respect to
role ``s`` is ``Contract(target=s)`` with the incoming gradient in the place of ``t``:
derivatives of every order come from the same generated kernels.

A backend hands :func:`fuse` a *node*: anything with

* ``roles``: ``x0``…, ``out`` and (when weighted) ``w``, in kernel argument order;
* ``launch(target, inputs)``: the kernel of ``target`` on the other roles (``None`` at
  ``target``), a tensor ``[Z, width]`` (or the weight count for ``w``);
* ``joint``: whether ``launch_joint(inputs)`` exists, one call that returns every operand's
  gradient (``inputs`` hold the result's cotangent at ``out``); the C backend has it for
  binary nodes, where it shares the work of the per-role kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch


class KernelNode(Protocol):
    """What :class:`Contract` needs of a backend's node (see the module docstring)."""

    roles: tuple[str, ...]

    @property
    def joint(self) -> bool:
        """Whether :meth:`launch_joint` exists."""

    def launch(self, target: str, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The kernel of one role on the others."""

    def launch_joint(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Every operand's gradient at once."""


def operands(node: KernelNode) -> list[int]:
    """Positions of the operand roles ``x0``, ``x1``… among a node's roles."""
    return [s for s, r in enumerate(node.roles) if r.startswith("x")]


class Contract(torch.autograd.Function):
    """∂F/∂target of a node's closed diagram; its backward is again a ``Contract``."""

    @staticmethod
    def forward(ctx: Any, node: KernelNode, target: str,
                *inputs: torch.Tensor | None) -> torch.Tensor:
        """Run the kernel of ``target``; remember the other roles for the backward."""
        ctx.node, ctx.target = node, target
        ctx.present = tuple(x is not None for x in inputs)
        ctx.save_for_backward(*(x for x in inputs if x is not None))
        return node.launch(target, inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Each role's gradient: the kernel of that role, fed ``grad`` in the target's place.

        When every operand's gradient is wanted from the forward kernel and the node has a
        joint kernel, one :class:`JointGradient` call gives them all.
        """
        saved = iter(ctx.saved_tensors)
        inputs = [next(saved) if present else None for present in ctx.present]
        node, t = ctx.node, ctx.node.roles.index(ctx.target)
        needed = [x is not None and ctx.needs_input_grad[2 + s] for s, x in enumerate(inputs)]
        joint: dict[int, torch.Tensor] = {}
        ops = operands(node)
        if ctx.target == "out" and node.joint and all(needed[s] for s in ops):
            args = list(inputs)
            args[t] = grad
            joint = dict(zip(ops, JointGradient.apply(node, *args)))
        grads: list[torch.Tensor | None] = []
        for s, role in enumerate(node.roles):
            if s in joint or not needed[s]:
                grads.append(joint.get(s))
                continue
            args = list(inputs)
            args[t], args[s] = grad, None
            grads.append(Contract.apply(node, role, *args))
        return (None, None, *grads)


class JointGradient(torch.autograd.Function):
    """Every operand's gradient of a node at once; its backward is made of ``Contract``s."""

    @staticmethod
    def forward(ctx: Any, node: KernelNode, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the joint kernel on every role (``out`` holds the result's cotangent)."""
        ctx.node = node
        ctx.save_for_backward(*inputs)
        return node.launch_joint(inputs)

    @staticmethod
    def backward(ctx: Any, *cots: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        """Each role's gradient, summed over the operand gradients ``t`` it feeds.

        Operand gradient ``t`` is ``Contract(t)``: its derivative w.r.t. role ``s`` is
        ``Contract(s)`` with the cotangent in ``t``'s place.
        """
        node, inputs = ctx.node, list(ctx.saved_tensors)
        grads: list[torch.Tensor | None] = []
        for s, role in enumerate(node.roles):
            total = None
            for t, cot in zip(operands(node), cots):
                if cot is None or t == s or not ctx.needs_input_grad[1 + s]:
                    continue
                args: list[torch.Tensor | None] = list(inputs)
                args[t], args[s] = cot, None
                part = Contract.apply(node, role, *args)
                total = part if total is None else total + part
            grads.append(total)
        return (None, *grads)


def fuse(node: KernelNode, operands: Sequence[torch.Tensor],
         weight: torch.Tensor | None = None) -> torch.Tensor:
    """A node's result ``[Z, width]`` from its operands ``[Z, width_i]`` and weights."""
    inputs = [*operands, None, *((weight,) if "w" in node.roles else ())]
    return Contract.apply(node, "out", *inputs)
