"""What generated code needs to know of a step that the graph does not record, noted by
the engine as the step runs (and read by `emitter`, `program` and `compiled`).

A function that computes a constant array from its inputs outside the graph
(cross_entropy's one-hot of the targets) says how (`note_derived`), so generated code can
compute it again for new inputs; while a step is traced (`codegen.compile`), updates of state
outside the graph (batchnorm's running statistics, its count of batches) are noted too
(`note_effect`), so the code can make them.

A leaf module, importing only grad_mode: the engine's functions (functional, nn) import it
without importing the rest of codegen (codegen/__init__ loads its modules on first use).
"""
import contextlib
import functools
import weakref

from ..grad_mode import _keeping_values

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
