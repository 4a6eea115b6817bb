"""The algebra the derivations share: sums over an axis of symbolic length, costs, inverses,
and the printer that turns a sympy expression into numpy code.

A quantity that varies along a reduced axis is an `Indexed` (`x[i]`); one that does not is a
plain `Symbol`. A reduction is a sympy `Sum(h, (i, 0, n - 1))` over an axis of symbolic
length `n`. Printed as numpy, `x[i]` is simply the array `x` and the sum is
`numpy.add.reduce(h, axis=..., keepdims=True)` (numpy.sum without its Python wrapper): every
array holds all positions at once.
"""
import ast
import keyword
import math
import random
import re

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence


# ---------------------------------------------------------------- sums

def support(expr, indices):
    """The axes (index symbols) `expr` varies along; a summed index is bound, not free."""
    return frozenset(expr.free_symbols & indices)


def split_sum(summand, index, length, expand=False):
    """Sum over `index` by linearity: a sum of terms is split, constants are pulled out,
    and the sum of a constant c is length * c.

    Products of varying factors are left whole (the sum of g*(x - mean) stays one sum, which
    is cheaper and more accurate than sum(g*x) - mean*sum(g)) unless `expand` multiplies
    them out first, as finding closed forms needs.
    """
    if expand:
        summand = sp.expand_mul(summand)
    total = sp.S.Zero
    for term in sp.Add.make_args(summand):
        constant, varying = [], []
        for factor in sp.Mul.make_args(term):
            (varying if index in factor.free_symbols else constant).append(factor)
        if not varying:
            total += length * term
        elif len(varying) == 1 and varying[0].is_Add:
            total += sp.Mul(*constant) * split_sum(varying[0], index, length)
        else:
            total += sp.Mul(*constant) * sp.Sum(sp.Mul(*varying), (index, 0, length - 1))
    return total


def normalize_sums(expr):
    """Rewrite every Sum in `expr` by linearity (`split_sum`), innermost first."""
    return expr.replace(lambda e: isinstance(e, sp.Sum),
                        lambda e: split_sum(e.function, e.limits[0][0], e.limits[0][2] + 1))


def sums_in(expr):
    """The Sum nodes of `expr`."""
    return expr.atoms(sp.Sum)


def kinks_as_pytorch(expr):
    """Heaviside(u), which sympy makes 1/2 at 0, as Heaviside(u, 0): the derivative of
    Max(x, 0) (relu) and of Abs is 0 at the kink, as the engine's relu and PyTorch's."""
    return expr.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1:] != (0,),
                        lambda e: sp.Heaviside(e.args[0], 0))


# ---------------------------------------------------------------- choosing and solving

def cost(expr):
    """How expensive an expression is to evaluate: sympy's operation count, sums included."""
    return int(sp.count_ops(expr)) + 3 * len(sums_in(expr))


# ---------------------------------------------------------------- division by zero
# A rewrite must never divide by a quantity that can be 0 where the chain rule's formula
# did not: `sum(mask*(x - y)**2)/sum(mask)` has a gradient at zero loss, but written through
# the output (`out/sum(mask*(x - y)**2)`) it is 0/0 there. Each form's divisors are listed,
# those that cannot be 0 are set aside, and the rest compared across forms.

def divisors(expr):
    """The factors of every denominator in `expr` (bases of negative powers, split)."""
    found = []
    for p in sorted(expr.atoms(sp.Pow), key=sp.default_sort_key):
        if p.exp.is_negative:
            found += [f for f in sp.Mul.make_args(p.base) if not f.is_number]
    return found


def never_zero(expr, constants=frozenset(), definition=lambda symbol: None):
    """True if `expr` cannot be 0 for finite inputs, even after rounding.

    `constants` are symbols known to be numbers >= a positive bound (an axis length, a
    number argument checked to be > 0); `definition(symbol)` gives a named step's
    right-hand side (or None). A sum of nonnegative terms one of which is such a bound
    (`bnvar + eps`, `1 + exp(-x)`) qualifies; `exp(x)` alone does not: it underflows to 0.
    """
    def nz(e):
        if e.is_number:
            return e.is_zero is False
        if e in constants:
            return True
        rhs = definition(e)
        if rhs is not None:
            return nz(rhs)
        if e.is_Mul:
            return all(nz(a) for a in e.args)
        if e.is_Pow:
            return nz(e.base)
        if isinstance(e, sp.Abs):
            return nz(e.args[0])
        if isinstance(e, sp.cosh):
            return True
        if isinstance(e, sp.Sum):
            return (e.function.is_positive or e.function.is_negative) and nz(e.function)
        if e.is_Add:
            for sign in (1, -1):
                terms = [sign * t for t in e.args]
                if all(t.is_nonnegative for t in terms) and any(
                        t.is_positive and nz(t) for t in terms):
                    return True
        return False
    return nz(expr)


