"""Generated code: a recorded graph's forward and backward pass as straight-line numpy.

`generate(loss)` walks the graph that ends in `loss` (iteratively, in topological order)
and writes one statement per op: the forward in graph order, then the backward in reverse,
one gradient per intermediate, named after the tensors (`dlogprobs`, `dcounts_sum_inv`).
Every gradient is the op's own grad rule from `ops.py` written out as source, and wherever
the engine would unbroadcast, the code says so with an explicit `.sum(...)`. The result
is the lecture's exercise 1, written by the engine; it runs on plain numpy arrays and
gives the engine's gradients bit for bit.

`compile(step)` traces a function that returns a loss once, generates its code, and runs
that on later calls with inputs of the same shapes and dtypes (re-tracing for new ones):
the same losses and gradients as eager, without the per-op cost of building a graph.
"""
import ast
import builtins
import functools
import inspect
import keyword
import re

import numpy as np

from . import ops
from .autograd import _deliver, derived_constants, topological_order, traced_effects, tracing
from .tensor import Tensor


class CodegenError(NotImplementedError):
    """An op of the graph has no source form (yet) in the requested kind of code."""


# ---------------------------------------------------------------- the ops as source
# FORWARD[op](e, node, *inputs) and GRAD[op](e, node, i, g, out, *inputs) return one numpy
# expression (names of the arrays in, source text out). Each mirrors the op's `forward` and
# `grad_*` in ops.py expression for expression, so the results are bit-identical. Rules
# that need more than one statement write the extra ones with `e.let(name, expression)`.

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


def _max_grad(pick):
    def grad(e, node, i, g, out, x):
        dim, keepdim = node.attrs["dim"], node.attrs["keepdim"]
        array = node.inputs[0]
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
    array = node.inputs[0]
    full = e.let(f"{out}_full", _expand_reduced(out, array, dims, keepdim))
    return f"{_expand_reduced(g, array, dims, keepdim)} * np.exp({x} - {full})"


def _scatter(e, node, i, g, out, x):
    index = node.attrs["index"]
    array = node.inputs[0]
    spread = e.let(f"d{x}_{'scatter'}", f"np.zeros({array.shape}, np.{array.dtype})")
    if _is_basic(index):
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
    na, nb = (x.ndim for x in node.inputs)
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
    start = sum(x.shape[dim] for x in node.inputs[:i])
    where = [":"] * node.out.ndim
    where[dim] = f"{start}:{start + node.inputs[i].shape[dim]}"
    return f"{g}[{', '.join(where)}]"


