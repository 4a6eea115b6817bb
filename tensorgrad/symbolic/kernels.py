"""Fused ops as ops of the op table: the forward and each derived gradient compiled to numpy.

A kernel is generated Python source, one numpy statement per step of the forward that the
result needs, then the result (with common subexpressions computed once). Reduced axes are
passed in as tuples of array axes (negative, so inputs with fewer dimensions, such as a
(C,) gain against (N, C), line up as numpy broadcasting does), lengths as Python integers.
The forward saves the steps it computes; a gradient kernel reads those instead of
computing them again. Compiled once per op, input and dtype; `kernel.source` shows the code.
"""
import functools
import inspect
import math

import numpy as np
import sympy as sp

from .. import grad_mode, ops
from ..arrays import normalize_dims
from ..higher import Recorded
from ..tensor import Tensor, apply
from .algebra import (KernelPrinter, LogSoftmax, compile_source, identifier, inline_kernel,
                      numbers_as_floats, support)


class KernelWriter:
    """Writes the numpy source of a fused definition's forward and gradients."""

    def __init__(self, definition):
        self.d = definition
        f = definition.forward
        self.printer = KernelPrinter({a.index: f"_axes_{name}" for name, a in f.axes.items()},
                                     f.selectors)
        self.params = ([_name(definition.g), _name(definition.out)] + definition.tensor_names
                       + list(definition.defaults)
                       + [str(a.length) for a in f.axes.values()]
                       + [f"_axes_{name}" for name in f.axes])

    def code(self, expr):
        """`expr` as numpy source."""
        return self.printer.doprint(numbers_as_floats(expr))

    def logsumexps(self):
        """{symbol: (h, index)} for each step that is log(sum(exp(h))) along index."""
        f, found = self.d.forward, {}
        for step in f.steps:
            if not step.is_sum and isinstance(step.expr, sp.log):
                inner = f.step_of(step.expr.args[0])
                if inner is not None and inner.is_sum and isinstance(inner.expr, sp.exp):
                    found[step.symbol] = (inner.expr.args[0], inner.axis.index)
        return found

    def shifted(self, expr):
        """`expr` with each difference h - lse, lse a step log(sum(exp(h))), as
        LogSoftmax(h): printed so, it subtracts the maximum from h before the log-sum, as
        PyTorch does, instead of adding it to the log-sum, where for |h| above ~1e16 it
        would absorb it (a loss of 0 for logits [1e200, 1e200], not log(2))."""
        found = self.logsumexps()

        def rewrite(add):
            terms = set(sp.Add.make_args(add))
            for lse, (h, index) in found.items():
                if -lse in terms and set(sp.Add.make_args(h)) <= terms:
                    return LogSoftmax(h, index) + (add + lse - h)
            return add
        return expr.replace(lambda e: isinstance(e, sp.Add), rewrite) if found else expr

    def step_code(self, step):
        """(source, symbols it reads) for one step; log(sum(exp(h))) becomes a stable call,
        and so does h - log(sum(exp(h))) (`shifted`)."""
        lse = self.logsumexps().get(step.symbol)
        if lse is not None:
            h, index = lse
            axis = self.printer.axis_names[index]
            return f"_logsumexp({self.code(h)}, {axis})", h.free_symbols
        definition = self.shifted(step.definition())
        return self.code(definition), definition.free_symbols

    def needed(self, result, given=()):
        """The steps `result` reads, directly or through other steps, in forward order, each
        with its code (None for a step in `given`, which is read, not computed)."""
        f = self.d.forward
        wanted, code = set(result.free_symbols), {}
        for step in reversed(f.steps):
            if step.symbol not in wanted:
                continue
            if step.symbol in given:
                code[step] = None
            else:
                code[step], reads = self.step_code(step)
                wanted |= reads
        return [(s, code[s]) for s in f.steps if s in code]

    def source(self, fname, result, given=(), saves=False):
        """A function computing `result` (an expression, or a tuple of them) from the inputs.
        Steps in `given` (the output, and whatever the forward saved) are read from `saved`
        instead of being computed again; with `saves`, the function stores every step it
        computes there."""
        results = list(result) if isinstance(result, tuple) else [result]
        results = [self.shifted(r) for r in results]
        body, computed = [], []
        for step, code in self.needed(sp.Tuple(*results), given):
            if code is None:
                if step.symbol != self.d.out:            # the output is an argument
                    body.append(f"    {step.name} = saved[{step.name!r}]")
            else:
                body.append(f"    {step.name} = {code}")
                if step.symbol != self.d.out:
                    computed.append(step.name)
        temps, values = self.statements(results)
        body += [f"    {_name(t)} = {self.code(e)}" for t, e in temps]
        if saves:
            body.append("    saved.update(" + ", ".join(f"{n}={n}" for n in computed) + ")")
        body.append(f"    return {', '.join(self.code(v) for v in values)}")
        params = ", ".join(self.params + ["saved"])
        return f"def {fname}({params}):\n" + "\n".join(body) + "\n"

    def statements(self, results):
        """`results` as statements `(symbol, expression)` and the expressions that use them:
        every common subexpression computed once, each quantity read once written where it
        is read, no statement that nothing reads.

        sympy's `cse` alone falls short of that on sums: it names the n - 1 of their limits
        (which the printed code never reads) and can leave an occurrence of a product it
        named (layer norm's g*weight was computed twice). So sums are named first (inner
        ones before the sums around them), `cse` runs on the summands and the results, and
        every remaining occurrence of a named subexpression is replaced by its name. A
        summand keeps the one-hot factor the printer picks with (`KernelPrinter._picked`).
        """
        names = sp.numbered_symbols("_t")
        sums = {}                                   # Sum -> its name, inner sums first
        exprs = [e.replace(lambda q: isinstance(q, sp.Sum),
                           lambda q: sums.setdefault(q, next(names))) for e in results]
        sums = {name: s for s, name in sums.items()}
        picked = {name: self.printer._picked(s.function, s.limits[0][0]) or (sp.S.One, s.function)
                  for name, s in sums.items()}
        temps, reduced = sp.cse([rest for _, rest in picked.values()] + exprs,
                                symbols=names, optimizations=None)
        for k, (t, e) in enumerate(temps):          # finish cse's work, in order
            rule = {e: t}
            temps[k + 1:] = [(u, d.xreplace(rule)) for u, d in temps[k + 1:]]
            reduced = [r.xreplace(rule) for r in reduced]
        statements = dict(temps)
        for (name, s), (onehot, _), rest in zip(sums.items(), picked.values(), reduced):
            statements[name] = sp.Sum(onehot * rest, *s.limits)
        values = reduced[len(sums):]
        statements = dict(_in_order(statements, values))
        for t in reversed(list(statements)):        # read once: written where it is read
            uses = sum(e.count(t) for u, e in statements.items() if u != t)
            if uses + sum(v.count(t) for v in values) == 1:
                rule = {t: statements.pop(t)}
                statements = {u: e.xreplace(rule) for u, e in statements.items()}
                values = [v.xreplace(rule) for v in values]
        # numbered as read; a temporary that varies along an axis is indexed along it, as
        # the quantities it is made of are (the printer orders products by that)
        number, written = {}, []
        for k, (t, e) in enumerate(statements.items()):
            e = e.xreplace(number)
            along = sorted(support(e, self.d.forward.indices), key=sp.default_sort_key)
            number[t] = sp.IndexedBase(f"_t{k}")[tuple(along)] if along else sp.Symbol(f"_t{k}")
            written.append((number[t], e))
        return written, [v.xreplace(number) for v in values]

    def fname(self, which):
        """The kernel's function name: <op>_forward, <op>_grad_<input>, <op>_checked."""
        suffix = {"forward": "forward", "checked": "checked"}.get(which, f"grad_{which}")
        return identifier(f"{self.d.name}_{suffix}")

    def kernel_source(self, which):
        """The source of kernel `which`: 'forward', 'checked' (the quantities anomaly mode
        checks, `FusedOp.check_assumptions`) or the name of a tensor input (its gradient)."""
        if which == "forward":
            return self.forward_source()
        if which == "checked":
            return self.source(self.fname(which), tuple(q for q, _, _ in self.d.checked()))
        return self.gradient_source(which)

    def forward_source(self):
        """The forward: every step the output needs, each saved for the backward."""
        return self.source(self.fname("forward"), self.d.out, saves=True)

    def gradient_source(self, input):
        """The gradient for `input`, reading the output and the forward's saved steps."""
        saved = {s.symbol for s, _ in self.needed(self.d.out)}
        return self.source(self.fname(input), self.d.gradient(input),
                           given=saved | {self.d.out})


