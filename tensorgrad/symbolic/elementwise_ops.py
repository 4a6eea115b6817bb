"""Elementwise ops defined once, by a formula.

`derive_local` differentiates an op's formula with sympy, simplifies the result (preferring a
form that reuses the op's output, so `1 - tanh(x)**2` becomes `1 - out**2`) and
`elementwise` turns a formula into a working tensorgrad op whose gradient is that derived
derivative, compiled to numpy once per dtype.

The op table's own elementwise ops (exp, tanh, ...) keep their hand-written gradients at run
time; their derived derivatives are there to read and to check the hand-written ones against.
"""
import functools

import numpy as np
import sympy as sp

from .. import grad_mode, ops
from ..higher import Recorded
from ..tensor import Tensor, apply
from .algebra import (KernelPrinter, compile_source, cost, identifier, kinks_as_pytorch,
                      never_zero, numbers_as_floats, unique_inverse, zero_divisors)
from .show import latex
from .stability import Probe, stable_rewrites

DOMAINS = {"real": {"real": True}, "positive": {"positive": True}}


class LocalDerivative:
    """The derivation of an elementwise op's local derivative(s), for display and compiling.

    `formula` is the forward (a sympy expression of `variables`) and `computed` the form
    the forward is compiled from, if another (see `forward_form`); `raw[v]` is sympy's
    derivative with respect to v, `simplified[v]` the form tensorgrad uses, which may be
    written with `out`, the op's output.
    """

    def __init__(self, name, formula, variables, raw, simplified, out, computed=None):
        self.name, self.formula, self.variables = name, formula, variables
        self.raw, self.simplified, self.out = raw, simplified, out
        self.computed = computed if computed != formula else None

    def __getitem__(self, variable):
        """The simplified derivative with respect to the variable named `variable`."""
        return self.simplified[self._variable(variable)]

    def _variable(self, name):
        for v in self.variables:
            if v.name == str(name):
                return v
        raise KeyError(f"{self.name}: no variable {name}; it has "
                       f"{', '.join(v.name for v in self.variables)}")

    def kernel(self, variable):
        """The simplified derivative by `variable` compiled to numpy: f(out, *variables)."""
        v = self._variable(variable)
        return compile_elementwise(f"{self.name}_d{v}", self.simplified[v],
                                   (self.out,) + tuple(self.variables))

    def __str__(self):
        lines = [f"{self.name}: out = {self.formula}"]
        if self.computed is not None:
            lines[0] += f"  =  {self.computed}"
        for v in self.variables:
            line = f"  d out/d{v} = {self.raw[v]}"
            if self.simplified[v] != self.raw[v]:
                line += f"  =  {self.simplified[v]}"
            lines.append(line)
        return "\n".join(lines)

    def __repr__(self):
        return f"<LocalDerivative {self.name}: " + "; ".join(
            f"d/d{v} = {self.simplified[v]}" for v in self.variables) + ">"

    def latex(self):
        """The derivation as a LaTeX `aligned` block: the forward (formula = form computed,
        if another), then each derivative, raw = simplified."""
        lines = [rf"\mathrm{{out}} &= {latex(self.formula)}"]
        if self.computed is not None:
            lines[0] += f" = {latex(self.computed)}"
        for v in self.variables:
            line = (rf"\frac{{\partial\,\mathrm{{out}}}}{{\partial {latex(v)}}} &= "
                    rf"{latex(self.raw[v])}")
            if self.simplified[v] != self.raw[v]:
                line += f" = {latex(self.simplified[v])}"
            lines.append(line)
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def parse_formula(name, formula, variables=("x",), domain="real", constants=None):
    """`formula` (a string or sympy expression) as a sympy expression of `variables`.

    Other names must be given numbers in `constants`; anything left over is an error naming
    the symbols that cannot be bound.
    """
    if domain not in DOMAINS:
        raise ValueError(f"{name}: domain must be one of {sorted(DOMAINS)}, got {domain!r}")
    symbols = tuple(sp.Symbol(v, **DOMAINS[domain]) for v in variables)
    constants = dict(constants or {})
    names = {s.name: s for s in symbols} | {k: sp.Symbol(k) for k in constants}
    if isinstance(formula, str):
        try:
            expr = sp.sympify(formula, locals=names)
        except (sp.SympifyError, SyntaxError, TypeError) as e:
            raise ValueError(f"{name}: cannot read the formula {formula!r}: {e}") from None
    elif isinstance(formula, sp.Basic):
        expr = formula.xreplace({s: names[s.name] for s in formula.free_symbols
                                 if s.name in names})
    else:
        raise TypeError(f"{name}: the formula must be a string or a sympy expression, "
                        f"got {type(formula).__name__}")
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"{name}: the formula {formula!r} is not an expression with a value "
                         f"(got a {type(expr).__name__})")
    expr = expr.xreplace({names[k]: sp.sympify(v) for k, v in constants.items()})
    unbound = sorted(s.name for s in expr.free_symbols if s not in symbols)
    if unbound:
        raise ValueError(
            f"{name}: the formula {expr} has free symbol(s) {', '.join(unbound)} that cannot be "
            f"bound: an elementwise op's formula may use only {', '.join(variables)}; give "
            f"other names a value as a keyword constant, e.g. {unbound[0]}=0.1")
    return expr, symbols


