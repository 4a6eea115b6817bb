"""In-place changes and shared memory: what keeps an in-place change from making a gradient
silently wrong.

Two mechanisms, both PyTorch's by another name. A clock of in-place changes, noted by the
array that owns the memory, lets backward refuse a node whose kept arrays changed after it
was made (PyTorch's version counters). And a record of which tensors share memory (views,
detach(), arrays handed to numpy) lets an in-place op that is recorded in the graph refuse
to leave them behind.
"""
import weakref

import numpy as np

# ---------------------------------------------------------------- in-place safety
# A node keeps the arrays its backward reads: some of its inputs, its output, values its
# forward computed on the side, and the arrays among its attributes (an index, a mask). If
# one of them is changed in place afterwards (`y += 1` inside no_grad, `idx[0] = 3`,
# `optimizer.step()`, `load_state_dict()`), the gradient computed from it would be silently
# wrong. Every in-place change through tensorgrad is noted here by the array that owns the
# memory; backward refuses a node whose kept arrays were changed after the node was made.

_changes = [0]        # how many in-place changes so far: a clock
_changed_at = {}      # id of a memory-owning array -> the clock at its latest change
_watched = {}         # id of a memory-owning array in a table here -> a weak reference whose
                      # callback takes it out of the tables once the array is freed (its id
                      # may then be reused by another array)


def _watch(owner):
    """Forget what the tables say about `owner` once it is freed."""
    key = id(owner)
    if key not in _watched:
        _watched[key] = weakref.ref(owner, lambda _, key=key: _forget(key))


def _forget(key):
    _watched.pop(key, None)
    _changed_at.pop(key, None)
    _sharers.pop(key, None)


def memory_owner(array):
    """The array that owns `array`'s memory: itself, or the base its view was taken from."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def note_inplace_change(array):
    """Record that `array` (or the memory it views) is being changed in place."""
    owner = memory_owner(array)
    _changes[0] += 1
    _watch(owner)
    _changed_at[id(owner)] = _changes[0]


def kept_arrays(node):
    """(what, array) for every array `node` keeps: inputs, output, the values its forward
    computed on the side, and the arrays among its attributes (an index tensor, a mask)."""
    yield from ((f"input {i}", a) for i, a in enumerate(node.inputs) if a is not None)
    if node.out is not None:
        yield "the output", node.out
    for key, value in (node.extras or {}).items():
        yield f"its {key}", value
    for key, value in node.attrs.items():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, np.ndarray):
                yield f"the {key} array", item


def check_unchanged(node):
    """Raise if an array `node` keeps was changed in place after the node was made."""
    for what, array in kept_arrays(node):
        if isinstance(array, np.ndarray) and (
                _changed_at.get(id(memory_owner(array)), 0) > node.made_at):
            i = int(what[6:]) if what.startswith("input ") else None
            parent = node.parents[i] if i is not None else None
            name = f" ('{parent.name}')" if parent is not None and parent.name else ""
            raise RuntimeError(
                f"backward: {what}{name} of '{node.op.name}' (shape {array.shape}) was changed "
                "in place after the op used it, so its gradient would be wrong; clone() the "
                "tensor before changing it, or change it after backward()")


# Tensors can share memory: a view (`y[0]`, `y.view(...)`, `y.T`), `detach()`, or an array
# handed to numpy code (`numpy()`, `.data`, `from_numpy`). An in-place op that is recorded
# in the graph gives its tensor a new array (the old values stay for the nodes that read
# them), so the tensors sharing the old memory would not see the change, as they do in
# PyTorch. Such an op is refused instead of silently leaving them behind.

_sharers = {}    # id of a memory-owning array -> {id: weak reference} of the tensors viewing
                 # it, or None once the memory was handed to numpy code


def note_sharing(array, *tensors):
    """Record that `tensors` share `array`'s memory (none given: numpy code holds it)."""
    owner = memory_owner(array)
    key = id(owner)
    if key not in _sharers:
        _watch(owner)
        _sharers[key] = {}
    if not tensors:
        _sharers[key] = None
    elif _sharers[key] is not None:
        _sharers[key].update((id(t), weakref.ref(t)) for t in tensors)


def check_unshared(tensor, op_name):
    """Refuse a recorded in-place op on `tensor` if other tensors or numpy code see its memory."""
    owner = memory_owner(tensor._data)
    if id(owner) not in _sharers:
        return
    family = _sharers[id(owner)]
    if family is None:
        holder = "numpy code (numpy(), .data or from_numpy)"
    else:
        others = [t for t in (ref() for ref in family.values())
                  if t is not None and t is not tensor and memory_owner(t._data) is owner]
        if not others:
            return
        holder = "another tensor (a view such as t[0], t.view(...) or t.T, or detach())"
    raise RuntimeError(
        f"{op_name}: in-place change, recorded in the graph, of a tensor whose memory "
        f"{holder} shares; tensorgrad would update this tensor alone and the others would keep "
        "the old values. Write it out of place (y = y + x), or clone() the tensor before "
        "taking views of it")