def zero_divisors(expr, never, canonical):
    """The divisors of `expr` that may be 0, each as `canonical` writes it (so the same
    quantity written two ways is counted once), powers and signs removed."""
    found = set()
    for factor in divisors(expr):
        while factor.is_Pow:
            factor = factor.base
        if never(factor):
            continue
        factor = canonical(factor)
        for part in sp.Mul.make_args(factor):
            while part.is_Pow:
                part = part.base
            if not part.is_number:
                found.add(-part if part.could_extract_minus_sign() else part)
    return found


def sample_value(symbol, rng):
    """A random value for `symbol`, inside the domain its assumptions describe."""
    if symbol.is_integer:
        return rng.randint(3, 7)
    magnitude = rng.uniform(0.3, 1.5)
    if symbol.is_positive or symbol.is_nonnegative:
        return magnitude
    return magnitude if rng.random() < 0.5 else -magnitude


def unique_inverse(equation_lhs, rhs, unknown):
    """The one real solution of `equation_lhs = rhs` for `unknown`, or None.

    sympy's `solve` may return several branches (tanh gives two logarithms, one of them
    complex for real arguments). Each is checked numerically at random points: plugging the
    forward value back in must give the unknown back. Exactly one branch must pass.
    """
    if rhs.has(sp.Piecewise):             # a choice between formulas: not one-to-one
        return None
    plain = sp.Dummy("u", **_assumptions(unknown))
    try:
        solutions = sp.solve(sp.Eq(equation_lhs, rhs.xreplace({unknown: plain})), plain)
    except (NotImplementedError, ValueError, TypeError):
        return None
    good = [s.xreplace({plain: unknown}) for s in solutions
            if _inverts(s, equation_lhs, rhs.xreplace({unknown: plain}), plain)]
    return good[0] if len(good) == 1 else None


def _inverts(solution, lhs, rhs, unknown, trials=6):
    """Whether `solution` gives `unknown` back at random points. The symbols are drawn in
    sorted order, never in set order, so the points (and the answer) are the same under
    every PYTHONHASHSEED; a point sympy cannot evaluate to a number is a failure."""
    rng = random.Random(0)
    others = sorted((rhs.free_symbols | solution.free_symbols) - {unknown, lhs},
                    key=sp.default_sort_key)
    for _ in range(trials):
        values = {s: sample_value(s, rng) for s in others}
        values[unknown] = sample_value(unknown, rng)
        try:
            forward = complex(rhs.evalf(30, subs=values))
            if forward.imag or not np.isfinite(forward.real):
                return False
            values[lhs] = forward.real
            back = complex(solution.evalf(30, subs=values))
        except (TypeError, ValueError, ArithmeticError):
            return False
        if abs(back.imag) > 1e-12 or abs(back.real - values[unknown]) > 1e-9 * (1 + abs(values[unknown])):
            return False
    return True


def _assumptions(symbol):
    keys = ("real", "positive", "nonnegative", "integer")
    return {k: True for k in keys if getattr(symbol, "is_" + k)}


# ---------------------------------------------------------------- numpy code

class LogSoftmax(sp.Function):
    """h - log(sum(exp(h))) along `index`, as kernels print it (`KernelPrinter`); sympy
    never sees it: kernel writers put it in place of that difference just before printing."""
    nargs = 2


