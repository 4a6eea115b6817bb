"""Numerically safe forms: equal formulas are not equally good in floating point.

softplus's derivative `1 - exp(-out)` is exact algebra, but in float32 it is 0 once out is
below 3e-8: at x = -20 the true value 2.1e-9 cancels away. `x*exp(-x)/(1 + exp(-x))**2`
(in silu's derivative) is inf/inf = NaN once exp(-x) overflows. So the simplifier of
elementwise derivatives (elementwise_ops._simplest) does two things besides counting
operations:

- `stable_rewrites` offers forms that avoid both traps: `1 - exp(u)` as `-expm1(u)`,
  `log(1 + u)` as `log1p(u)`, `1 + erf(u)` as `erfc(-u)`, and a product of
  `exp(k*u)` and `(1 + exp(u))**-m` (0 <= k <= m) as logistic factors
  `1/((1 + exp(-u))**k * (1 + exp(u))**(m - k))`, each in (0, 1], whose overflow is
  harmless (1/inf = 0);
- `Probe` evaluates every candidate form in float32 and float64 at points where they are at
  their limits (0, 1e-30, ..., 800, both signs), fed the output as the op's forward
  computes it, and counts the points where the result is NaN or off by more than
  sqrt(eps) relative (tiny absolute) from the same form evaluated exactly (mpmath, with
  as many digits as it takes) at the correctly rounded inputs and output. The form with
  the fewest such points wins; operation count breaks ties.

Judging a form at the correctly rounded output blames the form only for what it does:
`1 - out**2` for tanh at x = 10 in float32 is 0 because out rounds to 1, as PyTorch's tanh
backward is, and that is not the form's fault; `1 - exp(-out)` at out = 2.1e-9 is. A
forward worse than correctly rounded is the form's problem if it uses `out`: then a form
written with x wins.
"""
from collections import defaultdict

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .algebra import KernelPrinter, compile_source, numbers_as_floats

# ---------------------------------------------------------------- rewrites

class erfc(sp.erfc):
    """sympy's erfc, keeping its argument's sign: sympy writes erfc(-x) as 2 - erfc(x),
    the very cancellation erfc is there to avoid. (Named erfc, so printers treat it as
    erfc.)"""

    @classmethod
    def eval(cls, arg):
        return sp.erfc.eval(arg) if arg.is_number else None



def stable_rewrites(expr):
    """Forms of `expr` that avoid cancellation and overflow (see the module), each
    rewrite alone and all together; `expr` itself is not included."""
    steps = [_without_cancellation, _logistic_form]
    found = []
    for step in steps:
        found.append(step(expr))
    combined = expr
    for step in steps:
        combined = step(combined)
    found.append(combined)
    unique = []
    for form in found:
        if form != expr and form not in unique:
            unique.append(form)
    return unique


def _without_cancellation(expr):
    """c + k*exp(u) with k = -c as k*expm1(u); c + k*erf(u) as k*erfc(-u) (k = c) or
    -k*erfc(u) (k = -c); log(1 + u) as log1p(u)."""
    def rewrite(add):
        numbers = [a for a in add.args if a.is_number]
        if len(numbers) != 1:
            return add
        c = numbers[0]
        for term in add.args:
            k, f = term.as_coeff_Mul()
            if isinstance(f, sp.exp) and k == -c:
                return add - c - term + k * expm1(f.args[0])
            if isinstance(f, sp.erf) and k == c:
                return add - c - term + k * erfc(-f.args[0])
            if isinstance(f, sp.erf) and k == -c:
                return add - c - term - k * erfc(f.args[0])
        return add

    expr = expr.replace(lambda e: e.is_Add, rewrite)
    return expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].is_Add
                        and sp.S.One in e.args[0].args,
                        lambda e: log1p(e.args[0] - 1))


def _logistic_form(expr):
    """Every product of powers of exp(c*u) and (1 + exp(+-u)) as logistic factors."""
    return expr.replace(lambda e: e.is_Mul or e.is_Pow, _logistic)


def _logistic(product):
    """`product` with its exp and 1 + exp factors, for each argument u, written as
    (1 + exp(-u))**-k * (1 + exp(u))**-(m - k), when it is exp(u)**k / (1 + exp(u))**m with
    0 <= k <= m; otherwise unchanged."""
    exps, ones, rest = defaultdict(int), defaultdict(int), []    # by u: power of exp(u), of 1 + exp(u)
    for factor in sp.Mul.make_args(product):
        base, power = (factor.base, factor.exp) if factor.is_Pow else (factor, sp.S.One)
        argument = _exp_argument(base)
        if power.is_Integer and argument is not None:
            c, u = argument
            exps[u] += c * power
            continue
        if (power.is_Integer and base.is_Add and len(base.args) == 2 and sp.S.One in base.args):
            (other,) = [a for a in base.args if a != 1]
            argument = _exp_argument(other)
            if argument is not None and abs(argument[0]) == 1:
                c, u = argument
                ones[u] += power                     # 1 + exp(-u) = (1 + exp(u)) / exp(u)
                exps[u] -= power if c == -1 else 0
                continue
        rest.append(factor)
    if not ones:
        return product
    logistic = []
    for u, p in ones.items():
        m, k = -p, exps.pop(u, 0)
        if not (m >= 1 and 0 <= k <= m):
            return product
        logistic += [(1 + sp.exp(-u))**-k, (1 + sp.exp(u))**-(m - k)]
    return sp.Mul(*rest, *[sp.exp(c * u) for u, c in exps.items()], *logistic)