def _var_forward(e, node, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    n, correction = _count(node), node.attrs["correction"]
    if n - correction <= 0:
        return f"np.full({node.out.shape}, np.nan, np.{node.out.dtype})"
    diff = e.let(f"{x}_diff", f"{x} - {x}.sum(axis={_axis(dims)}, keepdims=True) / {n}")
    return f"({diff} * {diff}).sum({_reduced(dims, keepdim)}) / {n - correction}"


def _var_grad(e, node, i, g, out, x):
    dims, keepdim = node.attrs["dims"], node.attrs["keepdim"]
    n, correction = _count(node), node.attrs["correction"]
    scale = f"({2 / (n - correction) if n > correction else 'np.nan'} * {g})"
    if not keepdim and node.inputs[0].ndim:
        scale = f"np.expand_dims({scale}, {_axis(dims)})"
    return f"({x} - {x}.sum(axis={_axis(dims)}, keepdims=True) / {n}) * {scale}"


def _count(node):
    """How many elements of its input a reduction combines into each output element."""
    x = node.inputs[0]
    return int(np.prod([x.shape[d] for d in node.attrs["dims"]]))


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
    ops.Relu: lambda e, n, i, g, out, x: f"{g} * ({x} > 0)",
    ops.Cast: lambda e, n, i, g, out, x: f"{g}.astype(np.{n.inputs[0].dtype})",
    ops.Copy: lambda e, n, i, g, out, x: g,
    ops.Add: lambda e, n, i, g, out, a, b: g,
    ops.Sub: lambda e, n, i, g, out, a, b: g if i == 0 else f"-{g}",
    ops.Mul: lambda e, n, i, g, out, a, b: f"{g} * {(b, a)[i]}",
    ops.Div: lambda e, n, i, g, out, a, b: f"{g} / {b}" if i == 0 else f"-{g} * {a} / ({b} * {b})",
    ops.Pow: lambda e, n, i, g, out, a, b: (
        f"{g} * {b} * {_neg_safe(a)} ** {e.minus_one(b, n.inputs[1])}" if i == 0
        else f"{g} * {out} * np.log({a})"),
    ops.Sum: lambda e, n, i, g, out, x: _expand_reduced(g, n.inputs[0], n.attrs["dims"],
                                                        n.attrs["keepdim"]),
    ops.Mean: lambda e, n, i, g, out, x: _expand_reduced(
        f"{g} / {_count(n)}", n.inputs[0], n.attrs["dims"], n.attrs["keepdim"]),
    ops.Var: _var_grad,
    ops.Max: _max_grad("argmax"),
    ops.Min: _max_grad("argmin"),
    ops.LogSumExp: _logsumexp_grad,
    ops.Reshape: lambda e, n, i, g, out, x: f"{g}.reshape({n.inputs[0].shape})",
    ops.Permute: lambda e, n, i, g, out, x: (
        f"{g}.transpose({tuple(int(d) for d in np.argsort(n.attrs['dims']))})"),
    ops.Expand: lambda e, n, i, g, out, x: g,
    ops.Cat: _cat_grad,
    ops.GetItem: _scatter,
    ops.SetItem: _setitem_grad,
    ops.MatMul: _matmul_grad,
}
FORWARD[ops.SetItem] = None       # a copy then an assignment: written by Emitter.forward


def _is_basic(index):
    from .arrays import is_basic_index
    return is_basic_index(index)


# ---------------------------------------------------------------- writing a program

_ALLOCATE = {"zeros", "ones", "zeros_like", "ones_like", "empty", "full", "copy", "array"}


class _SumForm(ast.NodeTransformer):
    """Sums written `x.sum(axis=..., keepdims=...)` in standalone code, which is read, and
    `np.add.reduce(x, axis=..., keepdims=...)` in compiled code, which is run: the same
    reduction, without numpy's Python wrapper around it."""

    def __init__(self, readable):
        self.readable = readable

    def visit_Call(self, node):
        self.generic_visit(node)
        keywords = {k.arg for k in node.keywords}
        if not keywords <= {"axis", "keepdims"}:
            return node
        f = node.func
        if (self.readable and ast.unparse(f) == "np.add.reduce" and len(node.args) == 1):
            return ast.Call(ast.Attribute(node.args[0], "sum", ast.Load()), [], node.keywords)
        if not self.readable and isinstance(f, ast.Attribute) and f.attr == "sum" \
                and not node.args and ast.unparse(f.value) != "np":
            return ast.Call(ast.parse("np.add.reduce", mode="eval").body, [f.value],
                            node.keywords)
        return node

def _identifier(name, fallback):
    """`name` made a valid Python identifier ('model.hidden.weight' -> model_hidden_weight)."""
    text = re.sub(r"\W", "_", name or "") or fallback
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "_" + text
    return text


