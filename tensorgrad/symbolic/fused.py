"""Fused ops with reductions: their forward written as named steps, their backward derived.

A fused op's forward is written once, in sympy, as a short program of named steps over one
or more *reduced axes* of symbolic length (`n`). A quantity that varies along an axis is
indexed (`x[i]`); a reduction `f.sum(h)` is the sum of `h[i]` for i from 0 to n - 1. The
lecture's batchnorm reads:

    def batch_norm(f, hprebn, bngain, bnbias, eps=1e-5):
        n = f.n()
        bnmeani = f.let("bnmeani", f.sum(hprebn) / n)
        bndiff = f.let("bndiff", hprebn - bnmeani)
        ...
        return bngain * bnraw + bnbias

`FusedDefinition.gradient(input)` derives the gradient of an upstream `g` through that
program by the chain rule, step by step from the output back (reverse mode, as
`loss.backward()` does on arrays), then simplifies it:

1. sums are expanded by linearity (constants out, sum of c = n*c);
2. sums that have a closed form are closed (the sum of `bndiff` is `n*bnmeani - n*bnmeani`);
3. earlier quantities are rewritten through later ones (`bndiff = bnraw / bnvar_inv`), so the
   result reads in the names of the forward, as a hand derivation would;
4. common factors are pulled out.
"""
import inspect
import keyword

import sympy as sp

from .algebra import cost, denominators, normalize_sums, split_sum, support, unique_inverse


class Axis:
    """A reduced axis: its name, the index symbol that runs along it, its length symbol."""

    def __init__(self, name, length):
        self.name = name
        self.index = sp.Symbol(name, integer=True, nonnegative=True)
        self.length = sp.Symbol(length, integer=True, positive=True)

    def __repr__(self):
        return f"Axis({self.name!r}, length {self.length})"


class Step:
    """`symbol = expr`, or for a reduction `symbol = sum over axis of expr`."""

    def __init__(self, symbol, expr, axis=None, shown=True):
        self.symbol, self.expr, self.axis, self.shown = symbol, expr, axis, shown

    @property
    def is_sum(self):
        """True for a reduction step."""
        return self.axis is not None

    @property
    def name(self):
        """The step's name (an indexed quantity's base name)."""
        return str(self.symbol.base if isinstance(self.symbol, sp.Indexed) else self.symbol)

    def definition(self):
        """The right-hand side as one expression (a Sum for reductions)."""
        if self.is_sum:
            return sp.Sum(self.expr, (self.axis.index, 0, self.axis.length - 1))
        return self.expr


