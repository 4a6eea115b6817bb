"""Eager vs compiled tensorgrad vs hand-written numpy vs PyTorch, side by side in one run.

    python benchmarks/codegen_step.py [--repeats 1000] [--large-repeats 20] [--memory-steps 10000]

For the lecture's step (batch 32, n_hidden 200, float32) and a large one (batch 4096,
n_hidden 1024): forward + backward, the time per step of
  eager       tensorgrad, loss.backward()
  compiled    tensorgrad.codegen.compile of the same step
  generated   the compiled step's generated function alone, called on the arrays (what the
              compiled step costs beyond it is its own bookkeeping: the checks of its
              inputs and state, handing the gradients to .grad)
  numpy       the lecture's exercise-4 code transliterated to numpy, untuned
  tuned       numpy with preallocated buffers, in-place ops and BLAS for column sums
  torch       PyTorch eager on the CPU, one thread (when installed)
each as a ratio to numpy, tuned and torch, timed in turns (every round runs each step in
turn; a ratio is the median over rounds of the ratio within a round). Then the per-op cost
of the engine (a chain of tiny ops) and the peak memory of the eager and the compiled step
over many training steps.
"""
import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tensorgrad  # noqa: E402
from tensorgrad import codegen  # noqa: E402
from lecture_step import (backward_step, forward, make_params, numpy_step, ratio,  # noqa: E402
                          timed_in_turns)


