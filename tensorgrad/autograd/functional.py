"""`tensorgrad.autograd.functional`: derivatives of a function, as PyTorch's
`torch.autograd.functional`: vjp, jvp, vhp, hvp, jacobian, hessian.

Each takes `func` (tensors in, a tensor or a tuple of tensors out) and `inputs` (a tensor
or a tuple of tensors), calls `func` on fresh leaves with the inputs' values, and returns
what it asks for, built from `autograd.grad`:

    vjp      v^T J            one backward pass
    jvp      J v              two: the gradient of (u^T J) by u, which is linear in u
    vhp/hvp  v^T H = H v      a gradient of a gradient (H is symmetric)
    jacobian J                one backward pass per output element (small problems)
    hessian  H                the jacobian of the gradient

With `create_graph=True` the results stay in the graph, to be differentiated again; without
it they are plain tensors. An input the output does not depend on gets zeros, or an error
with `strict=True`.
"""
import numpy as np

from .. import ops
from ..grad_mode import enable_grad
from ..higher import grad
from ..tensor import Tensor, apply

__all__ = ["vjp", "jvp", "vhp", "hvp", "jacobian", "hessian"]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, one backward pass. `v` has the
    output's shape (it may be omitted for a single-element output)."""
    was_tuple, xs = _leaves(inputs, "vjp")
    with enable_grad():
        out_tuple, outs = _outputs(func(*xs), "vjp")
        vs = _like(v, outs, "vjp", "v", "output")
        grads = _grads(outs, xs, vs, create_graph, strict, "vjp")
    return _result(outs, out_tuple, create_graph), _packed(grads, was_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product. `v` has the inputs' shapes (it may
    be omitted for a single-element input). Computed by the double-vjp trick: u^T J is
    linear in u, so its gradient by u, taken along v, is J v."""
    was_tuple, xs = _leaves(inputs, "jvp")
    vs = _like(v, xs, "jvp", "v", "input")
    with enable_grad():
        out_tuple, outs = _outputs(func(*xs), "jvp")
        us = [Tensor(np.zeros(o.shape, o.dtype), requires_grad=True) for o in outs]
        grads = grad(outs, xs, us, create_graph=True, allow_unused=True)
        used = [(g, v) for g, v in zip(grads, vs) if g is not None and g.requires_grad]
        if used:
            jv = grad([g for g, _ in used], us, [v for _, v in used],
                      create_graph=create_graph, allow_unused=True)
        else:
            jv = [None] * len(us)
        jv = [_zeros_or_refuse(j, o, strict, "jvp", "output") for j, o in zip(jv, outs)]
    return _result(outs, out_tuple, create_graph), _packed(jv, out_tuple)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a function with a single-element output: the gradient of
    (gradient . v)."""
    return _second(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v): the Hessian-vector product; H is symmetric, so it is vhp's."""
    return _second(func, inputs, v, create_graph, strict, "hvp")