class Emitter:
    """Collects the statements of one generated function and the names it uses."""

    def __init__(self, inputs, standalone):
        self.lines, self.used = [], set()
        self.standalone = standalone
        self.args = []              # (argument name, array) of constant inputs
        self.arg_of = {}            # id(array) -> argument name
        self.globals = {}           # name -> object, for ops called through the op table
        for name, value in inputs.items():
            array = value._data if isinstance(value, Tensor) else value
            self.arg_of[id(array)] = self.fresh(_identifier(name, "x"))
            self.args.append((self.arg_of[id(array)], array))
        self.derived = {}           # id(array) -> its name, for constants rebuilt in the code
        self.effects = []           # tensors the code updates in place (running statistics)
        self.saved = {}             # fused node -> {step: name}, what its forward computed
        self.helpers = {}           # name -> function the inlined fused kernels call
        self.known = {}             # ast.dump of an expression -> (its name, names it reads)
        self.aliases = set()        # names given to a value another name already holds

    def fresh(self, base):
        name, k = base, 1
        while name in self.used or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def line(self, text, shape=None):
        text = self.reuse(text)
        self.lines.append(text if shape is None else f"{text:<48s}  # {shape}")

    def reuse(self, text):
        """`text` with every expression computed before (the same operation on the same
        arrays) replaced by the name that holds it: the mean a variance needs is the mean
        already computed. The value is the same, bit for bit; the work is done once."""
        body = ast.parse(text).body
        if not body:
            return text                                 # a blank line or a comment
        statement = body[0]
        before = ast.dump(statement)
        statement = _SumForm(self.standalone).visit(statement)
        if ast.dump(statement) != before:
            text = ast.unparse(statement)
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            changed = set()                             # x[i] = v, x *= v, del x, add.at(x)
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    changed.add(node.id)
                elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0],
                                                                             ast.Name):
                    changed.add(node.args[0].id)
                elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                    changed.add(node.value.id)
            if changed & self.aliases and not isinstance(statement, ast.Delete):
                raise AssertionError(f"codegen: '{text}' would change a shared array")
            for changed_name in changed:
                self.forget(changed_name)
            return text
        name, value = statement.targets[0].id, statement.value
        known = self.known

        class Replace(ast.NodeTransformer):
            def visit(self, node):
                node = self.generic_visit(node)
                found = known.get(ast.dump(node))
                return ast.Name(found[0], ast.Load()) if found else node

        before = ast.dump(value)
        new = Replace().visit(value)                    # (changes `value` in place)
        if ast.dump(new) != before:
            text = f"{name} = {ast.unparse(new)}"
            if isinstance(new, ast.Name):
                self.aliases.add(name)
        self.forget(name)
        used = {n.id for n in ast.walk(new) if isinstance(n, ast.Name)}
        fresh_array = any(isinstance(n, ast.Call) and getattr(n.func, "attr", None) in _ALLOCATE
                          for n in ast.walk(new))
        if not isinstance(new, (ast.Name, ast.Constant)) and not fresh_array and name not in used:
            self.known[ast.dump(new)] = (name, used)
        return text

    def forget(self, name):
        """`name` is assigned again, changed in place or deleted: reuse nothing through it."""
        self.known = {k: v for k, v in self.known.items() if v[0] != name and name not in v[1]}

    def let(self, base, expr):
        name = self.fresh(base)
        self.line(f"{name} = {expr}")
        return name

    # ------------------------------------------------------------ constants

    def const(self, array, hint="const"):
        """Source for a constant array: a literal, `np.arange(n)`, or a function argument."""
        array = np.asarray(array)
        if id(array) in self.arg_of:
            return self.arg_of[id(array)]
        if id(array) in self.derived:
            return self.derived[id(array)]
        if array.ndim == 0:
            value = array.item()
            if isinstance(value, float) and not np.isfinite(value):
                return "np.nan" if np.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
            return str(array.dtype.type(value)) if isinstance(value, float) else repr(value)
        if (array.ndim == 1 and array.dtype.kind in "iu"
                and np.array_equal(array, np.arange(len(array)))):
            return f"np.arange({len(array)})"
        recipe = derived_constants.get(id(array))
        if recipe is not None and recipe[0]() is array:
            return self._rebuild(array, recipe)
        name = self.fresh(_identifier(hint, "const"))
        self.arg_of[id(array)] = name
        self.args.append((name, array))
        return name

    def _rebuild(self, array, recipe):
        """A constant computed from other arrays (a one-hot of the targets): computed again."""
        _, kind, sources = recipe
        if kind == "one_hot":
            target, = sources
            name = self.fresh("one_hot")
            self.derived[id(array)] = name
            self.line(f"{name} = np.zeros({array.shape}, np.{array.dtype})", array.shape)
            self.line(f"{name}[np.arange({len(target)}), {self.const(target, 'target')}] = 1")
            return name
        raise CodegenError(f"codegen: no recipe for a constant made by {kind!r}")

    def index(self, index, as_value=False):
        """Source for a numpy index: ints, slices, None, ..., integer and boolean arrays; as
        a value (a function's argument) rather than inside brackets with `as_value`."""
        items = index if isinstance(index, tuple) else (index,)
        parts = []
        for item in items:
            if item is None:
                parts.append("None")
            elif item is Ellipsis:
                parts.append("...")
            elif isinstance(item, slice):
                parts.append(":".join("" if v is None else str(v)
                                      for v in (item.start, item.stop, item.step)).rstrip(":")
                             or ":")
            elif isinstance(item, (int, np.integer)):
                parts.append(str(int(item)))
            else:
                parts.append(self.const(item, "index"))
        text = parts[0] + "," if isinstance(index, tuple) and len(parts) == 1 else ", ".join(parts)
        return f"({text})" if as_value and isinstance(index, tuple) else text

    def minus_one(self, b, array):
        """`b - 1` for a pow's gradient: folded to one literal (computed in b's dtype, as the
        engine does) when b is a number."""
        if array.ndim == 0 and b == self.const(array):
            return self.const(np.asarray(array - 1))
        return f"({b} - 1)"

    # ------------------------------------------------------------ ops without a source form

    def generic(self, node, what):
        """Call the op's own function (fused ops), or refuse in standalone code."""
        name = node.op.name
        if self.standalone:
            raise CodegenError(
                f"codegen: op '{name}' has no source form for standalone code yet; "
                f"{what} of '{name}' cannot be written as plain numpy (compile() can still "
                "run it, through the op table)")
        op = self.globals_name(node.op, _identifier(name, "op"))
        attrs = self.globals_name(node.attrs, f"{op}_attrs")
        return op, attrs

    def globals_name(self, value, base):
        for key, v in self.globals.items():
            if v is value:
                return key
        name = self.fresh("_" + base.lstrip("_"))
        self.globals[name] = value
        return name


