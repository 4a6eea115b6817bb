"""What the symbolic layer costs: one-time derivation, then per call fused vs unfused.

    python benchmarks/fused.py [--repeats 300]

One-time: importing sympy, then for each fused op its first use (definition, derivation and
simplification of every input's gradient, compiling the kernels). Each is timed in a fresh
Python process, so no cache of an earlier measurement helps it.

Per call: forward + backward on tensorgrad through the fused op against the same function
written with primitive ops (the unfused graph autograd differentiates step by step), float32,
median of --repeats. The ratio is unfused time / fused time (above 1: the fused op is faster).
"""
import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import sympy as sp

import tensorgrad as tg
import tensorgrad.nn.functional as F

ONE_TIME = {
    "import sympy": "import sympy",
    "cross_entropy (mean)": "tensorgrad.symbolic.builtin_op('cross_entropy_mean')",
    "batch_norm": "tensorgrad.symbolic.builtin_op('batch_norm')",
    "layer_norm (user-defined)": "layer_norm()",
    "tanh (elementwise, display)": "tensorgrad.symbolic.derivative('tanh')",
    "softplus (elementwise op)": "tensorgrad.symbolic.derived_op('softplus')",
}

SETUP = """
import time, numpy, sympy, tensorgrad, tensorgrad.symbolic
def layer_norm():
    @tensorgrad.symbolic.fused_op(dim=-1, positive=("eps",))
    def layer_norm(f, x, weight, bias, eps=1e-5):
        mean = f.let("mean", f.mean(x))
        var = f.let("var", f.mean((x - mean)**2))
        xhat = f.let("xhat", (x - mean) / sympy.sqrt(var + eps))
        return weight * xhat + bias
    return layer_norm
def first_use(op):
    if isinstance(op, tensorgrad.symbolic.FusedOp):
        for name in op.definition.tensor_names:
            op.definition.gradient(name)
            op.kernel(name, numpy.float32)
        op.kernel("forward", numpy.float32)
"""


def one_time(label, statement):
    """Seconds for `statement` in a fresh process (sympy already imported, except for
    the 'import sympy' row, which times the import itself)."""
    if label == "import sympy":
        code = "import time\nstart = time.perf_counter()\nimport sympy\n"
    else:
        code = f"{SETUP}\nstart = time.perf_counter()\nfirst_use({statement})\n"
    code += "print(time.perf_counter() - start)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip())


def median_time(fn, repeats):
    fn()                                                  # first use: derivation, compiling
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(rng):
    """(name, fused step, unfused step): each builds the forward and runs backward."""
    from tensorgrad.symbolic import fused_op

    @fused_op(dim=-1, positive=("eps",))
    def layer_norm(f, x, weight, bias, eps=1e-5):
        mean = f.let("mean", f.mean(x))
        var = f.let("var", f.mean((x - mean)**2))
        xhat = f.let("xhat", (x - mean) / sp.sqrt(var + eps))
        return weight * xhat + bias

    def leaf(*shape, scale=1.0):
        return tg.tensor(rng.standard_normal(shape).astype(np.float32) * scale,
                         requires_grad=True)

    def backward(y, *params):
        for p in params:
            p.grad = None
        (y if y.ndim == 0 else y.sum()).backward()

    out = []
    for n, c in ((32, 27), (512, 1000)):
        logits, Y = leaf(n, c), rng.integers(0, c, n)

        def unfused_ce(logits=logits, Y=Y):
            backward(-F.log_softmax(logits, 1)[np.arange(len(Y)), Y].mean(), logits)

        out.append((f"cross_entropy {n}x{c}",
                    lambda logits=logits, Y=Y: backward(F.cross_entropy(logits, Y), logits),
                    unfused_ce))
    for n, c in ((32, 200), (512, 1024)):
        x, gain, bias = leaf(n, c, scale=3), leaf(c), leaf(c)

        def unfused_bn(x=x, gain=gain, bias=bias):
            mean = x.mean(0, keepdim=True)
            var = x.var(0, keepdim=True, unbiased=True)
            backward(gain * ((x - mean) * (var + 1e-5) ** -0.5) + bias, x, gain, bias)

        out.append((f"batch_norm {n}x{c}",
                    lambda x=x, gain=gain, bias=bias: backward(
                        F.batch_norm(x, None, None, gain, bias, training=True), x, gain, bias),
                    unfused_bn))
    for n, c in ((32, 200), (512, 1024)):
        x, w, b = leaf(n, c), leaf(c), leaf(c)

        def unfused_ln(x=x, w=w, b=b):
            mean = x.mean(-1, keepdim=True)
            var = ((x - mean) * (x - mean)).mean(-1, keepdim=True)
            backward(w * ((x - mean) / (var + 1e-5).sqrt()) + b, x, w, b)

        out.append((f"layer_norm {n}x{c}",
                    lambda x=x, w=w, b=b: backward(layer_norm(x, w, b), x, w, b), unfused_ln))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    print("one-time cost (fresh process each):")
    for label, statement in ONE_TIME.items():
        print(f"  {label:30s} {one_time(label, statement) * 1e3:8.0f} ms")

    print(f"\nper call, forward + backward, float32, median of {args.repeats}:")
    print(f"  {'':24s} {'fused':>10s} {'unfused':>10s} {'unfused/fused':>14s}")
    for name, fused, unfused in cases(np.random.default_rng(0)):
        tf, tu = median_time(fused, args.repeats), median_time(unfused, args.repeats)
        print(f"  {name:24s} {tf * 1e6:8.0f}us {tu * 1e6:8.0f}us {tu / tf:13.2f}x")


if __name__ == "__main__":
    main()