def _exp_argument(e):
    """(c, u) with e = exp(c*u), c an integer and u without a leading minus; or None."""
    if not isinstance(e, sp.exp):
        return None
    c, u = e.args[0].as_coeff_Mul()
    if not c.is_Integer:
        return None
    if u.could_extract_minus_sign():
        c, u = -c, -u
    return c, u


# ---------------------------------------------------------------- measuring

EXTREMES = (0.0, 1e-30, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0,
            90.0, 200.0, 800.0)
COARSE = (1e-3, 0.5, 3.0, 20.0, 100.0)        # per variable, for formulas of two


class Probe:
    """Test points for the derivative forms of one formula, and the count of points each
    form gets wrong (see the module). `formula` is the forward in `variables`, `out` the
    symbol forms may use for its value; `positive` keeps the points > 0.

    `forward`, if given, is the numpy function that will compute `out` at run time: a form
    is then fed what it will really be fed, and judged against its exact value at the
    correctly rounded `out`. log(1/(1 + exp(-x))) compiled as written is 0 at x = 20 in
    float32 (the true value is -2e-9): a form of its derivative written with `out` is then
    wrong there, and one written with x is chosen.
    """

    def __init__(self, formula, variables, out, positive=False, forward=None):
        self.params = (out,) + tuple(variables)
        grid = EXTREMES if len(variables) == 1 else COARSE
        values = [v for v in grid if v > 0] if positive else sorted(
            {v for v in grid} | {-v for v in grid})
        points = np.array(np.meshgrid(*[values] * len(variables))).reshape(len(variables), -1)
        exact_forward = sp.lambdify(variables, formula, modules="mpmath")
        self.inputs, self.stored = {}, {}     # dtype -> [out, *variables]: exact, run time
        for dtype in (np.float32, np.float64):
            with np.errstate(all="ignore"):
                rounded = points.astype(dtype)
            outs = [_exact(exact_forward, [float(v) for v in column]) for column in rounded.T]
            keep = [o is not None and abs(o) <= float(np.finfo(dtype).max) for o in outs]
            exact = np.array([o for o, k in zip(outs, keep) if k], dtype)
            arrays = [row[keep] for row in rounded]
            self.inputs[dtype] = [exact] + arrays
            self.stored[dtype] = [_run(forward, arrays, dtype, exact)] + arrays
        self._failures = {}

    def failures(self, form):
        """How many test points `form` gets wrong, in float32 and float64 together (all
        of them if numpy code cannot be printed for it: it could not run)."""
        if form not in self._failures:
            try:
                source = (f"def probe({', '.join(p.name for p in self.params)}):\n"
                          f"    return {KernelPrinter().doprint(numbers_as_floats(form))}\n")
            except Exception:       # sympy's printers raise several kinds: none is usable
                self._failures[form] = sum(len(a[0]) for a in self.inputs.values()) + 1
                return self._failures[form]
            fast = compile_source(source, "probe")
            self._failures[form] = sum(self._count(form, fast, dtype) for dtype in self.inputs)
        return self._failures[form]

    def _count(self, form, fast, dtype):
        exact = sp.lambdify(self.params, form, modules="mpmath")
        with np.errstate(all="ignore"):
            computed = np.broadcast_to(np.asarray(fast(*self.stored[dtype])),
                                       self.inputs[dtype][0].shape)
        info = np.finfo(dtype)
        wrong = 0
        for k, value in enumerate(computed):
            true = _exact(exact, [float(a[k]) for a in self.inputs[dtype]])
            if true is None or abs(true) > info.max:
                continue
            error = abs(float(value) - true) if np.isfinite(value) else np.inf
            wrong += error > np.sqrt(info.eps) * abs(true) + info.tiny
        return wrong


def _run(forward, arrays, dtype, exact):
    """`forward` on the rounded inputs, in `dtype`; `exact` (rounded) if there is none or
    it fails."""
    if forward is None:
        return exact
    try:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(forward(*arrays), dtype), exact.shape)
    except (TypeError, ValueError, ArithmeticError):
        return exact


def _exact(fn, args):
    """fn(*args) in mpmath as a float, or None if it is not a finite real. The precision
    grows (30, 60, 120, 360 digits) until two evaluations agree on a value that is not 0:
    a form that cancels, as erf(x)/2 + 1/2 does at x = -20 (1e-89 left of 1/2) or
    log(1 + exp(x)) at x = -200, needs far more than 30 digits."""
    previous = None
    try:
        for digits in (30, 60, 120, 360):
            with mpmath.workdps(digits):
                value = mpmath.mpmathify(fn(*[mpmath.mpf(a) for a in args]))
                if isinstance(value, mpmath.mpc):
                    if abs(value.imag) > mpmath.mpf(10)**(10 - digits) * (1 + abs(value.real)):
                        return None
                    value = value.real
                if not mpmath.isfinite(value):
                    return None
                if (previous is not None and value != 0
                        and abs(value - previous) <= 1e-25 * abs(value)):
                    break                   # (0 twice may be a cancellation: go on)
                previous = value
        return float(value)
    except (TypeError, ValueError, ArithmeticError, NameError, AttributeError):
        return None