class KernelPrinter(NumPyPrinter):
    """sympy -> numpy source: x[i] is the array x, a Sum is numpy.add.reduce(...,
    keepdims=True), as the module says. A sum of `onehot * h` over the axis along which
    `onehot` is declared one-hot (`selectors`: {label: index}) is `_pick(onehot, h, axis)`,
    which never forms 0 * inf (see _pick)."""

    def __init__(self, axis_names=None, selectors=None):
        super().__init__({"fully_qualified_modules": True, "inline": True,
                          "allow_unknown_functions": False})
        self.axis_names = axis_names or {}
        self.selectors = selectors or {}
        self.indices = frozenset(self.axis_names)

    # Python evaluates a*b*c and a + b + c left to right, each step a pass over its operands.
    # Quantities that vary along fewer reduced axes (1/n, rstd, a row's sum: one number per
    # row) are combined first, so they meet a whole array once: layer norm's input gradient
    # went from 8 passes over (32, 64, 128) to 6 this way.

    def _extent(self, e):
        """How many reduced axes `e` varies along."""
        return len(support(e, self.indices))

    def _as_ordered_terms(self, expr, order=None):
        """An Add's terms; when two or more vary along fewer axes than the sum, those first
        (sorted stably), so they are added together before they meet the arrays."""
        terms = super()._as_ordered_terms(expr, order)
        extent = self._extent(expr)
        if sum(self._extent(t) < extent for t in terms) < 2:
            return terms
        return sorted(terms, key=self._extent)

    def _print_Mul(self, e):
        """A product as (the factors that vary along fewer axes) * (the rest); a minus sign
        leads, where Python applies it to the first factor only."""
        if e.as_coeff_Mul()[0] < 0:
            return "-" + self._print(-e)
        extent = self._extent(e)
        factors = sp.Mul.make_args(e)
        small = [f for f in factors if self._extent(f) < extent]
        if not small or len(small) == len(factors):
            return super()._print_Mul(e)
        big = [f for f in factors if self._extent(f) == extent]
        level = precedence(e)
        return (f"{self.parenthesize(sp.Mul(*small), level)}*"
                f"{self.parenthesize(sp.Mul(*big), level, strict=True)}")

    def _print_Indexed(self, e):
        return self._print(e.base.label)

    def _print_LogSoftmax(self, e):
        h, index = e.args
        return f"_log_softmax({self._print(h)}, {self.axis_names[index]})"

    def _print_Sum(self, e):
        (index, _, _), = e.limits
        axis = self.axis_names[index]
        picked = self._picked(e.function, index)
        if picked is not None:
            onehot, rest = picked
            return f"_pick({self._print(onehot)}, {self._print(rest)}, {axis})"
        return f"numpy.add.reduce({self._print(e.function)}, axis={axis}, keepdims=True)"

    def _picked(self, summand, index):
        """(onehot, rest) if `summand` is onehot * rest with `onehot` one-hot along `index`."""
        factors = sp.Mul.make_args(summand)
        onehot = [f for f in factors if isinstance(f, sp.Indexed)
                  and self.selectors.get(f.base.label) == index]
        if len(onehot) != 1:
            return None
        return onehot[0], sp.Mul(*[f for f in factors if f is not onehot[0]])

    def _print_Abs(self, e):            # numpy's, not the builtin a step name could shadow
        return f"numpy.abs({self._print(e.args[0])})"

    def _print_Max(self, e):
        return self._nested("numpy.maximum", e.args)

    def _print_Min(self, e):
        return self._nested("numpy.minimum", e.args)

    def _nested(self, fn, args):
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Heaviside(self, e):
        at_zero = e.args[1] if len(e.args) > 1 else sp.S.Half
        return f"numpy.heaviside({self._print(e.args[0])}, {self._print(at_zero)})"

    def _print_erf(self, e):
        return f"_erf({self._print(e.args[0])})"

    def _print_erfc(self, e):
        return f"_erfc({self._print(e.args[0])})"


def numbers_as_floats(expr):
    """Irrational constants (pi, sqrt(2)) as float literals, so float32 stays float32.

    numpy's `numpy.sqrt(2)` is a float64 scalar, which would turn a float32 array into
    float64; a Python float literal does not.
    """
    return expr.replace(
        lambda e: e.is_number and not e.is_Rational and not e.is_Float
        and (e.is_NumberSymbol or not e.is_Atom) and e.is_real,
        lambda e: sp.Float(e.evalf(20), 20))


def _elementwise(fn):
    """`fn` of a Python float applied to each element, in the array's float dtype."""
    def apply(x):
        x = np.asarray(x)
        return np.vectorize(fn, otypes=[x.dtype if x.dtype.kind == "f" else float])(x)
    apply.__name__ = fn.__name__
    return apply


_erf = _elementwise(math.erf)        # numpy has no error function: math's, per element
_erfc = _elementwise(math.erfc)      # 1 - erf(x) without cancelling for large x


