"""Time one forward + backward of the lecture's names MLP, against references in one run.

    python benchmarks/lecture_step.py [--repeats 2000] [--hidden 200] [--batch 32]

Compares, on the same parameters and batches:
  tensorgrad  forward with F.cross_entropy and batchnorm from primitives, loss.backward()
  numpy       the same step written by hand in numpy: forward, then the lecture's manual
              backward (exercise 4), transliterated without tuning
  torch       PyTorch eager on the CPU, loss.backward() (when PyTorch is installed)
and prints the time per step and each one's ratio to numpy, measured in turns (see
`timed_in_turns`).
"""
import argparse
import statistics
import time

import numpy as np

import tensorgrad


def make_params(vocab, n_embd, block, n_hidden, seed=0):
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    return {"C": r(vocab, n_embd), "W1": r(n_embd * block, n_hidden) * 0.2,
            "b1": r(n_hidden) * 0.1, "W2": r(n_hidden, vocab) * 0.1, "b2": r(vocab) * 0.1,
            "bngain": r(1, n_hidden) * 0.1 + 1, "bnbias": r(1, n_hidden) * 0.1}


def forward(lib, P, Xb, Yb):
    """Exercise 4's forward, for any library with PyTorch's API (tensorgrad or torch)."""
    C, W1, b1, W2, b2, bngain, bnbias = P
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmean = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True, unbiased=True)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = lib.tanh(hpreact)
    logits = h @ W2 + b2
    return lib.nn.functional.cross_entropy(logits, Yb)


def backward_step(lib, P, Xb, Yb):
    """One training step's forward and `loss.backward()` on `lib`."""
    loss = forward(lib, P, Xb, Yb)
    for p in P:
        p.grad = None
    loss.backward()
    return loss


def numpy_step(P, Xb, Yb):
    """The same step in numpy, with the lecture's manual backward."""
    C, W1, b1, W2, b2, bngain, bnbias = P
    n = Xb.shape[0]
    emb = C[Xb]
    embcat = emb.reshape(n, -1)
    hprebn = embcat @ W1 + b1
    bnmean = hprebn.mean(0, keepdims=True)
    bnvar = hprebn.var(0, keepdims=True, ddof=1)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = np.tanh(hpreact)
    logits = h @ W2 + b2
    shifted = logits - logits.max(1, keepdims=True)
    counts = np.exp(shifted)
    probs = counts / counts.sum(1, keepdims=True)
    loss = -np.log(probs[np.arange(n), Yb]).mean()
    dlogits = probs.copy()
    dlogits[np.arange(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdims=True)
    dbnbias = dhpreact.sum(0, keepdims=True)
    dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                        - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.reshape(emb.shape)
    dC = np.zeros_like(C)
    np.add.at(dC, Xb, demb)
    return loss, [dC, dW1, db1, dW2, db2, dbngain, dbnbias]


def timed_in_turns(steps, repeats, rounds=10):
    """Seconds per call of each of `steps` ({name: (fn, batches)}), timed in turns: every
    round runs `repeats` calls of each step, one step after the other, so a change in the
    machine's speed during the run hits all of them alike. Returns {name: [seconds per call,
    one per round]}."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (fn, batches) in steps.items():
            start = time.perf_counter()
            for i in range(repeats):
                fn(*batches[i % len(batches)])
            times[name].append((time.perf_counter() - start) / repeats)
    return times


def ratio(times, name, reference):
    """The median over rounds of `name`'s time divided by `reference`'s in the same round."""
    return statistics.median(a / b for a, b in zip(times[name], times[reference]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    vocab, n_embd, block = 27, 10, 3
    params = make_params(vocab, n_embd, block, args.hidden)
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, vocab, (args.batch, block)), rng.integers(0, vocab, args.batch))
               for _ in range(50)]

    P = [tensorgrad.tensor(v, requires_grad=True) for v in params.values()]
    tg_batches = [(tensorgrad.tensor(x), tensorgrad.tensor(y)) for x, y in batches]
    tg_loss = backward_step(tensorgrad, P, *tg_batches[0]).item()
    np_loss, np_grads = numpy_step(list(params.values()), *batches[0])
    assert abs(tg_loss - np_loss) < 1e-5, (tg_loss, np_loss)
    for p, g in zip(P, np_grads):
        assert np.allclose(p.grad.numpy(), g, rtol=1e-4, atol=1e-6), p.shape

    steps = {"numpy": (lambda x, y: numpy_step(list(params.values()), x, y), batches),
             "tensorgrad": (lambda x, y: backward_step(tensorgrad, P, x, y), tg_batches)}
    try:
        import torch
    except ImportError:
        print("(PyTorch not installed: no torch row)")
    else:
        torch.set_num_threads(1)
        TP = [torch.tensor(v, requires_grad=True) for v in params.values()]
        t_batches = [(torch.tensor(x), torch.tensor(y)) for x, y in batches]
        steps["torch"] = (lambda x, y: backward_step(torch, TP, x, y), t_batches)
    times = timed_in_turns(steps, max(1, args.repeats // 10))

    print(f"forward + backward, batch {args.batch}, n_hidden {args.hidden}, float32, "
          f"{args.repeats} calls each, in 10 turns")
    for name in steps:
        print(f"  {name:11s} {statistics.median(times[name]) * 1e6:8.1f} us   "
              f"{ratio(times, name, 'numpy'):5.2f}x numpy")


if __name__ == "__main__":
    main()
