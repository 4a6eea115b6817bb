"""The symbolic layer's hard cases: fused ops and elementwise ops whose derived gradients
must not divide by quantities that can be 0, must not let step names capture the kernels'
own variables, must stay finite where the function is, must not depend on the hash seed,
must not rely on unchecked assumptions, and `difference()` must recognise equal forms.

Fused ops are compared with the same function written in PyTorch (float64 unless the case
is about float32); `difference()` with the mathematics (an oracle).
"""
import builtins
import functools
import itertools
import json
import os
import subprocess
import sys

import numpy as np

from .harness import Case, backprop, upstream

RNG = np.random.default_rng(5)
X = RNG.standard_normal((3, 5))


def symbolic():
    from tensorgrad import symbolic
    return symbolic


def sp():
    import sympy
    return sympy


# ---------------------------------------------------------------- fused ops, by their forward
# Each definition is made once (its derivation is cached with it) and called per case.

def masked_mse(f, x, y, mask):
    return f.sum(mask * (x - y) ** 2) / f.sum(mask)


def self_weighted_sum(f, x):
    s = f.sum(x)
    return f.sum(x * s)


def relu_sum(f, x):
    return f.sum(sp().Max(x, 0))


def min_sum(f, x):
    return f.sum(sp().Min(x, 0) * x)


def scaled_sum(f, x, a=1.0):
    return f.sum(sp().sqrt(a ** 2) * x)


def named_step(name):
    """sum(g * x) with g = 2 x a step called `name` (a kernel's own variable name, maybe)."""
    def definition(f, x):
        g = f.let(name, x * 2)
        return f.sum(g * x)
    definition.__name__ = f"step_named_{name.strip('_') or 'underscore'}"
    return definition


def weighted_cross_entropy(f, logits, target, weight):
    lse = f.logsumexp(logits, "c", name="lse")
    logprobs = f.let("logprobs", logits - lse)
    w = f.let("w", f.sum(weight * target, "c"))
    nll = f.let("nll", -f.sum(target * logprobs, "c"))
    return f.sum(w * nll, "b") / f.sum(w, "b")


def layer_norm(f, x, weight, bias, eps=1e-5):
    mean = f.let("mean", f.mean(x))
    var = f.let("var", f.mean((x - mean) ** 2))
    xhat = f.let("xhat", (x - mean) / sp().sqrt(var + eps))
    return weight * xhat + bias


def rms_norm(f, x, weight, eps=1e-6):
    ms = f.let("ms", f.mean(x ** 2))
    return weight * x / sp().sqrt(ms + eps)


@functools.lru_cache(maxsize=None)
def fused(name):
    """The fused op `name`, made on first use (inside a case, so errors are its own)."""
    S = symbolic()
    if name == "weighted_cross_entropy":
        return S.fused_op(weighted_cross_entropy, axes={"b": "n", "c": "C"},
                          along={"weight": "c"}, dim={"b": 0, "c": 1})
    if name == "scaled_sum":
        return S.fused_op(scaled_sum, dim=-1, positive=("a",))
    if name in ("layer_norm", "rms_norm"):
        return S.fused_op(globals()[name], dim=-1, positive=("eps",))
    if name == "lambda":
        return S.fused_op(lambda f, x: f.sum(x * x), dim=-1)
    if name.startswith("step_"):
        return S.fused_op(named_step(name[len("step_"):]), dim=-1)
    return S.fused_op(globals()[name], dim=-1)


def fused_case(name, inputs, reference, grad=None, dtype="float64", **numbers):
    """A case: fused op `name` on `inputs` (arrays; those listed in `grad` require grad)
    against `reference(torch, *tensors)`, the same function written with PyTorch ops."""
    grad = range(len(inputs)) if grad is None else grad

    def make(lib):
        ts = [lib.tensor(np.asarray(a, dtype=dtype)) for a in inputs]
        for k in grad:
            ts[k].requires_grad_(True)
        return ts

    def finish(lib, out, ts):
        backprop(lib, out)
        return {"out": out, "grads": [t.grad for t in ts]}

    def run(lib):
        ts = make(lib)
        return finish(lib, fused(name)(*ts, **numbers), ts)

    def torch_reference(torch):
        ts = make(torch)
        return finish(torch, reference(torch, *ts), ts)
    return run, torch_reference