class Forward:
    """The forward of a fused op while it is written: the `f` its definition receives.

    `f.sum`, `f.mean` and `f.logsumexp` reduce over an axis, `f.let` names a step (names
    make the derivation readable, and give the simplifier quantities to reuse), `f.n()` is
    an axis's length, `f.assume` states a fact about the inputs (one-hot rows sum to 1).
    """

    def __init__(self, name, axes):
        self.name = name
        self.axes = axes
        self.indices = {a.index for a in axes.values()}
        self.steps = []
        self.inputs = {}        # name -> symbol, tensor inputs
        self.scalars = {}       # name -> symbol, number inputs (eps)
        self.facts = {}         # symbol -> value
        self._count = 0

    # ------------------------------------------------------------ vocabulary

    def axis(self, axis=None):
        """The Axis called `axis` (by default the op's only reduced axis)."""
        if axis is None:
            if len(self.axes) != 1:
                raise ValueError(f"{self.name}: the op reduces over {', '.join(self.axes)}; "
                                 "name the axis")
            return next(iter(self.axes.values()))
        if axis not in self.axes:
            raise ValueError(f"{self.name}: no reduced axis {axis!r}; the axes are "
                             f"{', '.join(self.axes)}")
        return self.axes[axis]

    def n(self, axis=None):
        """The length of a reduced axis, a positive integer symbol."""
        return self.axis(axis).length

    def sum(self, expr, axis=None):
        """The sum of `expr` along `axis`: a new step, constant along that axis."""
        ax = self.axis(axis)
        expr = self._check(expr, "sum")
        symbol = self._quantity(self._fresh("sum"), support(expr, self.indices) - {ax.index},
                                _sign(sp.Sum(expr, (ax.index, 0, ax.length - 1))))
        self.steps.append(Step(symbol, expr, ax, shown=False))
        return symbol

    def mean(self, expr, axis=None):
        """The mean of `expr` along `axis`."""
        return self.sum(expr, axis) / self.n(axis)

    def logsumexp(self, expr, axis=None, name=None):
        """log(sum(exp(expr))) along `axis`, computed without overflow in the kernels."""
        return self.let(name or self._fresh("lse"), sp.log(self.sum(sp.exp(expr), axis)))

    def let(self, name, expr, **assumptions):
        """Name a step: `bnraw = f.let("bnraw", bndiff * bnvar_inv)`. Returns its symbol.

        Assumptions (positive=True, nonnegative=True) tell the simplifier what sympy cannot
        see (a variance divided by n - 1 is not negative); by default they are inferred.
        """
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
            raise ValueError(f"{self.name}: step name {name!r} is not a Python identifier")
        if name in self._names():
            raise ValueError(f"{self.name}: the name {name!r} is used twice")
        expr = self._check(expr, name)
        symbol = self._quantity(name, support(expr, self.indices), assumptions or _sign(expr))
        self.steps.append(Step(symbol, expr))
        return symbol

    def assume(self, quantity, value):
        """State a fact about the inputs: `f.assume(f.sum(target, "c"), 1)` for one-hot rows."""
        step = self.step_of(quantity)
        if step is None:
            raise ValueError(f"{self.name}: assume() takes a step made by f.sum or f.let")
        self.facts[quantity] = sp.sympify(value)

    # ------------------------------------------------------------ bookkeeping

    def input(self, name, along, **assumptions):
        """The symbol of tensor input `name`, varying along the axes named in `along`."""
        indices = {self.axis(a).index for a in along}
        self.inputs[name] = self._quantity(name, indices, assumptions)
        return self.inputs[name]

    def scalar(self, name, **assumptions):
        """The symbol of number input `name` (eps): constant everywhere, no gradient."""
        self.scalars[name] = sp.Symbol(name, real=True, **assumptions)
        return self.scalars[name]

    def _fresh(self, stem):
        """A name for an unnamed step that no other quantity uses: sum1, sum2, lse3..."""
        while True:
            self._count += 1
            if f"{stem}{self._count}" not in self._names():
                return f"{stem}{self._count}"

    def _quantity(self, name, indices, assumptions):
        assumptions = {"real": True} | dict(assumptions)
        if not indices:
            return sp.Symbol(name, **assumptions)
        order = [a.index for a in self.axes.values() if a.index in indices]
        return sp.IndexedBase(name, **assumptions)[tuple(order)]

    def _names(self):
        return set(self.inputs) | set(self.scalars) | {s.name for s in self.steps} | {
            str(a.length) for a in self.axes.values()} | set(self.axes)

    def step_of(self, symbol):
        """The step that defines `symbol`, or None."""
        for s in self.steps:
            if s.symbol == symbol:
                return s
        return None

    def known(self):
        """Every symbol a step may use: inputs, scalars, steps, lengths, indices."""
        return (set(self.inputs.values()) | set(self.scalars.values())
                | {s.symbol for s in self.steps} | {a.length for a in self.axes.values()}
                | self.indices)

    def _check(self, expr, where):
        """`expr` as a sympy expression whose every free symbol is bound; else a clear error."""
        try:
            expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError) as e:
            raise TypeError(f"{self.name}: {where}: not a sympy expression: {e}") from None
        if not isinstance(expr, sp.Expr):
            raise TypeError(f"{self.name}: {where}: {expr} is not an expression with a value")
        if expr.has(sp.Sum, sp.Integral, sp.Derivative):
            raise ValueError(f"{self.name}: {where}: write reductions with f.sum / f.mean, "
                             f"not sympy's Sum, Integral or Derivative ({expr})")
        known = self.known()
        labels = {q.base for q in expr.atoms(sp.Indexed)} | {
            q.base.label for q in expr.atoms(sp.Indexed)}      # x[i] also brings x itself
        unbound = sorted(str(a) for a in expr.free_symbols - known - labels)
        if unbound:
            raise ValueError(
                f"{self.name}: {where}: free symbol(s) {', '.join(unbound)} cannot be bound; a "
                f"fused op's forward may use its arguments ({', '.join(self.inputs)}"
                f"{', ' if self.scalars else ''}{', '.join(self.scalars)}), the lengths f.n() "
                "and the names it made with f.let / f.sum")
        return sp.nsimplify(expr, rational=True) if expr.atoms(sp.Float) else expr


def _sign(expr):
    if expr.is_positive:
        return {"positive": True}
    if expr.is_nonnegative:
        return {"nonnegative": True}
    return {}


