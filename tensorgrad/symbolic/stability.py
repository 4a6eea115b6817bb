"""Numerically safe forms: equal formulas are not equally good in floating point.

softplus's derivative `1 - exp(-out)` is exact algebra, but in float32 it is 0 once out is
below 3e-8: at x = -20 the true value 2.1e-9 cancels away. `x*exp(-x)/(1 + exp(-x))**2`
(in silu's derivative) is inf/inf = NaN once exp(-x) overflows. Forwards have the same
traps: softplus written `log(1 + exp(x))` is 0 at x = -20 and inf at 100 in float32, and
GELU's `1 + erf(x/sqrt(2))` keeps 2 digits at -5. So the choice of an elementwise op's
forward (elementwise_ops.forward_form) and of its derivatives (elementwise_ops._simplest)
does two things besides counting operations:

- `stable_rewrites` offers forms that avoid both traps: `1 - exp(u)` as `-expm1(u)`,
  `log(1 + u)` as `log1p(u)`, `1 + erf(u)` as `erfc(-u)`, `1 +- tanh(u)` as
  `2/(1 + exp(-+2u))` and `1 - tanh(u)**2` as `1/cosh(u)**2`, `log(1 + exp(u))` as
  `Max(u, 0) + log1p(exp(-|u|))`, and a product of `exp(k*u)` and `(1 + exp(u))**-m`
  (0 <= k <= m) as logistic factors `1/((1 + exp(-u))**k * (1 + exp(u))**(m - k))`, each
  in (0, 1], whose overflow is harmless (1/inf = 0);
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
written with x wins. Between forms of equal cost the count against the true derivative
decides (`Probe.failures(form, reference)`): expm1's `out + 1` is 0 at x = -20 in float32,
as out rounds to -1, and `exp(x)`, as cheap, is right.
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
    steps = [_without_cancellation, _softplus_form, _logistic_form]
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
    -k*erfc(u) (k = -c); c + k*tanh(u) as 2c/(1 + exp(-2u)) (k = c) or 2c/(1 + exp(2u))
    (k = -c); c + k*tanh(u)**2 with k = -c as c/cosh(u)**2; log(1 + u) as log1p(u)."""
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
            if isinstance(f, sp.tanh) and k in (c, -c):     # 1 +- tanh(u) = 2*sigmoid(+-2u)
                sign = 1 if k == c else -1
                return add - c - term + 2 * c / (1 + sp.exp(-2 * sign * f.args[0]))
            if f.is_Pow and isinstance(f.base, sp.tanh) and f.exp == 2 and k == -c:
                return add - c - term + c / sp.cosh(f.base.args[0])**2     # 1 - tanh**2
        return add

    expr = expr.replace(lambda e: e.is_Add, rewrite)
    return expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].is_Add
                        and sp.S.One in e.args[0].args,
                        lambda e: log1p(e.args[0] - 1))


def _softplus_form(expr):
    """log(1 + exp(u)) (or log1p(exp(u))) as Max(u, 0) + log1p(exp(-|u|)): exp never
    overflows (log(1 + exp(100)) is inf in float32) and 1 + exp(u) never rounds to 1
    (log(1 + exp(-20)) is 0 in float32; the true value is 2.1e-9). log((1 + exp(u))**p),
    as in log(sigmoid(x)), is p times that."""
    def softplus_of(e):
        """(u, p) if e is p*log(1 + exp(u)); otherwise None."""
        if isinstance(e, log1p) and isinstance(e.args[0], sp.exp):
            return e.args[0].args[0], sp.S.One
        if not isinstance(e, sp.log):
            return None
        base, power = e.args[0].as_base_exp()
        if base.is_Add and len(base.args) == 2 and sp.S.One in base.args:
            (other,) = [a for a in base.args if a != 1]
            if isinstance(other, sp.exp):
                return other.args[0], power
        return None

    def stable(e):
        u, p = softplus_of(e)
        return p * (sp.Max(u, 0) + log1p(sp.exp(-sp.Abs(u))))

    return expr.replace(lambda e: softplus_of(e) is not None, stable)


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
    """Test points for the forms of one formula and of its derivatives, and the count of
    points each form gets wrong (see the module). `formula` is the forward in `variables`,
    `out` the symbol forms may use for its value; `positive` keeps the points > 0.

    `forward`, if given, is the numpy function that will compute `out` at run time: a form
    is then fed what it will really be fed, and judged against its exact value at the
    correctly rounded `out`. A forward given as `np.log(1/(1 + np.exp(-x)))` is 0 at
    x = 20 in float32 (the true value is -2e-9): a form of its derivative written with
    `out` is then wrong there, and one written with x is chosen. Forms of the forward
    itself do not use `out`: they are judged against the formula's exact value.
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
        self._failures, self._compiled, self._exact = {}, {}, {}

    def failures(self, form, reference=None):
        """How many test points `form` gets wrong, in float32 and float64 together (all
        of them if numpy code cannot be printed for it: it could not run).

        Wrong is off from `reference` evaluated exactly at the correctly rounded inputs
        and output. By default that is `form` itself, which blames a form only for what it
        does with what it is given: `out + 1` (expm1's derivative) at x = -20 in float32,
        where out rounds to -1, is 0 as its exact value there is. With `reference` the
        derivative written in the variables alone, the count is of the points where the
        gradient computed is wrong, whatever the cause: there `out + 1` is (2.1e-9)."""
        key = (form, reference)
        if key not in self._failures:
            fast = self._numpy(form)
            if fast is None:
                self._failures[key] = sum(len(a[0]) for a in self.inputs.values()) + 1
            else:
                reference = form if reference is None else reference
                self._failures[key] = sum(self._count(fast, reference, dtype)
                                          for dtype in self.inputs)
        return self._failures[key]

    def _numpy(self, form):
        """`form` compiled to a numpy function of (out, *variables), or None if sympy
        cannot print it (its printers raise several kinds of error: none is usable)."""
        if form not in self._compiled:
            try:
                source = (f"def probe({', '.join(p.name for p in self.params)}):\n"
                          f"    return {KernelPrinter().doprint(numbers_as_floats(form))}\n")
                self._compiled[form] = compile_source(source, "probe")
            except Exception:
                self._compiled[form] = None
        return self._compiled[form]

    def _exact_values(self, reference, dtype):
        """`reference` at each test point in `dtype`, exactly (None where it is not a
        finite real)."""
        if (reference, dtype) not in self._exact:
            exact = sp.lambdify(self.params, reference, modules="mpmath")
            inputs = self.inputs[dtype]
            self._exact[reference, dtype] = [_exact(exact, [float(a[k]) for a in inputs])
                                             for k in range(len(inputs[0]))]
        return self._exact[reference, dtype]

    def _count(self, fast, reference, dtype):
        with np.errstate(all="ignore"):
            computed = np.broadcast_to(np.asarray(fast(*self.stored[dtype])),
                                       self.inputs[dtype][0].shape)
        info = np.finfo(dtype)
        wrong = 0
        for value, true in zip(computed, self._exact_values(reference, dtype)):
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
