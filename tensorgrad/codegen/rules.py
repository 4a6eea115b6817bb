"""The ops as source: each op's forward and gradient written out as a numpy expression.

`FORWARD[op](e, node, *inputs)` and `GRAD[op](e, node, i, g, out, *inputs)` return one numpy
expression (names of the arrays in, source text out). Each mirrors the op's `forward` and
`grad_*` in ops.py expression for expression, so the results are bit-identical. Rules that
need more than one statement write the extra ones with `e.let(name, expression)` (`e` is
the Emitter). Fused ops are written as their kernels' statements; unbroadcast as the same
sum the engine makes.
"""
import re

import numpy as np

from .. import ops
from ..arrays import count, is_basic_index, stretched_axes
from ..graph import rule_arguments, sent_shape


class CodegenError(NotImplementedError):
    """An op of the graph has no source form (yet) in the requested kind of code."""


def _axis(dims):
    return str(dims[0]) if len(dims) == 1 else str(tuple(dims))


def _reduced(dims, keepdim):
    """The arguments of a reduction over `dims`: `axis=0, keepdims=True`."""
    return f"axis={_axis(dims)}" + (", keepdims=True" if keepdim else "")


def _neg_safe(text):
    """A literal operand, in parentheses when negative (`(-2.0) ** x`, not `-2.0 ** x`)."""
    return f"({text})" if text.startswith("-") else text


def _expand_reduced(g, x, dims, keepdim):
    """Source of arrays.expand_reduced: the gradient of a reduction broadcast back."""
    if not keepdim and x.shape:
        g = f"np.expand_dims({g}, {_axis(dims)})"
    return f"np.broadcast_to({g}, {x.shape})"


def _meta(node, k):
    """Input k of `node` as an array of zeros that costs no memory: its shape and dtype."""
    return np.broadcast_to(np.zeros((), node.dtypes[k]), node.shapes[k])


def _max_grad(pick):
    def grad(e, node, i, g, out, x):
        dim, keepdim = node.attrs["dim"], node.attrs["keepdim"]
        array = _meta(node, 0)
        if dim is None:
            winners = e.let("winners", f"{x} == np.reshape({out}, {(1,) * array.ndim})")
            return f"{g} * {winners} / int({winners}.sum())"
        if not keepdim:
            g = f"np.expand_dims({g}, {dim})"
        spread = e.let(f"d{x}_{pick}", f"np.zeros_like({x})")
        e.line(f"np.put_along_axis({spread}, np.expand_dims({x}.{pick}(axis={dim}), {dim}), "
               f"{g}, axis={dim})")
        return spread
    return grad


