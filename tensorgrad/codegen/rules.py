"""The ops as source: each op's forward and gradient written out as numpy statements.

The op table is the source: `forward_source` and `grad_source` run the op's own `forward`
and `grad_*` on stand-ins (tensorgrad.source) that write down what is computed, so the
code is the engine's computation, expression for expression, and bit-identical with it.
A few rules write into arrays (the scatter-add of an index's gradient, setitem, the
routing of max/min) and keep an explicit source form here (`SPECIAL`); fused ops are
written as their kernels' statements; unbroadcast as the same sum the engine makes.
"""
import ast
import math
import re

import numpy as np

from .. import ops
from ..arrays import is_basic_index, stretched_axes
from ..graph import placeholder, rule_arguments
from ..source import NotWritable, Writer, write


class CodegenError(NotImplementedError):
    """An op of the graph has no source form (yet) in the requested kind of code."""


def _axis(dims):
    return str(dims[0]) if len(dims) == 1 else str(tuple(dims))


def _meta(node, k):
    """Input k of `node` as a placeholder: its shape and dtype."""
    return placeholder(node.shapes[k], node.dtypes[k])


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


def _scatter(e, node, i, g, out, x):
    index = node.attrs["index"]
    array = _meta(node, 0)
    spread = e.let(f"d{x}_{'scatter'}", f"np.zeros({array.shape}, np.{array.dtype})")
    if is_basic_index(index):
        e.line(f"{spread}[{e.index(index)}] = {g}")
    elif not e.standalone and _rows_of(index, array):
        # an embedding's gradient, C[Xb]: numpy adds into a flat array much faster than row
        # by row (6 us against 11 us for the lecture's (32, 3) rows of 10), element by
        # element in the same order, so to the same bits. Negative rows wrap the same way.
        n = math.prod(array.shape[1:])
        e.line(f"np.add.at({spread}.reshape(-1), ({e.index(index, as_value=True)}"
               f".reshape(-1, 1) * {n} + np.arange({n})).reshape(-1), {g}.reshape(-1))")
    else:
        e.line(f"np.add.at({spread}, {e.index(index, as_value=True)}, {g})")
    return spread


def _rows_of(index, array):
    """Whether `index` picks whole rows of `array` (one array of int64, which indexes its
    first axis: narrower integers could overflow in the flat index) of more than one
    element."""
    return (isinstance(index, np.ndarray) and index.dtype == np.int64 and array.ndim > 1
            and math.prod(array.shape[1:]) > 1)


def _setitem_grad(e, node, i, g, out, x, value):
    index = e.index(node.attrs["index"])
    if i == 1:
        return f"{g}[{index}]"
    kept = e.let(f"{g}_kept", f"{g}.copy()")
    e.line(f"{kept}[{index}] = 0")
    return kept


# ---------------------------------------------------------------- the op table's own rules

def _writer(e):
    """A Writer whose constant arrays and indices become the emitter's names and source."""
    w = Writer(name_of=e.const)
    w.index = lambda index: ast.parse(f"x[{e.index(index)}]", mode="eval").body.slice
    return w


def _stand_ins(e, w, node, inputs_src):
    """A stand-in for each input: its source in the code, or, for a constant the code writes
    as a literal, its value (known while writing: arithmetic on it is done at once, in its
    dtype, as the engine does it)."""
    stand_ins = []
    for k, (source, array) in enumerate(zip(inputs_src, node.inputs)):
        if node.parents[k] is None and np.ndim(array) == 0 and _is_literal(source):
            stand_ins.append(w.constant(np.asarray(array)[()]))
        else:
            stand_ins.append(_named(w, source, node.shapes[k], node.dtypes[k]))
    return stand_ins


def _is_literal(source):
    node = ast.parse(source, mode="eval").body
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) or ast.unparse(node) in ("np.inf", "np.nan")