def derive_local(name, formula, variables=("x",), domain="real", constants=None,
                 forward=None, computed=None):
    """Differentiate an elementwise formula with respect to each variable, and simplify.
    `forward`, the numpy function that will compute the output, if known, lets the choice
    of form see the output as it will really be (see stability.Probe); `computed`, the
    form it was compiled from, is shown with the derivation."""
    expr, symbols = parse_formula(name, formula, variables, domain, constants)
    out = output_symbol(expr)
    raw = {v: differentiate(name, expr, v) for v in symbols}
    simpler = simpler_formula(expr)
    simplified = {v: _simplest(raw[v], expr, symbols, out, domain == "positive", forward,
                               also=() if simpler is None else
                               [(differentiate(name, simpler, v), simpler)])
                  for v in symbols}
    return LocalDerivative(name, expr, symbols, raw, simplified, out, computed)


def differentiate(name, expr, v):
    """sympy's derivative of `expr` by `v`, with relu's kink convention; an error naming
    what sympy cannot differentiate."""
    d = sp.diff(expr, v)
    if d.has(sp.Derivative, sp.Subs):
        bad = sorted(str(a.expr) for a in d.atoms(sp.Derivative))
        raise ValueError(f"{name}: {expr} is not differentiable with respect to {v}: "
                         f"sympy cannot differentiate {', '.join(bad) or d}")
    return kinks_as_pytorch(d)                                  # relu'(0) = 0, as PyTorch


def output_symbol(expr):
    """The symbol `out` for the output of `expr`, with the sign sympy can tell it has."""
    if expr.is_positive:
        return sp.Symbol("out", positive=True)
    if expr.is_nonnegative:
        return sp.Symbol("out", nonnegative=True)
    return sp.Symbol("out", real=True)


def simpler_formula(expr):
    """sympy's simplification of a small formula if it is cheaper, else None: the
    lecture's tanh written as (exp(2*x) - 1)/(exp(2*x) + 1) is tanh(x). (Cached: the
    forward's form and the derivatives both ask.)"""
    if cost(expr) > MAX_SIMPLIFY_FORMULA_COST:
        return None
    simpler = _simplify(expr)
    return simpler if cost(simpler) < cost(expr) else None


@functools.lru_cache(maxsize=256)
def _simplify(expr):
    return sp.simplify(expr)


def _simplest(d, expr, symbols, out, positive=False, forward=None, also=()):
    """The best correct form of the derivative `d` of `expr`: accurate, then cheap, then
    written with `out`.

    Candidates: `d` itself; sympy's simplification of it (for small expressions: simplify
    is slow on large ones); `d` with the forward replaced by `out` (1 - tanh(x)**2 becomes
    1 - out**2); each of those with a variable written through the output, when the
    formula has a single real inverse (x = log(out/(1 - out)) turns sigmoid's
    exp(-x)*out**2 into out*(1 - out)); and the numerically safe rewrites of all of them
    (stability.stable_rewrites: softplus's 1 - exp(-out) as -expm1(-out)). `also` adds
    pairs (derivative of a simpler form of the formula, that form), each as it is and
    with the form replaced by `out`: the derivative of (exp(x) - exp(-x))/(exp(x) + exp(-x))
    is NaN at 100 in float32 whatever its form, tanh(x)'s is 1 - out**2.

    A candidate may not divide by a quantity that can be 0 unless `d` already does
    (`_without_new_zero_divisors`). Of the rest, the one with the fewest inaccurate points
    at float32's and float64's extremes wins (stability.Probe), then the cheapest (sympy's
    operation count), then one whose gradient is right even where the output it is fed
    has rounded the derivative away, then one that reuses the output. So tanh keeps
    1 - out**2, which is 0 at x = 10 in float32 as PyTorch's is (out rounds to 1;
    1/cosh(x)**2 costs more), while expm1's derivative is exp(x), not out + 1, which costs
    as much and is 0 at x = -20 in float32 (out rounds to -1).
    """
    forms = [d, d.subs(expr, out)] + [f for a, form in also for f in (a, a.subs(form, out))]
    if cost(d) <= MAX_SIMPLIFY_COST:
        forms.append(sp.simplify(d))
    if cost(expr) <= MAX_SOLVE_COST:
        for v in symbols:
            inverse = unique_inverse(out, expr, v)
            if inverse is not None:
                forms += [sp.simplify(f.xreplace({v: inverse}))
                          for f in list(forms) if v in f.free_symbols]
    forms += [r for f in list(forms) for r in stable_rewrites(f)]
    safe = _without_new_zero_divisors(forms, d, expr, out)
    probe = Probe(expr, symbols, out, positive, forward)
    return min(safe, key=lambda f: (probe.failures(f), cost(f), probe.failures(f, d),
                                    out not in f.free_symbols))