def _in_order(statements, values):
    """The statements `values` read, each after those it reads (a topological order)."""
    wanted = set().union(*(v.free_symbols for v in values)) & set(statements)
    order, done = [], set()
    while wanted - done:
        for name in statements:
            if name in wanted and name not in done:
                reads = statements[name].free_symbols & set(statements)
                wanted |= reads
                if reads <= done:
                    order.append((name, statements[name]))
                    done.add(name)
    return order


def _name(symbol):
    return str(symbol.base if isinstance(symbol, sp.Indexed) else symbol)


class FusedOp:
    """A fused op made from a forward definition: call it on tensors.

    Its class in the op table (`.op`) has a numpy `forward` (the definition compiled) and
    one `grad_<input>` per tensor input, each the derived, simplified gradient compiled to
    numpy: made on first use and cached per dtype. `derivation()` shows the work.
    """

    def __init__(self, definition, dim=None):
        self.definition = definition
        self.name = definition.name
        self.default_dim = dim
        self.writer = KernelWriter(definition)
        self._kernels = {}
        self._layouts = {}          # (shapes, dtype, dim, keepdim, numbers) -> checked Call
        self._op = None
        f = definition.forward
        self.out_indices = support(definition.out, f.indices)
        lengths = [a.length for a in f.axes.values()]
        self.denominators = [(den, sp.lambdify(lengths, den, modules="math"))
                             for den in definition.length_denominators()]
        self.varies = {name: [ax.index in support(f.inputs[t], f.indices)      # per call,
                              for t in definition.tensor_names]              # no sympy
                       for name, ax in f.axes.items()}
        self.length_names = {name: str(ax.length) for name, ax in f.axes.items()}

    # ------------------------------------------------------------ kernels

    def kernel(self, which, dtype):
        """The compiled kernel 'forward' or the gradient for input `which`, for `dtype`."""
        key = (which, np.dtype(dtype))
        if key not in self._kernels:
            self._kernels[key] = compile_source(self.writer.kernel_source(which),
                                                self.writer.fname(which))
        return self._kernels[key]

    def check_assumptions(self, arrays, call):
        """Anomaly mode's check, before the forward: what the definition declared and the
        simplifier relied on holds for these arrays. Inputs declared one-hot hold 0s and a
        single 1 along their axis; facts stated with f.assume hold (to the square root of
        the dtype's epsilon); steps whose declared sign sympy could not prove have it.
        Otherwise a ValueError names the declaration and how often it fails."""
        d = self.definition
        for name, axis in d.forward.one_hots.items():
            a = arrays[d.tensor_names.index(name)]
            axes = call.kwargs[f"_axes_{axis}"]
            bad = np.count_nonzero(((a != 0) & (a != 1)).any(axis=axes)
                                   | (np.add.reduce(a, axis=axes) != 1))
            if bad:
                raise ValueError(f"{self.name}: {name} is declared one-hot along {axis}, but "
                                 f"{bad} {'rows are' if bad > 1 else 'row is'} not")
        checked = d.checked()
        if not checked:
            return
        values = self.kernel("checked", arrays[0].dtype)(None, None, *arrays, **call.kwargs,
                                                        saved={})
        values = values if len(checked) > 1 else (values,)
        tolerance = float(np.finfo(arrays[0].dtype).eps) ** 0.5
        for (_, what, holds), value in zip(checked, values):
            failing = ~holds(np.asarray(value), tolerance)
            if failing.any():
                worst = np.asarray(value)[failing].flat[0]
                count = np.count_nonzero(failing)
                raise ValueError(f"{self.name}: {what}, but the forward gives {float(worst)!r} "
                                 f"at {count} position{'s' if count > 1 else ''}")

    def inline(self, which, dtype, arrays, call, saved, fresh):
        """Kernel `which` for `dtype` as statements for generated code (tensorgrad.codegen).

        `arrays` is the source text of the upstream gradient, the output and the tensor
        inputs, in the kernel's order; the numbers, lengths and axes of `call` are written
        as literals. `saved` and `fresh` and the result are as in `algebra.inline_kernel`.
        """
        kernel = self.kernel(which, dtype)
        params = list(inspect.signature(kernel).parameters)[:-1]         # all but `saved`
        bind = dict(zip(params, arrays)) | {k: repr(v) for k, v in call.kwargs.items()}
        return inline_kernel(kernel.source, bind, saved, fresh)

    @property
    def op(self):
        """The op-table class of this fused op (forward and grad_* on numpy arrays)."""
        if self._op is None:
            self._op = _make_op_class(self)
        return self._op

    # ------------------------------------------------------------ calling

    def __call__(self, *tensors, dim=None, keepdim=False, saved=None, **scalars):
        """Apply the op. `dim`: the array axes to reduce over, an int or tuple for an op with
        one reduced axis, a dict {axis name: int or tuple} for several. `saved`, a dict,
        receives the steps the forward computed, by name (batch_norm's running statistics
        take the batch mean and variance from there)."""
        d = self.definition
        if len(tensors) != len(d.tensor_names):
            raise TypeError(f"{self.name}: expected {len(d.tensor_names)} tensors "
                            f"({', '.join(d.tensor_names)}), got {len(tensors)}")
        unknown = scalars and set(scalars) - set(d.defaults)
        if unknown:
            raise TypeError(f"{self.name}: unexpected argument(s) {sorted(unknown)}; the "
                            f"number arguments are {sorted(d.defaults) or 'none'}")
        tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
        dtype = tensors[0]._floating().dtype
        tensors = [t._cast(dtype) for t in tensors]
        shapes = tuple([t._data.shape for t in tensors])
        key = (shapes, dtype, dim if not isinstance(dim, dict) else repr(dim), keepdim,
               tuple(sorted(scalars.items())) if scalars else ())
        layout = self._layouts.get(key)
        if layout is None:                  # checked once per shapes and arguments
            layout = self._layout(shapes, dim, keepdim, scalars)
            self._layouts[key] = layout
        out, extras = apply(self.op, *tensors, call=layout)
        if saved is not None:
            saved.update(extras["steps"])
        return out

    def _layout(self, shapes, dim, keepdim, scalars):
        """The Call for inputs of `shapes`: axes, lengths and numbers, after checking them."""
        try:
            full = np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"{self.name}: input shapes {', '.join(map(str, shapes))} cannot "
                             "be broadcast together") from None
        axes = self.axes_for(self.default_dim if dim is None else dim, len(full))
        lengths = self.check_shapes(shapes, full, axes)
        values = {k: float(v) for k, v in (self.definition.defaults | scalars).items()}
        for k, v in values.items():       # the simplifier relies on it (sqrt(eps**2) = eps)
            if self.definition.forward.scalars[k].is_positive and not v > 0:
                raise ValueError(f"{self.name}: {k} must be > 0 (the op declares it "
                                 f"positive), got {v}")
        return Call(self, full, axes, lengths, keepdim, values)

    def axes_for(self, dim, ndim):
        """`dim` as {axis name: tuple of negative array axes}, checked against `ndim`."""
        names = list(self.definition.forward.axes)
        if dim is None:
            raise TypeError(f"{self.name}: say which array axes to reduce over with dim=")
        if not isinstance(dim, dict):
            if len(names) != 1:
                raise TypeError(f"{self.name}: reduces over {', '.join(names)}; pass dim= as a "
                                "dict {axis name: array axis}")
            dim = {names[0]: dim}
        if set(dim) != set(names):
            raise ValueError(f"{self.name}: dim= must give the array axes of {names}, got "
                             f"{sorted(dim)}")
        axes, used = {}, set()
        for name in names:
            found = normalize_dims(dim[name], ndim, self.name) if ndim else None
            if not found:
                raise IndexError(f"{self.name}: cannot reduce over axis {dim[name]} of an input "
                                 f"with {ndim} dimensions")
            if used & set(found):
                raise ValueError(f"{self.name}: array axis used for two reduced axes: {dim}")
            used |= set(found)
            axes[name] = tuple(a - ndim for a in found)
        return axes

    def check_shapes(self, shapes, full, axes):
        """Each input must vary along its reduced axes (or be size 1 there if it does not).
        Returns the length of each reduced axis, by the name of its length symbol."""
        lengths = {}
        for name, length in self.length_names.items():
            n = math.prod(full[a] for a in axes[name])
            if n == 0:
                raise ValueError(f"{self.name}: cannot reduce over an empty axis ({name} has "
                                 f"length 0 in a shape {full})")
            lengths[length] = n
            for tname, shape, varies in zip(self.definition.tensor_names, shapes,
                                            self.varies[name]):
                sizes = [shape[a] if -a <= len(shape) else 1 for a in axes[name]]
                want = [full[a] for a in axes[name]] if varies else [1] * len(sizes)
                if sizes != want:
                    kind = "varies along" if varies else "is constant along"
                    raise ValueError(
                        f"{self.name}: {tname} {kind} the reduced axis {name} (array axes "
                        f"{axes[name]} of {full}), so its sizes there must be {want}; "
                        f"got shape {shape}")
        for den, value in self.denominators:
            if value(*lengths.values()) == 0:
                raise ValueError(f"{self.name}: the forward divides by {den}, which is 0 for "
                                 f"{', '.join(f'{k} = {v}' for k, v in lengths.items())}")
        return lengths

    # ------------------------------------------------------------ display

    def gradient(self, input):
        """The derived, simplified gradient with respect to tensor input `input` (sympy)."""
        return self.definition.gradient(input)

    def derivation(self, inputs=None):
        """The work: forward, chain-rule gradient and simplified gradient (str(), .latex())."""
        from .show import Derivation
        return Derivation(self.definition, inputs)

    def __repr__(self):
        return f"<fused op {self.name}({', '.join(self.definition.tensor_names)})>"