def _emit(e, results):
    """Write `results` ({key: stand-in}) as statements; return {key: expression}."""
    statements, texts = write(results, e.fresh)
    for statement in statements:
        e.line(statement)
    return texts


def _generic_forward(e, node, inputs_src):
    w = _writer(e)
    result = node.op.forward(*_stand_ins(e, w, node, inputs_src), **node.attrs)
    if not node.op.extras:
        return _emit(e, {"out": result})["out"]
    out, *extras = result
    texts = _emit(e, {"out": out} | dict(zip(node.op.extras, extras)))
    e.saved[node] = {k: e.let(f"{node.name or 't'}_{k}", texts[k]) for k in node.op.extras}
    return texts["out"]


def _generic_grad(e, node, i, g, out, inputs_src):
    w = _writer(e)
    stand = lambda name, shape, dtype: _named(w, name, shape, dtype)      # noqa: E731
    args = rule_arguments(node, i, _stand_ins(e, w, node, inputs_src),
                          stand(out, node.out_shape, node.out_dtype),
                          {k: stand(v, None, None) for k, v in e.saved.get(node, {}).items()})
    rule = node.op.grads[0 if node.op.variadic else i]
    return _emit(e, {"g": rule(stand(g, node.out_shape, node.out_dtype), *args)})["g"]


def _named(w, source, shape, dtype):
    stand = w.array("_", shape, dtype)
    stand.node = ast.parse(source, mode="eval").body
    return stand


# Rules that write into arrays, and so have no stand-in form: written out by hand, each
# mirroring its op's function in ops.py statement for statement.
SPECIAL_GRAD = {
    ops.Max: _max_grad("argmax"),
    ops.Min: _max_grad("argmin"),
    ops.GetItem: _scatter,
    ops.SetItem: _setitem_grad,
}


def forward_source(e, node, inputs_src):
    """The source of `node`'s forward (None for setitem: Emitter writes its copy and
    assignment); statements it needs are written with `e`."""
    if node.op is ops.SetItem:
        return None
    if hasattr(node.op, "fused"):
        expr = _fused_forward(e, node, inputs_src)
        if expr is not None:
            return expr
        op, attrs = e.generic(node, "the forward")
        return f"np.asarray({op}.forward({', '.join(inputs_src)}, **{attrs}))"
    try:
        return _generic_forward(e, node, inputs_src)
    except NotWritable:
        op, attrs = e.generic(node, "the forward")
        return f"np.asarray({op}.forward({', '.join(inputs_src)}, **{attrs}))"


def grad_source(e, node, i, g, out, inputs_src):
    """The source of input i's gradient from `node`, before unbroadcast."""
    if node.op in SPECIAL_GRAD:
        return SPECIAL_GRAD[node.op](e, node, i, g, out, *inputs_src)
    if hasattr(node.op, "fused") and node in e.saved:
        return _fused_grad(e, node, i, g, out, inputs_src)
    try:
        return _generic_grad(e, node, i, g, out, inputs_src)
    except NotWritable:
        op, attrs = e.generic(node, "the gradient")
        return f"{op}.grads[{i}]({', '.join([g] + _rule_arguments(e, node, i, out, inputs_src))})"


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


def unbroadcast_source(expr, shape, target):
    """Source of arrays.unbroadcast(expr, target) for a gradient of `shape`: the same sum."""
    shape, target = tuple(shape), tuple(target)
    if shape == target:
        return expr
    axes, lead = stretched_axes(shape, target), len(shape) - len(target)
    if not axes:                                # only leading axes of size 1 to drop
        return f"{_operand(expr)}.reshape({target})"
    negated = re.fullmatch(r"-(\w+)", expr)            # -(g.sum()) is (-g).sum(), exactly
    expr = negated[1] if negated else _operand(expr)
    if axes == tuple(range(lead)):      # the sum drops them: no reshape, and a result that
        return f"{'-' if negated else ''}{expr}.sum(axis={_axis(axes)})"   # owns its memory
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