class Program:
    """Generated source and the function made from it.

    `function(*arrays)` takes the leaves' arrays (`leaves`, the tensors that require grad)
    then the constant inputs (`args`) and returns the loss followed by one gradient per
    leaf. `source` is the text; `globals` what it needs besides numpy (empty for
    standalone code).
    """

    def __init__(self, source, fname, leaves, leaf_names, args, globals_):
        self.source, self.fname = source, fname
        self.leaves, self.leaf_names, self.args, self.globals = leaves, leaf_names, args, globals_
        namespace = {"np": np, **globals_}
        exec(builtins.compile(source, f"<tensorgrad.codegen {fname}>", "exec"), namespace)
        self.function = namespace[fname]

    def __str__(self):
        return self.source

    def __call__(self, *arrays):
        return self.function(*arrays)


def generate(loss, inputs=None, fname="forward_backward", standalone=True):
    """The forward and backward pass of the graph ending in `loss`, as a Program.

    `loss` is a tensor with a recorded graph (a single element: its gradient starts at 1).
    `inputs` names the constant arrays the graph reads, such as the batch's indices:
    `{"Xb": Xb, "Yb": Yb}` (tensors or arrays, matched by identity); others become
    arguments named `const`, `index`, ... Tensors are named by their `.name`
    (`tensorgrad.viz.name_tensors(locals())` names them all), unnamed ones `t1`, `t2`.
    With `standalone` (the default) the code needs only numpy, and an op with no source
    form raises CodegenError naming it; otherwise such ops are called through the op table.
    """
    root = loss._node
    if root is None or root.op is None:
        raise ValueError("generate: the loss has no recorded graph (does anything it is "
                         "computed from require grad?)")
    e = Emitter(inputs or {}, standalone)
    order = topological_order(root)
    var = {}
    leaves = []                             # in the order the forward first reads them
    for node in order:
        leaves += [p for p in node.parents if p is not None and p.op is None and p not in leaves]
    leaves += [n for n in order if n.op is None and n not in leaves]
    leaf_names = [e.fresh(_identifier(n.name, f"p{k}")) for k, n in enumerate(leaves, 1)]
    var.update(zip(leaves, leaf_names))

    e.line("# forward pass")
    count = 0
    for node in order:
        if node.op is None:
            continue
        count += 1
        base = _identifier(node.name, f"t{count}") if node.name else f"t{count}"
        inputs_src = [var[p] if p is not None else e.const(a)
                      for p, a in zip(node.parents, node.inputs)]
        expr = _forward_source(e, node, inputs_src)
        if expr is not None and re.fullmatch(r"\w+", expr) and e.lines[-1].startswith(
                f"{expr} = "):                  # a fused op's last statement made it
            var[node] = expr
            e.lines[-1] = f"{e.lines[-1]:<48s}  # {node.out.shape}"
            continue
        name = e.fresh(base)
        var[node] = name
        if expr is not None:
            e.line(f"{name} = {expr}", node.out.shape)
        else:                                   # setitem: a copy, then the assignment
            e.line(f"{name} = {inputs_src[0]}.copy()", node.out.shape)
            e.line(f"{name}[{e.index(node.attrs['index'])}] = {inputs_src[1]}")

        for function, array, arguments in traced_effects:
            if array is node.out:
                _effect(e, function, name, arguments)

    e.line("")
    e.line("# backward pass")
    dname, borrowed = {}, set()
    rootg = e.fresh("d" + var[root])
    e.line(f"{rootg} = np.ones({root.out.shape}, np.{root.out.dtype})", root.out.shape)
    dname[root] = rootg
    for node in reversed(order):
        if node.op is None or node not in dname:
            continue
        g = dname[node]
        inputs_src = [var[p] if p is not None else e.const(a)
                      for p, a in zip(node.parents, node.inputs)]
        for i, parent in enumerate(node.parents):
            if parent is None:
                continue
            expr = _grad_source(e, node, i, g, var[node], inputs_src)
            expr = _unbroadcast(expr, _grad_shape(node, i), node.inputs[i].shape)
            shape = node.inputs[i].shape
            if parent in borrowed:              # its own name, before adding to it
                borrowed.discard(parent)
                own = e.fresh("d" + var[parent])
                e.line(f"{own} = {dname[parent]} + {expr}", shape)
                dname[parent] = own
            elif parent in dname:
                e.line(f"{dname[parent]} = {dname[parent]} + {_unstretched(expr, shape)}", shape)
            elif expr in dname.values() and parent.name is None:
                dname[parent] = expr            # an unnamed intermediate passes g on as is
                borrowed.add(parent)
            else:
                dname[parent] = e.fresh("d" + var[parent])
                e.line(f"{dname[parent]} = {expr}", shape)

    returned = [var[root]] + [dname.get(n, f"np.zeros_like({var[n]})") for n in leaves]
    e.line(f"return {', '.join(returned)}")
    if not e.standalone:
        e.lines = _free_early(e.lines)
    params = leaf_names + [a for a, _ in e.args]
    doc = ('    """The forward pass and the gradient of each leaf, as the engine computes '
           'them."""\n')
    source = (f"def {fname}({', '.join(params)}):\n" + doc
              + "\n".join(("    " + ln) if ln else "" for ln in e.lines) + "\n")
    if e.helpers:
        source = "\n\n".join([*(inspect.getsource(f) for f in e.helpers.values()), source])
    leaf_tensors = [n.tensor() if n.tensor is not None else None for n in leaves]
    program = Program(source, fname, leaf_tensors, leaf_names, e.args, e.globals)
    program.effects = e.effects
    return program