class Call:
    """What an application of a fused op needs besides its arrays (the node's attribute):
    the kernels' keyword arguments (numbers, lengths, reduced array axes) and the output's
    shape with and without the reduced axes. One per layout, shared by its applications."""

    __slots__ = ("kwargs", "kept", "shape", "values")

    def __init__(self, fused, full, axes, lengths, keepdim, values):
        self.values = values
        self.kwargs = values | lengths | {f"_axes_{name}": a for name, a in axes.items()}
        dropped = {a for name, ax in fused.definition.forward.axes.items()
                   if ax.index not in fused.out_indices for a in axes[name]}
        self.kept = tuple(1 if a - len(full) in dropped else s for a, s in enumerate(full))
        self.shape = self.kept if keepdim else tuple(
            s for a, s in enumerate(full) if a - len(full) not in dropped)

    def __str__(self):
        """The op's numbers as a drawing shows them: 'eps=1e-05'."""
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.values.items())

    def __repr__(self):
        return f"Call({', '.join(f'{k}={v}' for k, v in self.kwargs.items())})"


# np.broadcast_shapes, remembered: a training loop asks about the same pairs at every step
# (a gradient of batchnorm's weight, (1, C) against (C,)), and it costs 1.6 us a call
_broadcast_shapes = functools.lru_cache(maxsize=1024)(np.broadcast_shapes)