class TunedStep:
    """The same step in numpy, as fast as it reasonably goes: buffers allocated once,
    in-place ufuncs, column sums as BLAS matrix-vector products with a ones vector, and
    the embedding's gradient as a bincount-free matmul of a one-hot."""

    def __init__(self, P, n):
        C, W1, b1, W2, b2, bngain, bnbias = P
        f = C.dtype
        self.n = n
        self.ones = np.ones(n, f)
        H, V = W1.shape[1], W2.shape[1]
        self.hprebn, self.h, self.tmp = (np.empty((n, H), f) for _ in range(3))
        self.logits = np.empty((n, V), f)
        self.rows = np.arange(n)
        self.dC = np.empty_like(C)

    def __call__(self, P, Xb, Yb):
        C, W1, b1, W2, b2, bngain, bnbias = P
        n, ones, hprebn, h, tmp, logits = self.n, self.ones, self.hprebn, self.h, self.tmp, \
            self.logits
        embcat = C[Xb].reshape(n, -1)
        np.matmul(embcat, W1, out=hprebn)
        hprebn += b1
        mean = (ones @ hprebn) / n
        hprebn -= mean                                     # now bndiff
        np.multiply(hprebn, hprebn, out=tmp)
        var = (ones @ tmp) / (n - 1)
        bnvar_inv = (var + 1e-5) ** -0.5
        hprebn *= bnvar_inv                                # now bnraw
        bnraw = hprebn
        np.multiply(bnraw, bngain, out=h)
        h += bnbias
        np.tanh(h, out=h)
        np.matmul(h, W2, out=logits)
        logits += b2
        logits -= logits.max(1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(1, keepdims=True)             # probs
        loss = -np.log(logits[self.rows, Yb]).mean()
        logits[self.rows, Yb] -= 1
        logits /= n                                        # dlogits
        dW2 = h.T @ logits
        db2 = ones @ logits
        dh = np.matmul(logits, W2.T, out=tmp)
        np.multiply(h, h, out=h)
        np.subtract(1, h, out=h)
        dh *= h                                            # dhpreact
        dbnbias = ones @ dh
        np.multiply(bnraw, dh, out=h)
        dbngain = ones @ h
        dh *= bngain                                       # dbnraw
        np.multiply(dh, bnraw, out=h)
        s2 = ones @ h
        s1 = ones @ dh
        dh *= n
        dh -= s1
        np.multiply(bnraw, s2 * (n / (n - 1)), out=h)
        dh -= h
        dh *= bnvar_inv / n                                # dhprebn
        dW1 = embcat.T @ dh
        db1 = ones @ dh
        demb = (dh @ W1.T).reshape(n, *Xb.shape[1:], -1)
        dC = self.dC
        dC[...] = 0
        np.add.at(dC, Xb, demb)
        return loss, [dC, dW1, db1, dW2, db2, dbngain.reshape(1, -1), dbnbias.reshape(1, -1)]


def compare(batch, hidden, repeats):
    vocab, n_embd, block = 27, 10, 3
    params = make_params(vocab, n_embd, block, hidden)
    arrays = list(params.values())
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, vocab, (batch, block)), rng.integers(0, vocab, batch))
               for _ in range(20)]
    P = [tensorgrad.tensor(v, requires_grad=True) for v in arrays]
    for name, p in zip(params, P):
        p.name = name
    tg_batches = [(tensorgrad.tensor(x), tensorgrad.tensor(y)) for x, y in batches]
    compiled = codegen.compile(lambda Xb, Yb: forward(tensorgrad, P, Xb, Yb))
    tuned = TunedStep(arrays, batch)

    def compiled_step(Xb, Yb):
        for p in P:
            p.grad = None
        return compiled(Xb, Yb)

    # all five agree before anything is timed
    ref_loss, ref = numpy_step(arrays, *batches[0])
    loss, grads = tuned(arrays, *batches[0])
    assert abs(loss - ref_loss) < 1e-4 and all(np.allclose(a, b, rtol=1e-3, atol=1e-5)
                                               for a, b in zip(grads, ref))
    backward_step(tensorgrad, P, *tg_batches[0])
    eager = [p.grad.numpy().copy() for p in P]
    for _ in range(3):
        compiled_step(*tg_batches[0])
    assert compiled.last == "compiled", compiled.explain()
    assert all(np.array_equal(a, p.grad.numpy()) for a, p in zip(eager, P))
    assert all(np.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(eager, ref))

    program = next(reversed(compiled.programs.values())).program
    assert [name for name, _ in program.args] == ["Xb", "Yb"]
    leaves = [p.numpy() for p in program.leaves]

    def generated(Xb, Yb):                 # the code alone: the compiled step without its
        return program.function(*leaves, Xb, Yb)   # checks and without handing over .grad

    steps = {
        "eager": (lambda x, y: backward_step(tensorgrad, P, x, y), tg_batches),
        "compiled": (compiled_step, tg_batches),
        "generated": (generated, batches),
        "numpy": (lambda x, y: numpy_step(arrays, x, y), batches),
        "tuned": (lambda x, y: tuned(arrays, x, y), batches),
    }
    try:
        import torch
    except ImportError:
        print("(PyTorch not installed: no torch row)")
    else:
        torch.set_num_threads(1)
        TP = [torch.tensor(v, requires_grad=True) for v in arrays]
        t_batches = [(torch.tensor(x), torch.tensor(y)) for x, y in batches]
        steps["torch"] = (lambda x, y: backward_step(torch, TP, x, y), t_batches)
    times = timed_in_turns(steps, max(1, repeats // 10))
    print(f"\nforward + backward, batch {batch}, n_hidden {hidden}, float32, {repeats} calls "
          "each, in 10 turns")
    print(f"  {'':9s} {'time':>10s}  {'/ numpy':>8s}  {'/ tuned':>8s}  {'/ torch':>8s}")
    for name in steps:
        vs_torch = f"{ratio(times, name, 'torch'):8.2f}" if "torch" in steps else ""
        print(f"  {name:9s} {statistics.median(times[name]) * 1e6:8.1f}us  "
              f"{ratio(times, name, 'numpy'):8.2f}  {ratio(times, name, 'tuned'):8.2f}  "
              f"{vs_torch}")
    return times


def per_op_overhead(n=20000):
    """Seconds per op of a chain of tiny ops, forward and backward, and numpy's own.

    The objects already in the process (PyTorch's and sympy's, 220,000 of them) are frozen
    first: the garbage collector's full collections, which the chain's nodes trigger, then
    walk the chain alone, not every object the process holds (one such walk costs 100 ms,
    5 us an op, and falls inside the chain or not by the count of earlier allocations)."""
    gc.collect()
    gc.freeze()
    x = tensorgrad.tensor(np.ones(4, np.float32), requires_grad=True)
    start = time.perf_counter()
    y = x
    for _ in range(n):
        y = y * 1.0
    y.sum().backward()
    engine = (time.perf_counter() - start) / n
    del x, y
    gc.unfreeze()
    a = np.ones(4, np.float32)
    start = time.perf_counter()
    for _ in range(n):
        a = a * 1.0
    plain = (time.perf_counter() - start) / n
    print(f"\nper op, a chain of {n} multiplies of 4 floats, forward + backward: "
          f"engine {engine * 1e6:.2f}us, numpy forward alone {plain * 1e6:.2f}us")


def memory(steps, compiled):
    """Peak traced memory of the lecture step, eager or compiled, over `steps` training
    steps: after a tenth of them and at the end (it must not grow)."""
    params = make_params(27, 10, 3, 200)
    P = [tensorgrad.tensor(v, requires_grad=True) for v in params.values()]
    step_fn = lambda Xb, Yb: forward(tensorgrad, P, Xb, Yb)            # noqa: E731
    if compiled:
        run = codegen.compile(step_fn)
    else:
        def run(Xb, Yb):
            loss = step_fn(Xb, Yb)
            loss.backward()
            return loss
    rng = np.random.default_rng(2)
    batches = [(tensorgrad.tensor(rng.integers(0, 27, (32, 3))),
                tensorgrad.tensor(rng.integers(0, 27, 32))) for _ in range(20)]
    tracemalloc.start()
    peaks = []
    for step in range(steps):
        for p in P:
            p.grad = None
        run(*batches[step % 20])
        with tensorgrad.no_grad():
            for p in P:
                p.data += -0.01 * p.grad
        if step in (steps // 10, steps - 1):
            peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    kind = "compiled" if compiled else "eager"
    print(f"peak traced memory over {steps} {kind} steps: {peaks[0] / 1e6:.2f} MB after "
          f"{steps // 10}, {peaks[1] / 1e6:.2f} MB after {steps}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--large-repeats", type=int, default=20)
    parser.add_argument("--memory-steps", type=int, default=10000)
    args = parser.parse_args()
    compare(32, 200, args.repeats)
    compare(4096, 1024, args.large_repeats)
    per_op_overhead()
    print()
    memory(args.memory_steps, compiled=False)
    memory(args.memory_steps, compiled=True)


if __name__ == "__main__":
    main()