class FusedDefinition:
    """A fused op's forward as named steps, and the derivation of its gradients.

    Built from a definition function `fn(f, *tensors, **scalars)`: arguments without a
    default are tensor inputs, arguments with one are numbers (scalars). `axes` maps each
    reduced axis to the name of its length; `along` says which axes each tensor input
    varies along (by default every input varies along every axis).
    """

    def __init__(self, fn, name=None, axes=None, along=None, positive=(), output="out",
                 upstream="g"):
        self.fn, self.name = fn, name or fn.__name__
        axes = axes or {"i": "n"}
        self.forward = f = Forward(self.name, {k: Axis(k, v) for k, v in axes.items()})
        params = list(inspect.signature(fn).parameters.values())[1:]
        self.tensor_names = [p.name for p in params if p.default is inspect.Parameter.empty]
        self.defaults = {p.name: p.default for p in params
                         if p.default is not inspect.Parameter.empty}
        along = dict(along or {})
        unknown = set(along) - set(self.tensor_names)
        if unknown:
            raise ValueError(f"{self.name}: along= names {sorted(unknown)}, which are not "
                             f"tensor arguments ({', '.join(self.tensor_names)})")
        reserved = ({output, upstream, "saved", "numpy"} | set(axes) | set(axes.values())) & (
            set(self.tensor_names) | set(self.defaults))
        if reserved:
            raise ValueError(f"{self.name}: argument name(s) {sorted(reserved)} are reserved "
                             "(the output, its gradient, the axes and their lengths)")
        symbols = [f.input(t, _axes_list(along.get(t, list(f.axes)))) for t in self.tensor_names]
        scalars = {s: f.scalar(s, **({"positive": True} if s in positive else {}))
                   for s in self.defaults}
        result = fn(f, *symbols, **scalars)
        self.out = f.let(output, result)
        self.g = f._quantity(upstream, support(self.out, f.indices), {})
        self._adjoints = None
        self._gradients = {}

    # ------------------------------------------------------------ derivation

    def adjoints(self):
        """The gradient of sum(g * out) with respect to every step and input (cached).

        Reverse mode through the steps: a step's adjoint times its partial derivative flows
        to each quantity it uses. When the step varies along an axis that quantity does not
        (a mean used by every row; anything inside a sum), the flow is summed over that
        axis: the same rule as unbroadcast in the engine, written as a Sum.
        """
        if self._adjoints is not None:
            return self._adjoints
        f = self.forward
        differentiable = set(f.inputs.values()) | {s.symbol for s in f.steps}
        adjoint = {self.out: self.g}
        for step in reversed(f.steps):
            a = adjoint.get(step.symbol)
            if a is None:
                continue
            for dep in sorted(step.expr.free_symbols & differentiable, key=str):
                partial = sp.diff(step.expr, dep)
                if partial.has(sp.Derivative):
                    raise ValueError(f"{self.name}: step {step.name} = {step.expr} is not "
                                     f"differentiable with respect to {dep}")
                if partial == 0:
                    continue
                flow = a * partial
                over = support(flow, f.indices) - support(dep, f.indices)
                if step.is_sum and step.axis.index not in support(dep, f.indices):
                    over |= {step.axis.index}
                for ax in f.axes.values():
                    if ax.index in over:
                        flow = sp.Sum(flow, (ax.index, 0, ax.length - 1))
                adjoint[dep] = adjoint.get(dep, sp.S.Zero) + flow
        self._adjoints = adjoint
        return adjoint

    def raw_gradient(self, input):
        """The gradient with respect to tensor input `input` as the chain rule gives it."""
        return self.adjoints().get(self.forward.inputs[self._input_name(input)], sp.S.Zero)

    def gradient(self, input):
        """The simplified gradient with respect to tensor input `input` (cached)."""
        name = self._input_name(input)
        if name not in self._gradients:
            expr = normalize_sums(self.raw_gradient(name))
            expr = self.close_sums(expr)
            for _ in range(3):         # a rewrite can open the way for an earlier step's
                before, expr = expr, self.rewrite_through_later_names(expr)
                if expr == before:
                    break
            self._gradients[name] = tidy(expr)
        return self._gradients[name]

    def _input_name(self, input):
        if isinstance(input, int):
            return self.tensor_names[input]
        if input not in self.forward.inputs:
            raise KeyError(f"{self.name}: no tensor input {input!r}; the inputs are "
                           f"{', '.join(self.tensor_names)}")
        return input

    # ------------------------------------------------------------ simplification

    def inline_along(self, expr, index):
        """`expr` with every named step that varies along `index` replaced by its definition."""
        f = self.forward
        rows = {s.symbol: s.expr for s in f.steps
                if not s.is_sum and index in support(s.symbol, f.indices)}
        while expr.free_symbols & set(rows):
            expr = expr.xreplace(rows)
        return expr

    def known_sums(self):
        """Sums the forward already computes, as rules `Sum(...) -> step symbol`."""
        rules = {}
        for s in self.forward.steps:
            if not s.is_sum:
                continue
            ax = s.axis
            expanded = split_sum(self.inline_along(s.expr, ax.index), ax.index, ax.length,
                                 expand=True)
            sums = [t for t in sp.Mul.make_args(expanded) if isinstance(t, sp.Sum)]
            if len(sp.Add.make_args(expanded)) == 1 and len(sums) == 1:
                rules[sums[0]] = s.symbol * sums[0] / expanded
        return rules

    def close_sums(self, expr):
        """Replace each sum that has a closed form in the forward's names by that form.

        A sum is expanded down to the inputs (its named rows inlined), split by linearity,
        and the pieces that are sums the forward computes are replaced by their names. If no
        sum is left, that is the closed form: the sum of `bndiff` becomes
        `sum1 - n*bnmeani`, which the next stage turns into 0.
        """
        rules, facts = self.known_sums(), self.forward.facts

        def close(s):
            """The closed form of the sum `s`, or `s` itself if it has none."""
            index, length = s.limits[0][0], s.limits[0][2] + 1
            closed = split_sum(self.inline_along(s.function, index), index, length, expand=True)
            closed = closed.xreplace(rules).xreplace(facts)
            return s if closed.has(sp.Sum) else closed

        return expr.replace(lambda e: isinstance(e, sp.Sum), close)

    def rewrite_through_later_names(self, expr):
        """Write earlier quantities through later ones, from the output backwards.

        For a step `v = f(u, ...)` with a single real inverse `u = f^-1(v, ...)`, every `u`
        in the gradient is replaced by it: `bndiff` by `bnraw / bnvar_inv`, `bnvar` by
        `bnvar_inv**-2 - eps`, an anonymous sum by `n * bnmeani`. Only quantities of the
        same kind are traded (rows for rows, constants for constants). An *input* is
        replaced only if that makes the gradient cheaper (x by `log(out) + lse` in
        softmax), and no rewrite may add a division by an input (never `/ bngain`).
        """
        f = self.forward
        inputs = set(f.inputs.values())
        for step in reversed(f.steps):
            if step.is_sum:
                continue
            for dep in sorted(step.expr.free_symbols & (inputs | {s.symbol for s in f.steps}),
                              key=str):
                if dep not in expr.free_symbols:
                    continue
                if support(dep, f.indices) != support(step.symbol, f.indices):
                    continue
                inverse = unique_inverse(step.symbol, step.expr, dep)
                if inverse is None:
                    continue
                candidate = self.close_sums(normalize_sums(sp.powsimp(
                    expr.xreplace({dep: inverse}))))
                if (denominators(candidate) - denominators(expr)) & inputs:
                    continue
                if dep in inputs and cost(candidate) >= cost(expr):
                    continue
                expr = candidate
        return expr

    def to_inputs(self, expr):
        """`expr` with every named step replaced by its definition, down to the inputs."""
        defs = {s.symbol: s.definition() for s in self.forward.steps}
        while expr.free_symbols & set(defs):
            expr = expr.xreplace(defs)
        return expr

    def difference(self, a, b):
        """a - b, written with the inputs only and brought to a canonical form.

        Sums are expanded by linearity and everything else multiplied out, so two correct
        derivations of one gradient leave 0.
        """
        d = self.to_inputs(a - b)
        for _ in range(3):
            d = normalize_sums(sp.expand(sp.powsimp(d)))
        return d

    def length_denominators(self):
        """Divisors made of lengths only (n - 1 in Bessel's variance): must not be 0."""
        lengths = {a.length for a in self.forward.axes.values()}
        found = set()
        for s in self.forward.steps:
            for p in s.expr.atoms(sp.Pow):
                if p.exp.is_negative and p.base.free_symbols and p.base.free_symbols <= lengths:
                    found.add(p.base)
        return sorted(found, key=str)

    def symbol(self, name):
        """The symbol of a named step or input (`d.symbol("bnraw")`), for writing formulas."""
        for s in self.forward.steps:
            if s.name == name:
                return s.symbol
        if name in self.forward.inputs:
            return self.forward.inputs[name]
        if name in self.forward.scalars:
            return self.forward.scalars[name]
        if name == str(self.g.base if isinstance(self.g, sp.Indexed) else self.g):
            return self.g
        raise KeyError(f"{self.name}: no step or input called {name!r}")


def _axes_list(along):
    return [along] if isinstance(along, str) else list(along)


def tidy(expr):
    """The cheaper of `expr` and `expr` with common factors pulled out (ties: factored)."""
    factored = sp.factor_terms(expr)
    return factored if cost(factored) <= cost(expr) else expr