# Each helper stands alone: generated programs carry the source of the helpers they call.

def _logsumexp(h, axis):
    """log(sum(exp(h))) over `axis` with keepdims, shifted by the maximum: no overflow."""
    m = np.maximum.reduce(h, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return np.log(np.add.reduce(np.exp(h - m), axis=axis, keepdims=True)) + m


def _log_softmax(h, axis):
    """h - log(sum(exp(h))) over `axis` with keepdims, computed as PyTorch does: (h - m) -
    log(sum(exp(h - m))), m the maximum. h - _logsumexp(h) would lose the log-sum (at most
    log of the axis' length) wherever it is below the spacing of floats near m (|m| > ~1e16
    in float64): a loss of 0 for logits [1e200, 1e200], not log(2)."""
    m = np.maximum.reduce(h, axis=axis, keepdims=True)
    shifted = h - np.where(np.isfinite(m), m, 0)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))


def _pick(onehot, h, axis):
    """sum(onehot * h) over `axis` with keepdims, where `onehot` selects: an entry it does
    not select adds 0 even if h is infinite there (as indexing h[range(n), Y] would), so
    a logit of -inf for another class leaves the loss finite. Only when a sum came out
    NaN are the products summed again through numpy.where: other calls pay one check."""
    products = onehot * h
    total = np.add.reduce(products, axis=axis, keepdims=True)
    if np.isnan(total).any():
        total = np.add.reduce(np.where(onehot != 0, products, 0), axis=axis, keepdims=True)
    return total


# what inlined kernels may call, by name
HELPERS = {"_logsumexp": _logsumexp, "_log_softmax": _log_softmax, "_pick": _pick}


def inline_kernel(source, bind, saved, fresh):
    """A kernel's statements for another function's body (tensorgrad.codegen writes fused
    ops this way, so its code shows the derived formulas).

    `source` is a kernel (`def name(args): ...`); `bind` maps its arguments to source text
    (a name or a literal) to put in their place; its own variables get new names from
    `fresh(name)`. What the forward saves (`saved.update(x=x)`) is recorded in `saved` as
    {x: new name}; a gradient's `saved['x']` reads that name back. Returns the statements,
    the result expression and the helpers it calls ({name: function}, from `HELPERS`).
    """
    function = ast.parse(source).body[0]
    names, helpers, lines = dict(bind), {}, []

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id == "numpy":
                return ast.copy_location(ast.Name("np", ast.Load()), node)
            if node.id in HELPERS:
                helpers[node.id] = HELPERS[node.id]
                return node
            if node.id not in names:
                raise KeyError(f"kernel variable {node.id!r} has no binding")
            return ast.copy_location(ast.parse(names[node.id], mode="eval").body, node)

    def code(expression):
        return ast.unparse(Rename().visit(expression))

    for statement in function.body:
        if isinstance(statement, ast.Return):
            return lines, code(statement.value), helpers
        if isinstance(statement, ast.Expr):                       # saved.update(a=a, ...)
            saved.update({k.arg: names[k.value.id] for k in statement.value.keywords})
            continue
        (target,), value = statement.targets, statement.value
        if isinstance(value, ast.Subscript) and getattr(value.value, "id", None) == "saved":
            names[target.id] = saved[value.slice.value]           # x = saved['x']
            continue
        expression = code(value)
        names[target.id] = fresh(target.id)
        lines.append(f"{names[target.id]} = {expression}")
    raise ValueError("inline_kernel: the kernel has no return statement")


def identifier(name):
    """`name` made into a Python identifier for a kernel's function name ('<lambda>' ->
    '_lambda_', 'sum of cubes' -> 'sum_of_cubes'); the op keeps its own name for display."""
    name = re.sub(r"\W", "_", name)
    return "_" + name if not name or name[0].isdigit() or keyword.iskeyword(name) else name


def compile_source(source, name):
    """Turn generated kernel source into a function (as sympy's lambdify does).

    The kernel's module name is tensorgrad's, so numpy's floating-point warnings from it
    are silenced as the op table's are (tensorgrad.ops): NaN and Inf flow on quietly
    unless anomaly mode is on.
    """
    namespace = {"numpy": np, "_erf": _erf, "_erfc": _erfc, "__name__": __name__} | HELPERS
    exec(compile(source, f"<tensorgrad.symbolic {name}>", "exec"), namespace)
    fn = namespace[name]
    fn.source = source
    return fn