def _second(func, inputs, v, create_graph, strict, name):
    was_tuple, xs = _leaves(inputs, name)
    vs = _like(v, xs, name, "v", "input")
    with enable_grad():
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError(f"{name}: the function must return a tensor with a single "
                               "element")
        grads = grad(out, xs, create_graph=True, allow_unused=True)
        dot = [(g * v).sum() for g, v in zip(grads, vs) if g is not None and g.requires_grad]
        if dot:
            second = grad(sum(dot[1:], dot[0]), xs, create_graph=create_graph,
                          allow_unused=True)
        else:
            second = [None] * len(xs)
        second = [_zeros_or_refuse(s, x, strict, name, "input") for s, x in zip(second, xs)]
    return _result([out], False, create_graph), _packed(second, was_tuple)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of `func` at `inputs`: for one input and one output a tensor of shape
    output.shape + input.shape; for tuples, a tuple (per output) of tuples (per input).
    One backward pass per output element, so for small problems. `vectorize` and
    `strategy` are accepted; the rows are always computed one by one, in reverse mode."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got "
                         f"{strategy!r}")
    was_tuple, xs = _leaves(inputs, "jacobian")
    with enable_grad():
        out_tuple, outs = _outputs(func(*xs), "jacobian")
        blocks = []
        for out in outs:
            rows = [[] for _ in xs]
            flat = out.reshape(-1)
            for k in range(flat.shape[0]):
                grads = _grads([flat[k]], xs, None, create_graph, strict, "jacobian",
                               retain_graph=True)
                for row, g in zip(rows, grads):
                    row.append(g)
            blocks.append(tuple(_stack(row, out.shape, x) for row, x in zip(rows, xs)))
    if not out_tuple:
        return blocks[0] if was_tuple else blocks[0][0]
    return tuple(b if was_tuple else b[0] for b in blocks)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of `func` (a single-element output) at `inputs`: for one input a tensor
    of shape input.shape + input.shape; for a tuple, a tuple of tuples of blocks."""
    was_tuple, xs = _leaves(inputs, "hessian")

    def gradient(*ys):
        out = func(*ys)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("hessian: the function must return a tensor with a single "
                               "element")
        grads = grad(out, ys, create_graph=True, allow_unused=True)
        return tuple(_zeros_or_refuse(g, y, strict, "hessian", "input")
                     for g, y in zip(grads, ys))

    result = jacobian(gradient, tuple(xs), create_graph=create_graph, strict=strict)
    return result if was_tuple else result[0][0]


# ---------------------------------------------------------------- helpers

def _leaves(inputs, name):
    """(whether `inputs` was a tuple, fresh leaves holding the inputs' values)."""
    was_tuple = isinstance(inputs, (tuple, list))
    items = tuple(inputs) if was_tuple else (inputs,)
    for x in items:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: inputs must be tensors (or a tuple of tensors), got "
                            f"{type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: inputs must hold floating-point values, got {x.dtype}")
    return was_tuple, [Tensor(x.detach(), requires_grad=True) for x in items]


def _outputs(out, name):
    is_tuple = isinstance(out, (tuple, list))
    outs = list(out) if is_tuple else [out]
    if not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"{name}: the function must return a tensor or a tuple of tensors")
    return is_tuple, outs


def _like(v, tensors, name, what, of):
    """`v` as a list of tensors shaped like `tensors` (None: ones for single elements)."""
    if v is None:
        if any(t.numel() != 1 for t in tensors):
            raise RuntimeError(f"{name}: {what} can be omitted only when every {of} has a "
                               "single element")
        return [Tensor(np.ones(t.shape, t.dtype)) for t in tensors]
    vs = list(v) if isinstance(v, (tuple, list)) else [v]
    if len(vs) != len(tensors) or any(
            not isinstance(a, Tensor) or a.shape != t.shape for a, t in zip(vs, tensors)):
        raise RuntimeError(f"{name}: {what} must be tensors shaped like the {of}s: "
                           f"{[t.shape for t in tensors]}")
    return vs


def _grads(outs, xs, vs, create_graph, strict, name, retain_graph=None):
    grads = grad(outs, xs, vs, retain_graph=retain_graph, create_graph=create_graph,
                 allow_unused=True)
    return [_zeros_or_refuse(g, x, strict, name, "input") for g, x in zip(grads, xs)]


def _zeros_or_refuse(g, like, strict, name, what):
    if g is not None:
        return g
    if strict:
        raise RuntimeError(f"{name}: the output does not depend on an {what} (shape "
                           f"{like.shape}), and strict=True")
    return Tensor(np.zeros(like.shape, like.dtype))


def _result(outs, was_tuple, create_graph):
    outs = [o if create_graph else o.detach() for o in outs]
    return tuple(outs) if was_tuple else outs[0]


def _packed(values, was_tuple):
    return tuple(values) if was_tuple else values[0]


def _stack(rows, out_shape, x):
    """Rows of a Jacobian (one gradient per output element) as out_shape + x.shape."""
    if not rows:
        return Tensor(np.zeros(tuple(out_shape) + x.shape, x.dtype))
    stacked = apply(ops.Cat, *[r.unsqueeze(0) for r in rows], dim=0)
    return stacked.reshape(tuple(out_shape) + x.shape)
