"""`tensorgrad.autograd`: PyTorch's `torch.autograd` namespace, gathered from the engine.

The engine itself is in three modules, each one idea: `grad_mode` (recording on and off,
keep_grads, anomaly mode), `versions` (in-place changes and shared memory) and `graph` (the
Node and the backward pass). This module adds PyTorch's functions over them
(`autograd.backward`, and `autograd.grad` from `higher`, which records backward passes
for gradients of gradients).
"""
from ..grad_mode import (AnomalyWarning, detect_anomaly, enable_grad,
                        is_grad_enabled, keep_grads, no_grad, set_grad_enabled)
from .. import higher
from ..graph import Node, backpropagate, topological_order
from ..higher import grad
from . import functional

__all__ = ["AnomalyWarning", "Node", "backward", "detect_anomaly", "enable_grad", "functional",
           "grad", "is_grad_enabled", "keep_grads", "no_grad", "set_grad_enabled",
           "topological_order"]


# ---------------------------------------------------------------- PyTorch's functions

def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Backpropagate from several tensors at once, as `torch.autograd.backward`: the same as
    the sum of their `backward(grad)` calls, in one pass over the graph they share."""
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    grad_tensors = list(grad_tensors) if isinstance(grad_tensors, (list, tuple)) else [
        grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"autograd.backward: {len(tensors)} tensors but "
                         f"{len(grad_tensors)} gradients")
    roots = {}
    for t, g in zip(tensors, grad_tensors):
        node, g = t._initial_grad(g, "autograd.backward", create_graph)
        roots[node] = roots[node] + g if node in roots else g
    retain = create_graph if retain_graph is None else bool(retain_graph)
    if create_graph or inputs is not None:
        higher.backward_into(roots, retain, create_graph, inputs, "autograd.backward")
    else:
        backpropagate(roots, retain)
