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

No stage may divide by a quantity that can be 0 where the chain rule's formula did not
(`FusedDefinition.zero_divisors`): the shorter form must be as defined as the longer.
"""
import inspect
import keyword

import numpy as np
import sympy as sp

from .algebra import (KernelPrinter, compile_source, cost, kinks_as_pytorch,
                      never_zero, normalize_sums, numbers_as_floats, split_sum, support,
                      unique_inverse, zero_divisors)
from .show import text


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
    an axis's length, `f.one_hot` declares an input one-hot along an axis, `f.assume`
    states another fact about the inputs.
    """

    def __init__(self, name, axes, reserved=None):
        self.name = name
        self.axes = axes
        self.indices = {a.index for a in axes.values()}
        self.lengths = frozenset(a.length for a in axes.values())
        self.reserved = dict(reserved or {})    # name -> why a step may not take it
        self.steps = []
        self.inputs = {}        # name -> symbol, tensor inputs
        self.scalars = {}       # name -> symbol, number inputs (eps)
        self.facts = {}         # symbol -> value, what the simplifier may use
        self.stated = {}        # symbol -> value, the facts f.assume stated (checked)
        self.one_hots = {}      # input name -> axis name (checked)
        self.unproved = []      # steps whose declared sign sympy could not prove (checked)
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
                                self.sign(sp.Sum(expr, (ax.index, 0, ax.length - 1))))
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

        Its sign is inferred. A sign declared here (positive=True or nonnegative=True) is
        proved from the step's formula if sympy can; if it cannot, the simplifier uses it
        and anomaly mode checks it on every call (`FusedOp.check_assumptions`).
        """
        why = refusal(name, self.reserved)
        if why:
            raise ValueError(f"{self.name}: step name {name!r} {why}")
        return self.define(name, expr, assumptions)

    def define(self, name, expr, assumptions=None):
        """A named step without the check of reserved names (the output is one)."""
        if name in self._names():
            raise ValueError(f"{self.name}: the name {name!r} is used twice")
        wrong = set(assumptions or {}) - {"positive", "nonnegative"}
        if wrong or not all(v is True for v in (assumptions or {}).values()):
            raise ValueError(f"{self.name}: step {name}: a step's sign is declared with "
                             f"positive=True or nonnegative=True, got {assumptions}")
        expr = self._check(expr, name)
        proved = self.sign(expr)
        symbol = self._quantity(name, support(expr, self.indices), assumptions or proved)
        step = Step(symbol, expr)
        if assumptions and not _implies(proved, assumptions):
            self.unproved.append(step)
        self.steps.append(step)
        return symbol

    def assume(self, quantity, value):
        """State a fact about the inputs for the simplifier to use: `f.assume(quantity,
        value)` for a step made by f.sum or f.let. Checked in anomaly mode."""
        step = self.step_of(quantity)
        if step is None:
            raise ValueError(f"{self.name}: assume() takes a step made by f.sum or f.let")
        self.facts[quantity] = self.stated[quantity] = sp.sympify(value)

    def one_hot(self, input, axis=None):
        """Declare tensor input `input` one-hot along `axis`: every slice along it holds one
        1 and 0s. Its sum along the axis is then 1 (the simplifier uses that), and a sum of
        `input * h` along it takes h where input is 1 without multiplying the 0s by h, as
        indexing would: h may be -inf elsewhere (the log-probability of a class that has
        probability 0). Checked in anomaly mode."""
        ax = self.axis(axis)
        names = [k for k, v in self.inputs.items() if v == input]
        if not names or ax.index not in support(input, self.indices):
            raise ValueError(f"{self.name}: one_hot() takes a tensor input that varies "
                             f"along {ax.name}, got {input}")
        self.one_hots[names[0]] = ax.name
        self.facts[self.sum(input, ax.name)] = sp.S.One

    def sign(self, expr):
        """What sympy can prove of the sign of `expr` ({'positive': True}, ...). A divisor
        made of axis lengths only (n - 1) counts as positive: the op refuses lengths that
        make it 0 (FusedOp.check_shapes)."""
        expr = expr.replace(
            lambda e: e.is_Pow and e.exp.is_negative and e.base.free_symbols
            and e.base.free_symbols <= self.lengths and e.base.is_nonnegative,
            lambda e: sp.Dummy(positive=True))
        return _sign(expr)

    @property
    def selectors(self):
        """{input label: index} of the inputs declared one-hot (for the kernel printer)."""
        return {self.inputs[name].base.label: self.axes[axis].index
                for name, axis in self.one_hots.items()}

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


def _implies(proved, declared):
    """Whether the proved sign gives every declared one (positive gives nonnegative)."""
    return all(proved.get(k) or (k == "nonnegative" and proved.get("positive"))
               for k in declared)


def refusal(name, reserved):
    """Why `name` cannot name a step, an axis or a length in a kernel, or None if it can.

    Kernels are Python functions whose parameters and locals are the op's names; every
    name a kernel uses for itself is refused, so none can be captured: names beginning
    with _ (temporaries _t0, axes _axes_i, helpers _logsumexp), `saved`, `numpy` (and `np`,
    numpy's name in the code tensorgrad.codegen writes from kernels), and the names
    `reserved` gives (the output and the upstream gradient).
    """
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
        return "is not a Python identifier"
    if name.startswith("_"):
        return "is reserved: names beginning with _ are the kernels' own (_t0, _axes_i)"
    if name in reserved:
        return f"is reserved: {reserved[name]}"
    return None


STAGES = ("sums by linearity", "closed forms", "later names", "common factors")   # see above


KERNEL_NAMES = {"saved": "kernels receive the forward's saved steps under it",
                "numpy": "kernels call numpy by it",
                "np": "generated code (tensorgrad.codegen) calls numpy by it"}


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
        reserved = KERNEL_NAMES | {
            upstream: "it is the upstream gradient's (choose another with upstream=)",
            output: "it is the output's (choose another with output=)"}
        for kind, names in (("axis name", list(axes)), ("axis length name", list(axes.values())),
                            ("output name", [output]), ("upstream name", [upstream])):
            for n in names:
                why = refusal(n, KERNEL_NAMES if kind in ("output name", "upstream name")
                              else reserved)
                if why:
                    raise ValueError(f"{self.name}: {kind} {n!r} {why}")
        if len({*axes, *axes.values(), output, upstream}) != 2 * len(axes) + 2:
            raise ValueError(f"{self.name}: the axes {axes}, output {output!r} and upstream "
                             f"{upstream!r} need different names")
        self.forward = f = Forward(self.name, {k: Axis(k, v) for k, v in axes.items()},
                                   reserved)
        params = list(inspect.signature(fn).parameters.values())[1:]
        self.tensor_names = [p.name for p in params if p.default is inspect.Parameter.empty]
        self.defaults = {p.name: p.default for p in params
                         if p.default is not inspect.Parameter.empty}
        along = dict(along or {})
        unknown = set(along) - set(self.tensor_names)
        if unknown:
            raise ValueError(f"{self.name}: along= names {sorted(unknown)}, which are not "
                             f"tensor arguments ({', '.join(self.tensor_names)})")
        arguments = set(self.tensor_names) | set(self.defaults)
        taken = ({output, upstream} | set(KERNEL_NAMES) | set(axes) | set(axes.values())
                 | {a for a in arguments if a.startswith("_")}) & arguments
        if taken:
            raise ValueError(f"{self.name}: argument name(s) {sorted(taken)} are reserved "
                             "(the output, its gradient, the axes and their lengths, saved, "
                             "numpy, np, and names beginning with _)")
        symbols = [f.input(t, _axes_list(along.get(t, list(f.axes)))) for t in self.tensor_names]
        scalars = {s: f.scalar(s, **({"positive": True} if s in positive else {}))
                   for s in self.defaults}
        result = fn(f, *symbols, **scalars)
        self.out = f.define(output, result)
        self.g = f._quantity(upstream, support(self.out, f.indices), {})
        self._definitions = {s.symbol: s.definition() for s in f.steps}
        self._constants = f.lengths | {s for s in f.scalars.values() if s.is_positive}
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
            for dep in sorted(step.expr.free_symbols & differentiable, key=sp.default_sort_key):
                partial = kinks_as_pytorch(sp.diff(step.expr, dep))
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
        """The simplified gradient with respect to tensor input `input` (cached): the last
        of its `simplification` stages."""
        return self.simplification(input)[-1][1]

    def simplification(self, input):
        """The stages that simplify the chain rule's gradient with respect to `input`, as
        (stage, gradient after it) pairs, one per name of STAGES (cached).

        No stage may divide by a quantity that can be 0 unless the chain rule's formula
        already did (`zero_divisors`): a shorter formula that is 0/0 where the gradient
        is finite is not a simplification.
        """
        name = self._input_name(input)
        if name not in self._gradients:
            raw = self.raw_gradient(name)
            allowed = self.zero_divisors(raw)
            linear = normalize_sums(raw)
            expr = closed = self.close_sums(linear)
            for _ in range(3):         # a rewrite can open the way for an earlier step's
                before, expr = expr, self.rewrite_through_later_names(expr, allowed)
                if expr == before:
                    break
            later, factored = expr, sp.factor_terms(expr)   # common factors out, if not
            if cost(factored) <= cost(expr) and self.zero_divisors(factored) <= allowed:
                expr = factored                             # more costly
            self._gradients[name] = list(zip(STAGES, (linear, closed, later, expr)))
        return self._gradients[name]

    def zero_divisors(self, expr):
        """The quantities `expr` divides by that can be 0, written with the inputs only.

        A divisor that cannot be 0 (`n`, `bnvar + eps`, `1 + exp(x)`: see
        algebra.never_zero; the axis lengths and the number arguments declared positive
        are checked on every call) is left out.
        """
        never = lambda e: never_zero(e, self._constants, self._definitions.get)  # noqa: E731
        return zero_divisors(expr, never, self.canonical)

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
                # s = c * Sum(...) gives Sum(...) = s / c: only if c cannot be 0
                # (sum(x * sum(x)) must not close sum(x) as out / sum(x)); the first
                # step to compute a sum names it
                coefficient = expanded / sums[0]
                if sums[0] not in rules and never_zero(coefficient, self._constants,
                                                       self._definitions.get):
                    rules[sums[0]] = s.symbol / coefficient
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
            """The closed form of the sum `s`, or `s` itself if it has none (or if it
            divides by something that can be 0)."""
            index, length = s.limits[0][0], s.limits[0][2] + 1
            closed = split_sum(self.inline_along(s.function, index), index, length, expand=True)
            closed = closed.xreplace(rules).xreplace(facts)
            if closed.has(sp.Sum):
                return s
            new = self.zero_divisors(closed)
            return closed if not new or new <= self.zero_divisors(s) else s

        return expr.replace(lambda e: isinstance(e, sp.Sum), close)

    def rewrite_through_later_names(self, expr, allowed=frozenset()):
        """Write earlier quantities through later ones, from the output backwards.

        For a step `v = f(u, ...)` with a single real inverse `u = f^-1(v, ...)`, every `u`
        in the gradient is replaced by it: `bndiff` by `bnraw / bnvar_inv`, `bnvar` by
        `bnvar_inv**-2 - eps`, an anonymous sum by `n * bnmeani`. Only quantities of the
        same kind are traded (rows for rows, constants for constants). An *input* is
        replaced only if that makes the gradient cheaper (x by `log(out) + lse` in
        softmax), and no rewrite may divide by a quantity that can be 0 other than those
        in `allowed` (never `/ bngain`; never `/ out`, which is 0 at zero loss).
        """
        f = self.forward
        inputs = set(f.inputs.values())
        for step in reversed(f.steps):
            if step.is_sum:
                continue
            for dep in sorted(step.expr.free_symbols & (inputs | {s.symbol for s in f.steps}),
                              key=sp.default_sort_key):
                if dep not in expr.free_symbols:
                    continue
                if support(dep, f.indices) != support(step.symbol, f.indices):
                    continue
                inverse = unique_inverse(step.symbol, step.expr, dep)
                if inverse is None:
                    continue
                candidate = self.close_sums(normalize_sums(sp.powsimp(
                    expr.xreplace({dep: inverse}))))
                if not self.zero_divisors(candidate) <= allowed:
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

    def canonical(self, expr):
        """`expr` written with the inputs only, sums expanded by linearity and everything
        else multiplied out: two ways of writing one quantity usually come out the same."""
        expr = self.to_inputs(expr)
        for _ in range(3):
            expr = normalize_sums(sp.expand(sp.powsimp(expr)))
        return expr

    def difference(self, a, b):
        """a - b in canonical form: 0 if the two are equal.

        The canonical form of a - b, then the numerator of that over a common denominator
        (sympy's together and cancel: 1/(1 + v) + v/(1 + v) - 1 is 0). If algebra still
        leaves something, a and b are compared in float64 at random inputs (three draws
        of arrays and axis lengths): equal there to 1e-9, the difference is 0; otherwise
        the canonical form is returned, which is not 0.
        """
        d = self.canonical(a - b)
        if d == 0:
            return d
        numerator, _ = sp.fraction(sp.cancel(sp.together(d)))
        if self.canonical(numerator) == 0 or self.equal_numerically(a, b):
            return sp.S.Zero
        return d

    def equal_numerically(self, a, b, draws=3, rtol=1e-9):
        """Whether `a` and `b` agree at random float64 inputs (see `difference`)."""
        f = self.forward
        a, b = self.to_inputs(sp.sympify(a)), self.to_inputs(sp.sympify(b))
        axes = list(f.axes.values())
        printer = KernelPrinter({ax.index: f"({k - len(axes)},)" for k, ax in enumerate(axes)})
        indexed = a.atoms(sp.Indexed) | b.atoms(sp.Indexed)
        labels = {q.base.label for q in indexed}
        numbers = {s for s in a.free_symbols | b.free_symbols if isinstance(s, sp.Symbol)}
        quantities = sorted(indexed | (numbers - labels - f.indices), key=sp.default_sort_key)
        names = [_label(q) for q in quantities]
        both = compile_source(f"def both({', '.join(names)}):\n    return "
                              f"{printer.doprint(numbers_as_floats(a))}, "
                              f"{printer.doprint(numbers_as_floats(b))}\n", "both")
        rng = np.random.default_rng(0)
        for _ in range(draws):
            lengths = {ax.length: int(rng.integers(3, 7)) for ax in axes}
            values = {_label(q): lengths[q] if q in lengths else
                      self._random_value(q, axes, lengths, rng) for q in quantities}
            try:
                with np.errstate(all="ignore"):
                    va, vb = (np.asarray(v, float) for v in both(**values))
            except (TypeError, ValueError, ArithmeticError):
                return False
            if not (np.isfinite(va).all() and np.isfinite(vb).all()):
                return False
            scale = max(np.abs(va).max(initial=0), np.abs(vb).max(initial=0), 1e-300)
            if np.abs(va - vb).max(initial=0) > rtol * scale:
                return False
        return True

    def _random_value(self, quantity, axes, lengths, rng):
        """A random array for `quantity` (an input, g or a number), in its domain: one-hot
        along its axis for a one-hot input, in [0.5, 1.5] for a positive one."""
        if not isinstance(quantity, sp.Indexed):
            return rng.uniform(0.5, 1.5) if quantity.is_positive else rng.standard_normal()
        shape = [lengths[ax.length] if ax.index in quantity.indices else 1 for ax in axes]
        one_hot = self.forward.one_hots.get(str(quantity.base.label))
        if one_hot is not None:
            k = list(self.forward.axes).index(one_hot)
            chosen = rng.integers(0, shape[k], shape[:k] + [1] + shape[k + 1:])
            return (np.arange(shape[k]).reshape([-1 if j == k else 1 for j in range(len(shape))])
                    == chosen).astype(float)
        if quantity.is_positive:
            return rng.uniform(0.5, 1.5, shape)
        return rng.standard_normal(shape)

    def checked(self):
        """What anomaly mode checks on every call besides the one-hot inputs, as
        (quantity, what was declared, holds(values, tolerance) -> bool array): each fact
        stated with f.assume, each step whose declared sign sympy could not prove. NaN
        passes (anomaly mode has its own word for NaN)."""
        f = self.forward
        found = []
        for q, v in f.stated.items():
            found.append((q, f"the definition assumes {text(f.step_of(q).definition())} = {v}",
                          lambda a, tol, v=float(v): ~(np.abs(a - v) > tol * max(1, abs(v)))))
        for step in f.unproved:
            if step.symbol.is_positive:
                found.append((step.symbol, f"the step {step.name} is declared positive",
                              lambda a, tol: ~(a <= 0)))
            else:
                found.append((step.symbol, f"the step {step.name} is declared nonnegative",
                              lambda a, tol: ~(a < 0)))
        return found

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


def _label(quantity):
    """The name a quantity has in numpy code: x for x[i], n for n."""
    return str(quantity.base.label if isinstance(quantity, sp.Indexed) else quantity)
