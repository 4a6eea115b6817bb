"""Generated code: a recorded graph's forward and backward pass as straight-line numpy.

`generate(loss)` walks the graph that ends in `loss` (iteratively, in topological order)
and writes one statement per op: the forward in graph order, then the backward in reverse,
one gradient per intermediate, named after the tensors (`dlogprobs`, `dcounts_sum_inv`).
Every gradient is the op's own grad rule from `ops.py` written out as source, and wherever
the engine would unbroadcast, the code says so with an explicit `.sum(...)`. The result
is the lecture's exercise 1, written by the engine; it runs on plain numpy arrays and
gives the engine's gradients bit for bit. Fused ops (cross-entropy, batchnorm) are written
as the statements of their sympy-derived kernels: exercises 2 and 3.

`compile(step)` traces a function that returns a loss once, generates its code, and runs
that on later calls with inputs of the same shapes and dtypes, for as long as nothing else
the step reads has changed (re-tracing otherwise, or running eagerly what code could not
reproduce): the same losses and gradients as eager, without the per-op cost of building a
graph. Code made to run also reuses values already computed, frees each array after its
last use, and makes eager's checks of the values it reads (indices within range).

Layout, one way: `rules` (each op as source) <- `emitter` (statements, names, passes) <-
`program` (generate); `guards` (what a step reaches, and the check that it is unchanged)
<- `watch` (what a traced step did that code cannot repeat); all of them <- `compiled`
(compile). `hooks` holds what the engine notes for them as a step runs; it is a leaf, which
the engine imports, so the modules above load on first use of these names.
"""
import importlib

__all__ = ["CodegenError", "CompiledStep", "Program", "compile", "generate"]
_WHERE = {"CodegenError": "rules", "CompiledStep": "compiled", "Program": "program",
          "compile": "compiled", "generate": "program"}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'tensorgrad.codegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