def _free_early(lines):
    """`lines` with `del name` after the last statement that reads each array the function
    made: memory is given back as soon as possible (the big temporaries of a large batch),
    as the engine frees a gradient once it has been passed on."""
    last, made = {}, set()
    for k, line in enumerate(lines):
        for node in ast.walk(ast.parse(line)):
            if isinstance(node, ast.Name):
                last[node.id] = k
                if isinstance(node.ctx, ast.Store):
                    made.add(node.id)
    dead = {}
    for name in made:
        dead.setdefault(last[name], []).append(name)
    out = []
    for k, line in enumerate(lines):
        out.append(line)
        if k in dead and not line.startswith("return "):
            out.append(f"del {', '.join(sorted(dead[k]))}")
    return out


def _effect(e, function, name, arguments):
    """A call that updates state outside the graph (running statistics), as the forward did."""
    if e.standalone:
        raise CodegenError(f"codegen: '{function.__name__}' updates state outside the graph; "
                           "standalone code cannot do that yet (compile() can)")
    call = e.globals_name(function, function.__name__)
    args = ", ".join(e.globals_name(a, "state") if isinstance(a, Tensor) else repr(a)
                     for a in arguments)
    e.line(f"{call}({name}, {args})")
    e.effects.extend(a for a in arguments if isinstance(a, Tensor))