def forward_form(expr, symbols, positive=False):
    """The form of `expr` a compiled forward computes, chosen as derivatives are
    (`_simplest`): the fewest inaccurate points at float32's and float64's extremes, then
    the cheapest; `expr` as written when nothing beats it.

    Candidates: `expr`, a simpler form of it (`simpler_formula`: tanh(x) for the lecture's
    (exp(2*x) - 1)/(exp(2*x) + 1), which is inf/inf = NaN at 100 in float32), and the
    numerically safe rewrites of both (stability.stable_rewrites: log(1 + exp(x)) as
    Max(x, 0) + log1p(exp(-|x|)), exp(x) - 1 as expm1(x), 1 + erf(u) as erfc(-u)).
    """
    forms = [expr] + [f for f in [simpler_formula(expr)] if f is not None]
    forms += [r for f in list(forms) for r in stable_rewrites(f)]
    out = output_symbol(expr)
    forms = _without_new_zero_divisors(forms, expr, expr, out)
    if len(forms) == 1:
        return expr
    probe = Probe(expr, symbols, out, positive)
    return min(forms, key=lambda f: (probe.failures(f), cost(f)))


def _without_new_zero_divisors(forms, reference, expr, out):
    """`forms`, without repeats, less those that divide by a quantity that can be 0 where
    `reference` does not (`out` stands for `expr`): log's 1/x must not become
    out/(x*out), as log(x) is 0 at x = 1."""
    never = lambda e: never_zero(e, definition={out: expr}.get)     # noqa: E731
    canonical = lambda e: sp.expand(e.xreplace({out: expr}))        # noqa: E731
    allowed = zero_divisors(reference, never, canonical)
    safe = []
    for f in forms:
        if f not in safe and zero_divisors(f, never, canonical) <= allowed:
            safe.append(f)
    return safe


MAX_SIMPLIFY_COST = 20    # sympy.simplify takes seconds on gelu_tanh's derivative
MAX_SIMPLIFY_FORMULA_COST = 10   # tanh written with exp costs 9; gelu_tanh's 13 takes 150 ms
MAX_SOLVE_COST = 8        # and sympy.solve on a formula that large may not finish


# ---------------------------------------------------------------- compiling to an op

def compile_elementwise(name, expr, params):
    """`expr` (of the sympy symbols `params`) as a numpy function of arrays, with its source."""
    printer = KernelPrinter()
    args = ", ".join(p.name for p in params)
    name = identifier(name)
    source = f"def {name}({args}):\n    return {printer.doprint(numbers_as_floats(expr))}\n"
    return compile_source(source, name)


class ElementwiseFunction:
    """A differentiable elementwise op made from a formula: call it on a Tensor.

    `op` is its class in the op-table pattern: `forward` on arrays (the given numpy function,
    or `forward_form` compiled: the formula or a numerically safer form of it, see
    `forward_form`) and `grad_x`, the derived derivative compiled to numpy times the
    incoming gradient. `derivative` shows the derivation.
    """

    def __init__(self, name, formula, forward=None, domain="real", **constants):
        self.name, self.domain = name, domain
        self.formula, (x,) = parse_formula(name, formula, ("x",), domain, constants)
        differentiate(name, self.formula, x)     # what sympy cannot do is named before numpy
        self.forward_form = None if forward else forward_form(
            self.formula, (x,), domain == "positive")
        self.forward_kernel = forward or compile_elementwise(
            f"{name}_forward", self.forward_form, (x,))
        self.derivative = derive_local(name, self.formula, ("x",), domain,
                                       forward=self.forward_kernel,
                                       computed=self.forward_form)
        self._grad = compile_elementwise(f"{name}_derivative",
                                         self.derivative.simplified[x],
                                         (self.derivative.out, x))
        self.op = self._make_op()

    def _make_op(self):
        fn, grad, forward = self.name, self._grad, self.forward_kernel
        positive = self.domain == "positive"

        def forward_(x):
            """The forward, in x's dtype and shape. In anomaly mode, a domain declared
            positive (which the derivation relied on) is checked."""
            if positive and grad_mode._anomaly[-1] and (x <= 0).any():
                count = np.count_nonzero(x <= 0)
                raise ValueError(f"{fn}: declared domain='positive', but x has {count} "
                                 f"value{'s' if count > 1 else ''} <= 0 (the smallest "
                                 f"{float(x.min())!r})")
            out = forward(x)
            return np.broadcast_to(np.asarray(out, dtype=x.dtype), x.shape)

        def grad_x(g, out, x):
            """g times the derived derivative."""
            if isinstance(x, Recorded):         # a recorded backward pass (gradients of
                return g * Recorded(self.derivative_function()(x.t))     # gradients)
            return g * np.asarray(grad(out, x), dtype=x.dtype)

        (x,) = self.derivative.variables
        shown = {"x": str(self.derivative.simplified[x])}               # for drawings
        return type(fn.title().replace("_", ""), (ops.Op,),
                    {"name": fn, "formula": str(self.formula), "derivative": shown,
                     "forward": forward_,
                     "grad_x": grad_x, "__doc__": f"{fn}(x) = {self.formula}, derived."})

    @functools.cache
    def derivative_function(self):
        """The derivative as an elementwise op of its own (its derivative derived in turn),
        for a backward pass recorded in the graph: `tensorgrad.higher`."""
        (x,) = self.derivative.variables
        formula = self.derivative.simplified[x].subs(self.derivative.out, self.formula)
        return ElementwiseFunction(f"d_{self.name}", formula, domain=self.domain)

    def __call__(self, input):
        """Apply the op to each element of `input` (a Tensor, or anything tensor() takes)."""
        t = input if isinstance(input, Tensor) else Tensor(input)
        return apply(self.op, t._floating())

    def __repr__(self):
        return f"<elementwise op {self.name}: {self.formula}>"


