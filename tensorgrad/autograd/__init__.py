"""`tensorgrad.autograd`: PyTorch's `torch.autograd` namespace, gathered from the engine.

The engine itself is in three modules, each one idea: `grad_mode` (recording on and off,
keep_grads, anomaly mode), `versions` (in-place changes and shared memory) and `graph` (the
Node and the backward pass). This module adds PyTorch's functions over them
(`autograd.backward`, and `autograd.grad` from `higher`, which records backward passes
for gradients of gradients) and the notes generated code reads while a step is
traced.
"""
import contextlib
import functools
import weakref

from ..grad_mode import (AnomalyWarning, _keeping_values, detect_anomaly, enable_grad,
                        is_grad_enabled, keep_grads, no_grad, set_grad_enabled)
from .. import higher
from ..graph import Node, backpropagate, topological_order
from ..higher import grad
from . import functional

__all__ = ["AnomalyWarning", "Node", "backward", "detect_anomaly", "enable_grad", "functional",
           "grad", "is_grad_enabled", "keep_grads", "no_grad", "set_grad_enabled",
           "topological_order"]


# ---------------------------------------------------------------- tracing, for codegen
# Functions that compute a constant array from their inputs outside the graph (cross_entropy's
# one-hot of the targets) say how, so generated code can compute it again for new inputs;
# while a step is traced (`tensorgrad.codegen.compile`), updates of state outside the graph
# (batchnorm's running statistics) are recorded too, so the code can make them.

_tracing = [False]
derived_constants = {}     # id(array) -> (weak reference to it, kind, source arrays)
traced_effects = []        # (function, array, arguments): an in-place update outside the graph


@contextlib.contextmanager
def tracing():
    """Record the updates made outside the graph, for the duration of the block."""
    _tracing.append(True)
    _keeping_values.append(True)            # the code is written from every value
    try:
        yield
    finally:
        _keeping_values.pop()
        _tracing.pop()
        if not _tracing[-1]:
            traced_effects.clear()


def note_derived(array, kind, *sources):
    """`array` was computed as `kind` of `sources`, outside the graph: remembered while the
    array lives."""
    key = id(array)
    forget = functools.partial(_forget_derived, key)
    derived_constants[key] = (weakref.ref(array, forget), kind, sources)


def _forget_derived(key, reference):
    if key in derived_constants and derived_constants[key][0] is reference:
        del derived_constants[key]


def note_effect(function, array, *arguments):
    """While tracing: `function(array, *arguments)` updated state in place (batchnorm's
    running statistics), so generated code must call it too."""
    if _tracing[-1]:
        traced_effects.append((function, array, arguments))


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