def _forward_source(e, node, inputs_src):
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


def _grad_source(e, node, i, g, out, inputs_src):
    rule = GRAD.get(node.op)
    if rule is None and node in e.saved:
        return _fused_grad(e, node, i, g, out, inputs_src)
    if rule is None:
        op, attrs = e.generic(node, "the gradient")
        return f"{op}.vjp({i}, {g}, {out}, ({', '.join(inputs_src)},), {attrs})"
    return rule(e, node, i, g, out, *inputs_src)


# A fused op (tensorgrad.symbolic) is written out as its kernels' statements, the derived
# formulas, followed by what its op-table wrapper does to their result (kernels.py).

def _fused_forward(e, node, inputs_src):
    fused, call, dtype = node.op.fused, node.attrs["call"], node.inputs[0].dtype
    saved = {}
    try:
        lines, result, helpers = fused.inline("forward", dtype, ["None", "None", *inputs_src],
                                              call, saved, e.fresh)
    except KeyError:                            # it calls something only the op table has
        return None
    e.saved[node] = saved
    _emit_inlined(e, lines, helpers)
    value = fused.kernel("forward", dtype)(None, None, *node.inputs, **call.kwargs, saved={})
    expr = result if _is_array(value, dtype) else f"np.asarray({result}, np.{dtype})"
    if np.shape(value) != call.kept:
        expr = f"np.broadcast_to({expr}, {call.kept})"
    return expr if call.kept == call.shape else f"{expr}.reshape({call.shape})"


def _fused_grad(e, node, i, g, out, inputs_src):
    fused, call, x = node.op.fused, node.attrs["call"], node.inputs[i]
    if node.out.shape != call.kept:
        g, out = f"{g}.reshape({call.kept})", f"{out}.reshape({call.kept})"
    which = fused.definition.tensor_names[i]
    lines, result, helpers = fused.inline(which, x.dtype, [g, out, *inputs_src], call,
                                          e.saved[node], e.fresh)
    _emit_inlined(e, lines, helpers)
    value = fused.kernel(which, x.dtype)(np.zeros(call.kept, node.out.dtype),
                                         node.out.reshape(call.kept), *node.inputs,
                                         **call.kwargs, saved=call.saved)
    expr = result if _is_array(value, x.dtype) else f"np.asarray({result}, np.{x.dtype})"
    shape = np.shape(value)
    if shape != x.shape:
        expr = f"np.broadcast_to({expr}, {np.broadcast_shapes(shape, x.shape)})"
    return expr


