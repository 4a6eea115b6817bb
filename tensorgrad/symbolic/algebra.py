"""The algebra the derivations share: sums over an axis of symbolic length, costs, inverses,
and the printer that turns a sympy expression into numpy code.

A quantity that varies along a reduced axis is an `Indexed` (`x[i]`); one that does not is a
plain `Symbol`. A reduction is a sympy `Sum(h, (i, 0, n - 1))` over an axis of symbolic
length `n`. Printed as numpy, `x[i]` is simply the array `x` and the sum is
`numpy.add.reduce(h, axis=..., keepdims=True)` (numpy.sum without its Python wrapper): every
array holds all positions at once.
"""
import ast
import random

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter


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


# ---------------------------------------------------------------- choosing and solving

def cost(expr):
    """How expensive an expression is to evaluate: sympy's operation count, sums included."""
    return int(sp.count_ops(expr)) + 3 * len(sums_in(expr))


def denominators(expr):
    """The free symbols that appear in a denominator of `expr` (bases of negative powers)."""
    found = set()
    for p in expr.atoms(sp.Pow):
        if p.exp.is_negative:
            found |= p.base.free_symbols
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
    plain = sp.Dummy("u", **_assumptions(unknown))
    try:
        solutions = sp.solve(sp.Eq(equation_lhs, rhs.xreplace({unknown: plain})), plain)
    except (NotImplementedError, ValueError, TypeError):
        return None
    good = [s.xreplace({plain: unknown}) for s in solutions
            if _inverts(s, equation_lhs, rhs.xreplace({unknown: plain}), plain)]
    return good[0] if len(good) == 1 else None


def _inverts(solution, lhs, rhs, unknown, trials=6):
    rng = random.Random(0)
    others = (rhs.free_symbols | solution.free_symbols) - {unknown, lhs}
    for _ in range(trials):
        values = {s: sample_value(s, rng) for s in others}
        values[unknown] = sample_value(unknown, rng)
        forward = complex(rhs.evalf(30, subs=values))
        if forward.imag or not np.isfinite(forward.real):
            return False
        values[lhs] = forward.real
        back = complex(solution.evalf(30, subs=values))
        if abs(back.imag) > 1e-12 or abs(back.real - values[unknown]) > 1e-9 * (1 + abs(values[unknown])):
            return False
    return True


def _assumptions(symbol):
    keys = ("real", "positive", "nonnegative", "integer")
    return {k: True for k in keys if getattr(symbol, "is_" + k)}


# ---------------------------------------------------------------- numpy code

class KernelPrinter(NumPyPrinter):
    """sympy -> numpy source: x[i] is the array x, a Sum is numpy.add.reduce(...,
    keepdims=True), as the module says."""

    def __init__(self, axis_names=None):
        super().__init__({"fully_qualified_modules": True, "inline": True,
                          "allow_unknown_functions": False})
        self.axis_names = axis_names or {}

    def _print_Indexed(self, e):
        return self._print(e.base.label)

    def _print_Sum(self, e):
        body = self._print(e.function)
        for index, _, _ in e.limits:
            body = f"numpy.add.reduce({body}, axis={self.axis_names[index]}, keepdims=True)"
        return body

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


def numbers_as_floats(expr):
    """Irrational constants (pi, sqrt(2)) as float literals, so float32 stays float32.

    numpy's `numpy.sqrt(2)` is a float64 scalar, which would turn a float32 array into
    float64; a Python float literal does not.
    """
    return expr.replace(
        lambda e: e.is_number and not e.is_Rational and not e.is_Float
        and (e.is_NumberSymbol or not e.is_Atom) and e.is_real,
        lambda e: sp.Float(e.evalf(20), 20))


def _erf(x):
    """The error function, elementwise (numpy has none; math.erf on each element)."""
    import math
    x = np.asarray(x)
    return np.vectorize(math.erf, otypes=[x.dtype if x.dtype.kind == "f" else float])(x)


def _logsumexp(h, axis):
    """log(sum(exp(h))) over `axis` with keepdims, shifted by the maximum: no overflow."""
    m = np.maximum.reduce(h, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return np.log(np.add.reduce(np.exp(h - m), axis=axis, keepdims=True)) + m


HELPERS = {"_logsumexp": _logsumexp}      # what inlined kernels may call, by name


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


def compile_source(source, name):
    """Turn generated kernel source into a function (as sympy's lambdify does)."""
    namespace = {"numpy": np, "_erf": _erf, "_logsumexp": _logsumexp}
    exec(compile(source, f"<tensorgrad.symbolic {name}>", "exec"), namespace)
    fn = namespace[name]
    fn.source = source
    return fn