def elementwise(name, formula, forward=None, domain="real", **constants):
    """A new differentiable elementwise op from its formula alone.

        softplus = elementwise("softplus", "log(1 + exp(x))", forward=lambda x: np.logaddexp(0, x))
        y = softplus(x)                       # a Tensor in the graph; y.sum().backward() works

    The formula is a string sympy reads, or a sympy expression, in the variable `x`; other
    names need a value as keyword constants (`elementwise("leaky", "Max(x, a*x)", a=0.01)`).
    `forward` optionally replaces the compiled formula with a numerically better numpy
    function of the same value; the gradient is always the derived one. `domain="positive"`
    declares x > 0 (for log, sqrt and powers).
    """
    return ElementwiseFunction(name, formula, forward, domain, **constants)


# ---------------------------------------------------------------- the built-in formulas

def table_ops():
    """The op table's ops that carry a formula, by name (exp, tanh, pow, ...)."""
    return {c.name: c for c in vars(ops).values()
            if isinstance(c, type) and issubclass(c, ops.Op) and c.formula}


POSITIVE_DOMAIN = {"log", "sqrt", "pow"}     # formulas that are real only for x > 0 (or a > 0)

DERIVED_OPS = {   # elementwise ops that exist only as formulas; their gradients are derived
    "softplus": ("log(1 + exp(x))", lambda x: np.logaddexp(0, x)),
    "gelu": ("x/2*(1 + erf(x/sqrt(2)))", None),
    "gelu_tanh": ("x/2*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))", None),
}

_local_cache, _derived_cache = {}, {}


def derived_op(name):
    """The built-in formula-only op `name` (softplus, gelu, gelu_tanh), made on first use."""
    if name not in _derived_cache:
        if name not in DERIVED_OPS:
            raise KeyError(f"no derived elementwise op {name!r}; there are "
                           f"{', '.join(sorted(DERIVED_OPS))}")
        formula, forward = DERIVED_OPS[name]
        _derived_cache[name] = elementwise(name, formula, forward)
    return _derived_cache[name]


def derivative(op):
    """The derived local derivative of an elementwise op, for display (str() and .latex()).

    `op` is a name from the op table ("tanh", "pow", ...), a formula-only op ("gelu"), an
    op made with `elementwise`, or an op class. Derived with sympy once, then cached.
    """
    if isinstance(op, ElementwiseFunction):
        return op.derivative
    name = op if isinstance(op, str) else getattr(op, "name", None)
    if name in _local_cache:
        return _local_cache[name]
    table = table_ops()
    if name in table:
        formula = table[name].formula
        variables = ("x",) if "x" in formula else ("a", "b")
        domain = "positive" if name in POSITIVE_DOMAIN else "real"
        result = derive_local(name, formula, variables, domain)
        if name == "pow":       # a**b is real for a > 0 only; b may be any real
            result = derive_local(name, formula, variables, "positive")
    elif name in DERIVED_OPS:
        result = derived_op(name).derivative
    else:
        raise KeyError(f"derivative: no elementwise op {op!r}; known: "
                       f"{', '.join(sorted(set(table) | set(DERIVED_OPS)))}")
    _local_cache[name] = result
    return result