def _is_array(value, dtype):
    """Whether the op-table wrapper's np.asarray(value, dtype) would change nothing."""
    return type(value) is np.ndarray and value.dtype == dtype


def _emit_inlined(e, lines, helpers):
    for line in lines:
        e.line(line)
    e.helpers.update(helpers)


def _grad_shape(node, i):
    """The shape of input i's gradient before unbroadcast, found by running the rule once."""
    g = np.zeros(node.out.shape, node.out.dtype)
    with np.errstate(all="ignore"):
        return np.shape(node.op.vjp(i, g, node.out, node.inputs, node.attrs))


def _unbroadcast(expr, shape, target):
    """Source of arrays.unbroadcast(expr, target) for a gradient of `shape`: the same sum."""
    shape, target = tuple(shape), tuple(target)
    if shape == target:
        return expr
    lead = len(shape) - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(target)
                                      if n == 1 and shape[lead + i] != 1)
    negated = re.fullmatch(r"-(\w+)", expr)            # -(g.sum()) is (-g).sum(), exactly
    if negated:
        expr = negated[1]
    elif not re.fullmatch(r"[\w.]+", expr):
        expr = f"({expr})"
    summed = f"{'-' if negated else ''}{expr}.sum(axis={_axis(axes)}, keepdims=True)"
    if lead == 0:
        return summed
    return f"{summed}.reshape({target})"


def _unstretched(expr, shape):
    """A gradient added to one of the full `shape`, without np.broadcast_to: the addition
    broadcasts by itself, to the same values."""
    prefix, suffix = "np.broadcast_to(", f", {tuple(shape)})"
    if expr.startswith(prefix) and expr.endswith(suffix):
        return expr[len(prefix):-len(suffix)]
    return expr


# ---------------------------------------------------------------- the compiled step

def compile(step):
    """A compiled training step: `compile(fn)(*args)` computes `loss = fn(*args)` and its
    gradients, as `loss.backward()` would (adding them to each leaf's `.grad`).

    The first call with inputs of some shapes and dtypes runs eagerly and records the graph,
    from which forward and backward code is generated; later calls with the same shapes and
    dtypes run that code on the new inputs. New shapes trace again. `explain()` says what
    the latest call did. Usable as a decorator.
    """
    return CompiledStep(step)