def _as_dtype(x, dtype):
    """A kernel's result as an array of `dtype` (numpy gives a 0-d result as a scalar); a
    value recorded in the graph (tensorgrad.higher) converts itself."""
    return x.astype(dtype) if isinstance(x, Recorded) else np.asarray(x, dtype)


def _make_op_class(fused):
    """The op-table class for `fused`: numpy forward, one grad_<input> per tensor input.

    The forward also returns the steps it computed (`steps`, the op's extra), which the
    gradients read, as the lecture's backward reads `bnraw` and `bnvar_inv`.
    """
    d = fused.definition

    def forward(*arrays, call):
        """The compiled forward; the output without the reduced axes unless keepdim."""
        if grad_mode._anomaly[-1]:
            fused.check_assumptions(arrays, call)
        dtype, steps = arrays[0].dtype, {}
        out = fused.kernel("forward", dtype)(None, None, *arrays, **call.kwargs, saved=steps)
        out = _as_dtype(out, dtype)
        if out.shape != call.kept:
            out = np.broadcast_to(out, call.kept)
        return (out if out.shape == call.shape else out.reshape(call.shape)), steps

    # every gradient reads the output, every input and the steps (the kernels' arguments)
    reads = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
             for n in ("g", "out", *d.tensor_names, "steps", "call")]

    def make_grad(k, input_name):
        """grad_<input_name>: the compiled derived gradient of tensor input k."""
        def grad(g, out, *arrays_steps_call):
            *arrays, steps, call = arrays_steps_call
            g, out, x = g.reshape(call.kept), out.reshape(call.kept), arrays[k]
            r = fused.kernel(input_name, x.dtype)(g, out, *arrays, **call.kwargs, saved=steps)
            r = _as_dtype(r, x.dtype)
            if r.shape != x.shape:                  # smaller than x: spread it for unbroadcast
                full = _broadcast_shapes(r.shape, x.shape)
                r = r if full == r.shape else np.broadcast_to(r, full)
            return r
        grad.__name__ = f"grad_{input_name}"
        grad.__doc__ = f"The derived gradient of {d.name} with respect to {input_name}."
        grad.__signature__ = inspect.Signature(reads)
        return grad

    namespace = {"name": d.name, "fused": fused, "forward": forward, "extras": ("steps",),
                 "__doc__": f"{d.name}: a fused op; forward and gradients derived with sympy."}
    for k, input_name in enumerate(d.tensor_names):
        namespace[f"grad_{input_name}"] = make_grad(k, input_name)
    class_name = "".join(part.title() for part in d.name.split("_"))
    return type(class_name, (ops.Op,), namespace)


def fused_op(fn=None, *, name=None, axes=None, along=None, positive=(), dim=None,
             output="out", upstream="g"):
    """A fused op from its forward definition; usable as a decorator.

        @fused_op(dim=-1, positive=("eps",))
        def layer_norm(f, x, weight, bias, eps=1e-5):
            mean = f.let("mean", f.mean(x))
            var = f.let("var", f.mean((x - mean)**2))
            xhat = f.let("xhat", (x - mean) / sympy.sqrt(var + eps))
            return weight * xhat + bias

        y = layer_norm(x, weight, bias)       # Tensors; y.sum().backward() works

    `fn(f, *tensors, **numbers)`: arguments without a default are tensors, with one are
    numbers. `axes` names each reduced axis and its length (default {"i": "n"}); `along`
    says which axes each tensor varies along (default: all); `positive` lists number
    arguments known to be > 0; `dim` is the default array axes to reduce over. The gradients
    are derived with sympy on first use, simplified, and compiled to numpy.
    """
    from .fused import FusedDefinition

    def build(fn):
        """The FusedOp of definition `fn`."""
        definition = FusedDefinition(fn, name, axes, along, positive, output, upstream)
        return FusedOp(definition, dim)

    return build if fn is None else build(fn)