def fused_cases():
    found = []
    x = X.copy()
    mask = (RNG.random((3, 5)) < 0.6).astype(float)
    mask[:, 0] = 1
    mse = lambda torch, x, y, m: (m * (x - y) ** 2).sum(-1) / m.sum(-1)    # noqa: E731
    for label, y in [("zero loss (y = x)", x), ("y = x + 0.5", x + 0.5),
                     ("zero loss in one row", np.vstack([x[:1], x[1:] + 0.5]))]:
        run, ref = fused_case("masked_mse", [x, y, mask], mse, grad=(0, 1))
        found.append(Case(f"symbolic/masked MSE sum(m(x-y)^2)/sum(m) at {label}", run,
                          reference=ref))

    s = lambda torch, x: (x * x.sum(-1, keepdim=True)).sum(-1)             # noqa: E731
    zero_sum = x - x.mean(-1, keepdims=True)
    for label, value in [("sum(x) = 0", zero_sum), ("sum(x) != 0", x)]:
        run, ref = fused_case("self_weighted_sum", [value], s)
        found.append(Case(f"symbolic/sum(x*sum(x)) at {label}", run, reference=ref))

    relu = lambda torch, x: x.relu().sum(-1)                                # noqa: E731
    at_zero = np.array([[0.0, 1.0, -1.0, 0.0], [2.0, 0.0, -0.5, 0.0]])
    for label, value in [("0", at_zero), ("no zeros", x)]:
        run, ref = fused_case("relu_sum", [value], relu)
        found.append(Case(f"symbolic/fused sum(Max(x, 0)) at {label}", run, reference=ref))
        run, ref = fused_case("min_sum", [value],
                              lambda torch, x: (torch.clamp(x, max=0) * x).sum(-1))
        found.append(Case(f"symbolic/fused sum(Min(x, 0)*x) at {label}", run, reference=ref))

    for name in ["g", "out", "saved", "numpy", "n", "i", "_t0", "_axes_i", "_logsumexp",
                 "sum1", "x2"]:
        run, ref = fused_case(f"step_{name}", [x], lambda torch, x: (2 * x * x).sum(-1))
        found.append(Case(f"symbolic/f.let({name!r}, 2x); sum({name}*x)", run, reference=ref))

    found += weighted_cross_entropy_cases()

    for a in [2.0, -2.0]:
        run, ref = fused_case("scaled_sum", [x], lambda torch, x, a=a: (abs(a) * x).sum(-1),
                              a=a)
        found.append(Case(f"symbolic/positive=('a',): sum(sqrt(a^2) x) at a = {a}", run,
                          reference=ref))

    w, b = RNG.standard_normal(5), RNG.standard_normal(5)
    for label, value in [("random", x), ("a constant row", np.vstack([x[:2], [[0.7] * 5]]))]:
        run, ref = fused_case("layer_norm", [value, w, b], lambda torch, x, w, b:
                              torch.nn.functional.layer_norm(x, (5,), w, b, eps=1e-5))
        found.append(Case(f"symbolic/fused layer_norm at {label}", run, reference=ref))
        run, ref = fused_case("rms_norm", [value, w], lambda torch, x, w:
                              w * x / (x.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt())
        found.append(Case(f"symbolic/fused rms_norm at {label}", run, reference=ref))

    run, ref = fused_case("lambda", [x], lambda torch, x: (x * x).sum(-1))
    found.append(Case("symbolic/fused_op(lambda f, x: f.sum(x * x))", run, reference=ref))
    return found


def weighted_cross_entropy_cases():
    """Weighted cross-entropy (PyTorch's `weight=`): the weighted mean of -log p[target].
    When the target's logit wins by a margin, the loss underflows to exactly 0."""
    found = []
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    target = np.array([1, 3, 0])
    margins = {"ordinary logits": RNG.standard_normal((3, 4)),
               "loss underflowing to 0": 800.0 * np.eye(4)[target],
               "one row underflowing": np.vstack([800.0 * np.eye(4)[target[:1]],
                                                  RNG.standard_normal((2, 4))])}
    for label, logits in margins.items():
        def reference(torch, logits, onehot, weight):
            return torch.nn.functional.cross_entropy(
                logits, onehot.argmax(1), weight=weight)
        run, ref = fused_case("weighted_cross_entropy", [logits, np.eye(4)[target], weight],
                              reference, grad=(0,))
        found.append(Case(f"symbolic/weighted cross-entropy at {label}", run, reference=ref))
    return found


# ---------------------------------------------------------------- assumptions

def one_hot_assumed(rows):
    """The built-in cross-entropy op (derived assuming one-hot rows sum to 1) on targets
    whose rows sum to `rows`; the reference is -(target * log_softmax).sum(1).mean()."""
    logits = X[:, :4]
    target = np.abs(RNG.standard_normal((3, 4)))
    target = target / target.sum(1, keepdims=True) * rows

    def run(lib):           # the assumption is checked in anomaly mode (docs/symbolic.md)
        x = lib.tensor(logits, requires_grad=True)
        with lib.detect_anomaly():
            out = symbolic().builtin_op("cross_entropy_mean")(x, lib.tensor(target))
            backprop(lib, out)
        return {"out": out, "x.grad": x.grad}

    def reference(torch):
        x = torch.tensor(logits, requires_grad=True)
        out = -(torch.tensor(target) * torch.log_softmax(x, 1)).sum(1).mean()
        backprop(torch, out)
        return {"out": out, "x.grad": x.grad}
    return run, reference


# ---------------------------------------------------------------- elementwise ops

FORMULAS = {   # label: (op name, formula for `elementwise` or None for a built-in, reference)
    "silu": ("silu", "x/(1+exp(-x))", lambda torch, x: torch.nn.functional.silu(x)),
    "F.softplus": ("softplus", None, lambda torch, x: torch.nn.functional.softplus(x)),
    "F.gelu": ("gelu", None, lambda torch, x: torch.nn.functional.gelu(x)),
    "F.gelu(tanh)": ("gelu_tanh", None,
                     lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh")),
    "log(1+exp(x))": ("naive_softplus", "log(1+exp(x))",
                      lambda torch, x: torch.nn.functional.softplus(x)),
    "exp(x)-1": ("expm1", "exp(x)-1", lambda torch, x: torch.expm1(x)),
    "x**2/(1+x**2)": ("ratio", "x**2/(1+x**2)", lambda torch, x: x * x / (1 + x * x)),
    "sqrt(1+x**2)": ("hypot1", "sqrt(1+x**2)", lambda torch, x: torch.sqrt(1 + x * x)),
    "Max(x, 0)": ("max0", "Max(x, 0)", lambda torch, x: torch.relu(x)),
    "Abs(x)": ("absolute", "Abs(x)", lambda torch, x: torch.abs(x)),
    "erfc": ("erfc", "erfc(x)", lambda torch, x: torch.erfc(x)),
    "tanh(x)*x": ("xtanh", "tanh(x)*x", lambda torch, x: torch.tanh(x) * x),
}
POINTS = [-100.0, -20.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 20.0, 100.0]
_made = {}


def elementwise_op(label):
    """The op for `label`, made once; an error making it is kept and raised again."""
    if label not in _made:
        name, formula, _ = FORMULAS[label]
        try:
            if formula is None:
                S = symbolic()
                _made[label] = (lambda x: S.gelu(x, approximate="tanh")) if (
                    name == "gelu_tanh") else getattr(S, name)
            else:
                _made[label] = symbolic().elementwise(name, formula)
        except Exception as e:              # noqa: BLE001  the case reports it
            _made[label] = e
    if isinstance(_made[label], Exception):
        raise _made[label]
    return _made[label]


def elementwise_case(label, point, dtype):
    """The op at one point; in float32 the reference is the float64 value, rounded (the
    mathematically right float32 answer, which PyTorch's float32 kernels also miss by
    more than an ulp at some points)."""
    def run(lib):
        x = lib.tensor(np.array([point], dtype=dtype), requires_grad=True)
        out = elementwise_op(label)(x)
        backprop(lib, out)
        return {"out": out, "x.grad": x.grad}

    def reference(torch):
        x = torch.tensor(np.array([point]), requires_grad=True)
        out = FORMULAS[label][2](torch, x)
        out.backward(torch.tensor(upstream((1,), dtype).astype(np.float64)))
        return {"out": out.to(getattr(torch, dtype)), "x.grad": x.grad.to(getattr(torch, dtype))}
    return run, reference


def elementwise_cases():
    found = []
    for label, point, dtype in itertools.product(FORMULAS, POINTS, ["float32", "float64"]):
        run, reference = elementwise_case(label, point, dtype)
        # relative: a gradient of 2e-9 computed as 0 is wrong; below 1e-30 nothing counts
        tol = {"rtol": 1e-2 if dtype == "float32" else 1e-6, "atol": 1e-30}
        found.append(Case(f"symbolic/{label} at {point:g} {dtype}", run, reference=reference,
                          tol=tol))

    def bad_name(name):
        def run(lib):
            op = symbolic().elementwise(name, "x**2")
            x = lib.tensor(X[0], requires_grad=True)
            out = op(x)
            backprop(lib, out)
            return {"out": out, "x.grad": x.grad}

        def reference(torch):
            x = torch.tensor(X[0], requires_grad=True)
            out = x ** 2
            backprop(torch, out)
            return {"out": out, "x.grad": x.grad}
        return run, reference

    for name in ["my op", "leaky-relu", "2x", "class", ""]:
        run, reference = bad_name(name)
        found.append(Case(f"symbolic/elementwise({name!r}, 'x**2')", run, reference=reference))
    return found


# ---------------------------------------------------------------- difference()

def difference(a, b, expected_zero):
    """`FusedDefinition.difference(a, b)` on expressions of the input x[i]: the oracle is
    whether a and b are the same function."""
    def run(lib):
        S, sympy = symbolic(), sp()
        d = S.FusedDefinition(lambda f, x: f.sum(x))
        x = d.forward.inputs["x"]
        names = {"x": x, "sympy": sympy}
        return bool(d.difference(eval(a, names), eval(b, names)) == 0)
    return Case(f"symbolic/difference({a}, {b})", run, oracle=lambda: expected_zero,
                code=f"difference({a}, {b}) == 0")


DIFFERENCES = [
    ("1/(x+1) + 1/(x-1)", "2*x/(x**2-1)", True),
    ("(x**2 - 1)/(x - 1)", "x + 1", True),
    ("(x+1)**2", "x**2 + 2*x + 1", True),
    ("sympy.sin(x)**2 + sympy.cos(x)**2", "1", True),
    ("sympy.tanh(x)", "(sympy.exp(2*x) - 1)/(sympy.exp(2*x) + 1)", True),
    ("sympy.exp(x)*sympy.exp(-x)", "1", True),
    ("1/(1 + sympy.exp(-x))", "sympy.exp(x)/(1 + sympy.exp(x))", True),
    ("x/(x*x + x)", "1/(x + 1)", True),
    ("x + 1", "x", False),
    ("1/(x+1) + 1/(x-1)", "2/(x**2-1)", False),
]


# ---------------------------------------------------------------- the hash seed

HUBER = '''
import json, sys
import numpy as np
import sympy as sp
import tensorgrad as tg
from tensorgrad.symbolic import fused_op

def huber(f, x, y, delta=1.0):
    r = f.let("r", x - y)
    h = f.let("h", sp.Piecewise((r**2 / 2, sp.Abs(r) <= delta),
                                (delta * (sp.Abs(r) - delta / 2), True)))
    return f.mean(h)

try:
    op = fused_op(huber, dim=-1, positive=("delta",) if sys.argv[1] == "positive" else ())
    x = tg.tensor(np.array(json.loads(sys.argv[2])), requires_grad=True)
    y = tg.zeros(*x.shape, dtype=tg.float64)
    out = op(x, y)
    out.backward(tg.tensor(np.array(json.loads(sys.argv[3]))))
    print(json.dumps({"out": out.tolist(), "grad": x.grad.tolist()}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
'''
HUBER_X = [[0.3, -2.0, 1.5, 0.0], [4.0, -0.2, 0.9, -1.1]]
HUBER_G = [1.0, -2.0]
_launched, _finished = {}, {}


def launch_huber(keys):
    """Start the Huber subprocess of each (variant, hash seed) not started yet; they run in
    parallel with each other and with the rest of the sweep."""
    for key in keys:
        if key not in _launched:
            variant, seed = key
            env = dict(os.environ, PYTHONHASHSEED=str(seed))
            _launched[key] = subprocess.Popen(
                [sys.executable, "-c", HUBER, variant, json.dumps(HUBER_X),
                 json.dumps(HUBER_G)], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)


def huber_result(key):
    """What the subprocess for `key` printed: its results or its error (parsed JSON)."""
    if key not in _finished:
        launch_huber([key])
        output, errors = _launched[key].communicate(timeout=300)
        lines = output.strip().splitlines()
        _finished[key] = json.loads(lines[-1]) if lines else {
            "error": "RuntimeError", "message": "the subprocess failed: " + errors[-300:]}
    return _finished[key]


def huber_case(variant, seed):
    def run(lib):
        result = huber_result((variant, seed))
        if "error" in result:                       # the child's exception, raised here
            kind = getattr(builtins, result["error"], None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(result["message"])
        return {"out": np.array(result["out"]), "x.grad": np.array(result["grad"])}

    def reference(torch):
        x = torch.tensor(np.array(HUBER_X), requires_grad=True)
        out = torch.nn.functional.huber_loss(x, torch.zeros_like(x), reduction="none",
                                             delta=1.0).mean(-1)
        out.backward(torch.tensor(np.array(HUBER_G)))
        return {"out": out.detach().numpy(), "x.grad": x.grad.numpy()}
    label = "positive delta" if variant == "positive" else "delta of unknown sign"
    return Case(f"symbolic/Piecewise Huber ({label}) under PYTHONHASHSEED={seed}", run,
                reference=reference, timeout=300, tags=("huber", variant, seed))


def cases(seeds=3):
    global RNG
    RNG = np.random.default_rng(6)         # the same arrays however often cases() is called
    found = fused_cases()
    for rows in [1.0, 0.5, 2.0]:
        run, reference = one_hot_assumed(rows)
        found.append(Case(f"symbolic/one-hot assumption: cross_entropy op, target rows sum "
                          f"to {rows}", run, reference=reference))
    found += elementwise_cases()
    found += [difference(*d) for d in DIFFERENCES]
    variants = [("positive", s) for s in range(seeds)] + [("unsigned", 0)]
    found += [huber_case(v, s) for v, s in variants]
    return found