class CompiledStep:
    """See `compile`. `programs` maps an input signature to its Program (or to the reason it
    runs eagerly); `last` is 'traced', 'compiled' or 'eager' for the latest call."""

    def __init__(self, step):
        self.step = step
        functools.update_wrapper(self, step)
        try:
            self.arg_names = list(inspect.signature(step).parameters)
        except (TypeError, ValueError):
            self.arg_names = []
        self.programs = {}
        self.last, self.reason = None, None

    @staticmethod
    def signature(args):
        """What a program is generated for: each array argument's shape and dtype, and the
        value of each other argument."""
        return tuple([(a._data.shape, a._data.dtype) if type(a) is Tensor
                      else (a.shape, a.dtype) if isinstance(a, (Tensor, np.ndarray))
                      else ("value", a) for a in args])

    def __call__(self, *args):
        key = self.signature(args)
        entry = self.programs.get(key)
        if entry is None:
            return self._trace(key, args)
        if isinstance(entry, str):
            self.last, self.reason = "eager", entry
            return self._eager(args)
        if not entry.checked:
            return self._check(key, entry, args)
        self.last, self.reason = "compiled", None
        loss, *grads = entry.function(*self._arrays(entry, args))
        taken = set()
        for leaf, g in zip(entry.leaves, grads):
            if (leaf.grad is None and g.base is None and id(g) not in taken
                    and g.dtype == leaf._data.dtype):
                leaf.grad = Tensor._wrap(g, None)   # a fresh array of the generated code's
                taken.add(id(g))
            else:
                _deliver(leaf, g)
        return Tensor._wrap(np.asarray(loss), None)

    def explain(self):
        """What the latest call did, in words."""
        if self.last is None:
            return "not called yet"
        text = {"traced": "ran eagerly, recorded the graph and generated code for these shapes",
                "compiled": "ran the generated code",
                "eager": "ran eagerly"}[self.last]
        return text + (f": {self.reason}" if self.reason else "")

    def source(self, *args):
        """The generated source for inputs like `args` (of a traced signature)."""
        entry = self.programs.get(self.signature(args))
        return entry.source if entry is not None and not isinstance(entry, str) else None

    def _eager(self, args):
        loss = self.step(*args)
        loss.backward()
        return loss

    def _trace(self, key, args):
        inputs = {}
        for k, a in enumerate(args):
            if isinstance(a, (Tensor, np.ndarray)):
                name = self.arg_names[k] if k < len(self.arg_names) else f"arg{k}"
                inputs[name] = a
        retrace = "new input shapes or dtypes" if self.programs else None
        fname = _identifier(getattr(self.step, "__name__", "step").strip("<>"), "step")
        with tracing():
            loss = self.step(*args)
            try:
                program = generate(loss, inputs, fname, standalone=False)
            except (CodegenError, ValueError) as error:
                program = None
                self.programs[key] = f"no code could be generated: {error}"
        if program is None:
            self.last, self.reason = "eager", self.programs[key]
            if loss._node is not None:
                loss.backward()
            return loss
        if any(leaf is None for leaf in program.leaves):
            self.programs[key] = "a leaf of the graph has no tensor to receive its gradient"
        else:
            program.positions = [self._position(args, array) for _, array in program.args]
            program.checked = False
            self.programs[key] = program
        self.last, self.reason = "traced", retrace
        loss.backward()
        return loss

    @staticmethod
    def _position(args, array):
        """Which argument holds `array` (its index), or the array itself, a fixed constant."""
        for k, a in enumerate(args):
            if (a._data if isinstance(a, Tensor) else a) is array:
                return k
        return array

    @staticmethod
    def _arrays(program, args):
        """The generated function's arguments: the leaves' arrays, then the constants."""
        arrays = [leaf._data for leaf in program.leaves]
        for where in program.positions:
            if type(where) is int:
                where = args[where]
                arrays.append(where._data if type(where) is Tensor else where)
            else:
                arrays.append(where)
        return arrays

    def _check(self, key, program, args):
        """The first run on new inputs also runs eagerly and compares: a function that
        computes something from its inputs outside the graph (a constant the code would
        reuse) is caught here, and falls back to eager for good."""
        kept = [leaf.grad for leaf in program.leaves]
        for leaf in program.leaves:
            leaf.grad = None
        state = [t.data.copy() for t in program.effects]
        loss = self._eager(args)
        for t, before in zip(program.effects, state):       # updated once, by our code
            t.data[...] = before
        eager = [leaf.grad for leaf in program.leaves]
        ours, *grads = program.function(*self._arrays(program, args))
        same = np.array_equal(np.asarray(ours), loss._data, equal_nan=True) and all(
            e is not None and np.array_equal(e._data, g, equal_nan=True)
            for e, g in zip(eager, grads))
        for leaf, before, g in zip(program.leaves, kept, eager):
            leaf.grad = before
            _deliver(leaf, np.zeros_like(leaf._data) if g is None else g._data)
        if same:
            program.checked = True
            self.last, self.reason = "compiled", "checked against eager on its first run"
        else:
            self.programs[key] = ("the generated code disagreed with eager on new inputs (does "
                                  "the function compute values from its inputs outside the "
                                  "graph?)")
            self.last, self.reason = "eager", self.programs[key]
        return loss