def _logsumexp_forward(e, node, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    m = e.let(f"{x}_max", f"{x}.max(axis={_axis(dims)}, keepdims=True)")
    e.line(f"{m} = np.where(np.isfinite({m}), {m}, 0)")
    lse = f"np.log(np.exp({x} - {m}).sum(axis={_axis(dims)}, keepdims=True)) + {m}"
    return lse if keepdim else f"({lse}).squeeze({_axis(dims)})"


def _logsumexp_grad(e, node, i, g, out, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    array = _meta(node, 0)
    full = e.let(f"{out}_full", _expand_reduced(out, array, dims, keepdim))
    return f"{_expand_reduced(g, array, dims, keepdim)} * np.exp({x} - {full})"


def _scatter(e, node, i, g, out, x):
    index = node.attrs["index"]
    array = _meta(node, 0)
    spread = e.let(f"d{x}_{'scatter'}", f"np.zeros({array.shape}, np.{array.dtype})")
    if is_basic_index(index):
        e.line(f"{spread}[{e.index(index)}] = {g}")
    else:
        e.line(f"np.add.at({spread}, {e.index(index, as_value=True)}, {g})")
    return spread


def _setitem_grad(e, node, i, g, out, x, value):
    index = e.index(node.attrs["index"])
    if i == 1:
        return f"{g}[{index}]"
    kept = e.let(f"{g}_kept", f"{g}.copy()")
    e.line(f"{kept}[{index}] = 0")
    return kept


def _matmul_grad(e, node, i, g, out, a, b):
    na, nb = (len(shape) for shape in node.shapes)
    if i == 0:
        if na == 1 and nb == 1:
            return f"{g} * {b}"
        if nb == 1:
            return f"{g}[..., None] * {b}"
        if na == 1:
            return f"({g}[..., None, :] @ {b}.swapaxes(-1, -2))[..., 0, :]"
        return f"{g} @ {b}.T" if nb == 2 else f"{g} @ {b}.swapaxes(-1, -2)"
    if na == 1 and nb == 1:
        return f"{g} * {a}"
    if na == 1:
        return f"{a}[:, None] * {g}[..., None, :]"
    if nb == 1:
        return f"({a}.swapaxes(-1, -2) @ {g}[..., None])[..., 0]"
    return f"{a}.T @ {g}" if na == 2 else f"{a}.swapaxes(-1, -2) @ {g}"


def _cat_grad(e, node, i, g, out, *xs):
    dim = node.attrs["dim"]
    start = sum(shape[dim] for shape in node.shapes[:i])
    where = [":"] * len(node.out_shape)
    where[dim] = f"{start}:{start + node.shapes[i][dim]}"
    return f"{g}[{', '.join(where)}]"


def _var_forward(e, node, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    n, correction = _count(node), node.attrs["correction"]
    diff = e.let(f"{x}_diff", f"{x} - {x}.sum(axis={_axis(dims)}, keepdims=True) / {n}")
    e.saved[node] = {"diff": diff}              # the gradient reuses it, as the op does
    if n - correction <= 0:
        return f"np.full({node.out_shape}, np.nan, np.{node.out_dtype})"
    return f"({diff} * {diff}).sum({_reduced(dims, keepdim)}) / {n - correction}"


def _var_grad(e, node, i, g, out, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    n, correction = _count(node), node.attrs["correction"]
    scale = f"({2 / (n - correction) if n > correction else 'np.nan'} * {g})"
    if not keepdim and node.shapes[0]:
        scale = f"np.expand_dims({scale}, {_axis(dims)})"
    return f"{e.saved[node]['diff']} * {scale}"


def _std_grad(e, node, i, g, out, x):
    g = e.let(f"{g}_var", f"np.where({out} == 0, 0, {g} / (2 * {out}))")
    return _var_grad(e, node, i, g, out, x)


def _pow_grad(e, node, i, g, out, a, b):
    """The op's where(...) conventions, left out when a literal operand makes them moot."""
    base, exponent = node.inputs          # kept: read by the rules, or constants
    if i == 0:
        value = f"{g} * {b} * {_neg_safe(a)} ** {e.minus_one(b, exponent)}"
        moot = exponent.ndim == 0 and b == e.const(exponent) and exponent != 0
        return value if moot else f"np.where({b} == 0, 0, {value})"
    value = f"{g} * {out} * np.log({a})"
    moot = base.ndim == 0 and a == e.const(base) and base != 0
    return value if moot else f"np.where(({a} == 0) & ({b} >= 0), 0, {value})"


def _count(node):
    """How many elements of its input a reduction combines into each output element."""
    return count(node.shapes[0], node.attrs["dims"])


def _sigmoid_forward(e, node, x):
    z = e.let(f"{x}_z", f"np.exp(-np.abs({x}))")
    return f"np.where({x} >= 0, 1 / (1 + {z}), {z} / (1 + {z}))"


FORWARD = {
    ops.Neg: lambda e, n, x: f"-{x}",
    ops.Exp: lambda e, n, x: f"np.exp({x})",
    ops.Log: lambda e, n, x: f"np.log({x})",
    ops.Tanh: lambda e, n, x: f"np.tanh({x})",
    ops.Sqrt: lambda e, n, x: f"np.sqrt({x})",
    ops.Abs: lambda e, n, x: f"np.abs({x})",
    ops.Sigmoid: _sigmoid_forward,
    ops.Relu: lambda e, n, x: f"np.maximum({x}, 0)",
    ops.Cast: lambda e, n, x: f"{x}.astype(np.{np.dtype(n.attrs['dtype'])})",
    ops.Copy: lambda e, n, x: f"{x}.copy()",
    ops.Add: lambda e, n, a, b: f"{a} + {b}",
    ops.Sub: lambda e, n, a, b: f"{a} - {b}",
    ops.Mul: lambda e, n, a, b: f"{a} * {b}",
    ops.Div: lambda e, n, a, b: f"{a} / {b}",
    ops.Pow: lambda e, n, a, b: f"{_neg_safe(a)} ** {b}",
    ops.Sum: lambda e, n, x: f"{x}.sum({_reduced(n.attrs['dims'], n.attrs['keepdim'])})",
    ops.Mean: lambda e, n, x: f"{x}.sum({_reduced(n.attrs['dims'], n.attrs['keepdim'])}) / {_count(n)}",
    ops.Var: _var_forward,
    ops.Std: lambda e, n, x: f"np.sqrt({_var_forward(e, n, x)})",
    ops.Max: lambda e, n, x: f"{x}.max(axis={n.attrs['dim']}, keepdims={n.attrs['keepdim']})",
    ops.Min: lambda e, n, x: f"{x}.min(axis={n.attrs['dim']}, keepdims={n.attrs['keepdim']})",
    ops.LogSumExp: _logsumexp_forward,
    ops.Reshape: lambda e, n, x: f"{x}.reshape({n.attrs['shape']})",
    ops.Permute: lambda e, n, x: f"{x}.transpose({n.attrs['dims']})",
    ops.Expand: lambda e, n, x: f"np.broadcast_to({x}, {n.attrs['shape']})",
    ops.Cat: lambda e, n, *xs: f"np.concatenate([{', '.join(xs)}], axis={n.attrs['dim']})",
    ops.GetItem: lambda e, n, x: f"{x}[{e.index(n.attrs['index'])}]",
    ops.MatMul: lambda e, n, a, b: f"{a} @ {b}",
}

GRAD = {
    ops.Neg: lambda e, n, i, g, out, x: f"-{g}",
    ops.Exp: lambda e, n, i, g, out, x: f"{g} * {out}",
    ops.Log: lambda e, n, i, g, out, x: f"{g} / {x}",
    ops.Tanh: lambda e, n, i, g, out, x: f"{g} * (1 - {out} * {out})",
    ops.Sqrt: lambda e, n, i, g, out, x: f"{g} / (2 * {out})",
    ops.Abs: lambda e, n, i, g, out, x: f"{g} * np.sign({x})",
    ops.Sigmoid: lambda e, n, i, g, out, x: f"{g} * {out} * (1 - {out})",
    ops.Relu: lambda e, n, i, g, out, x: f"np.where({x} > 0, {g}, 0)",
    ops.Cast: lambda e, n, i, g, out, x: f"{g}.astype(np.{n.dtypes[0]})",
    ops.Copy: lambda e, n, i, g, out, x: g,
    ops.Add: lambda e, n, i, g, out, a, b: g,
    ops.Sub: lambda e, n, i, g, out, a, b: g if i == 0 else f"-{g}",
    ops.Mul: lambda e, n, i, g, out, a, b: f"{g} * {(b, a)[i]}",
    ops.Div: lambda e, n, i, g, out, a, b: f"{g} / {b}" if i == 0 else f"-{g} * ({out} / {b})",
    ops.Pow: _pow_grad,
    ops.Sum: lambda e, n, i, g, out, x: _expand_reduced(g, _meta(n, 0), n.attrs["dims"],
                                                        n.attrs["keepdim"]),
    ops.Mean: lambda e, n, i, g, out, x: _expand_reduced(
        f"{g} / {_count(n)}", _meta(n, 0), n.attrs["dims"], n.attrs["keepdim"]),
    ops.Var: _var_grad,
    ops.Std: _std_grad,
    ops.Max: _max_grad("argmax"),
    ops.Min: _max_grad("argmin"),
    ops.LogSumExp: _logsumexp_grad,
    ops.Reshape: lambda e, n, i, g, out, x: f"{g}.reshape({n.shapes[0]})",
    ops.Permute: lambda e, n, i, g, out, x: (
        f"{g}.transpose({tuple(int(d) for d in np.argsort(n.attrs['dims']))})"),
    ops.Expand: lambda e, n, i, g, out, x: g,
    ops.Cat: _cat_grad,
    ops.GetItem: _scatter,
    ops.SetItem: _setitem_grad,
    ops.MatMul: _matmul_grad,
}
FORWARD[ops.SetItem] = None       # a copy then an assignment: written by Emitter.forward


def forward_source(e, node, inputs_src):
    rule = FORWARD.get(node.op, ...)
    if rule is ... and hasattr(node.op, "fused"):
        expr = _fused_forward(e, node, inputs_src)
        if expr is not None:
            return expr
    if rule is ...:
        op, attrs = e.generic(node, "the forward")
        return f"np.asarray({op}.forward({', '.join(inputs_src)}, **{attrs}))"
    if rule is None:
        return None
    return rule(e, node, *inputs_src)


def grad_source(e, node, i, g, out, inputs_src):
    rule = GRAD.get(node.op)
    if rule is None and node in e.saved:
        return _fused_grad(e, node, i, g, out, inputs_src)
    if rule is None:
        op, attrs = e.generic(node, "the gradient")
        return f"{op}.grads[{i}]({', '.join([g] + _rule_arguments(e, node, i, out, inputs_src))})"
    return rule(e, node, i, g, out, *inputs_src)


def _rule_arguments(e, node, i, out, inputs_src):
    """Source of the arguments of input i's gradient rule (graph.rule_arguments), for an op
    called through the op table: the names of arrays, other values as constants."""
    if node.op.extras or node.op.variadic:
        raise CodegenError(f"codegen: op '{node.op.name}' cannot be called from generated "
                           "code: it computes values on the side")
    names = dict(zip(node.op.inputs, inputs_src)) | {"out": out}
    values = rule_arguments(node, i, [None] * len(inputs_src), None, {})
    return [names.get(n) or e.globals_name(v, n) for n, v in zip(node.op.reads[i], values)]


# A fused op (tensorgrad.symbolic) is written out as its kernels' statements, the derived
# formulas, followed by what its op-table wrapper does to their result (kernels.py).

def _fused_forward(e, node, inputs_src):
    fused, call, dtype = node.op.fused, node.attrs["call"], node.dtypes[0]
    saved = {}
    try:
        lines, result, helpers = fused.inline("forward", dtype, ["None", "None", *inputs_src],
                                              call, saved, e.fresh)
    except KeyError:                            # it calls something only the op table has
        return None
    e.saved[node] = saved
    _emit_inlined(e, lines, helpers)
    inputs = [_meta(node, k) for k in range(len(node.shapes))]
    value = fused.kernel("forward", dtype)(None, None, *inputs, **call.kwargs, saved={})
    expr = result if _is_array(value, dtype) else f"np.asarray({result}, np.{dtype})"
    if np.shape(value) != call.kept:
        expr = f"np.broadcast_to({expr}, {call.kept})"
    return expr if call.kept == call.shape else f"{expr}.reshape({call.shape})"


def _fused_grad(e, node, i, g, out, inputs_src):
    fused, call, x = node.op.fused, node.attrs["call"], _meta(node, i)
    if node.out_shape != call.kept:
        g, out = f"{g}.reshape({call.kept})", f"{out}.reshape({call.kept})"
    which = fused.definition.tensor_names[i]
    lines, result, helpers = fused.inline(which, x.dtype, [g, out, *inputs_src], call,
                                          e.saved[node], e.fresh)
    _emit_inlined(e, lines, helpers)
    zeros = np.zeros(call.kept, node.out_dtype)
    value = fused.kernel(which, x.dtype)(zeros, zeros, *node.inputs, **call.kwargs,
                                         saved=node.extras["steps"])
    expr = result if _is_array(value, x.dtype) else f"np.asarray({result}, np.{x.dtype})"
    full = np.broadcast_shapes(np.shape(value), x.shape)
    return expr if full == np.shape(value) else f"np.broadcast_to({expr}, {full})"


def _is_array(value, dtype):
    """Whether the op-table wrapper's np.asarray(value, dtype) would change nothing."""
    return type(value) is np.ndarray and value.dtype == dtype


def _emit_inlined(e, lines, helpers):
    for line in lines:
        e.line(line)
    e.helpers.update(helpers)


def grad_shape(node, i):
    """The shape of input i's gradient before unbroadcast (graph.sent_shape)."""
    return sent_shape(node, i)


def unbroadcast_source(expr, shape, target):
    """Source of arrays.unbroadcast(expr, target) for a gradient of `shape`: the same sum."""
    shape, target = tuple(shape), tuple(target)
    if shape == target:
        return expr
    axes = stretched_axes(shape, target)
    if not axes:                                # only leading axes of size 1 to drop
        return f"{_operand(expr)}.reshape({target})"
    negated = re.fullmatch(r"-(\w+)", expr)            # -(g.sum()) is (-g).sum(), exactly
    expr = negated[1] if negated else _operand(expr)
    summed = f"{'-' if negated else ''}{expr}.sum(axis={_axis(axes)}, keepdims=True)"
    if len(shape) == len(target):
        return summed
    return f"{summed}.reshape({target})"


def _operand(expr):
    """`expr`, in parentheses unless it is a name (or attribute) a method can follow."""
    return expr if re.fullmatch(r"[\w.]+", expr) else f"({expr})"


def unstretched(expr, shape):
    """A gradient added to one of the full `shape`, without np.broadcast_to: the addition
    broadcasts by itself, to the same values."""
    prefix, suffix = "np.broadcast_to(", f", {tuple(shape)})"
    if expr.startswith(prefix) and expr.endswith(suffix):
        return expr[len(prefix):-len(suffix)]
    return expr
