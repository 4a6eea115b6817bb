"""The cost of a Hessian-vector product against two gradient evaluations, in one run.

    python benchmarks/hvp.py [--repeats 50] [--hidden 200] [--batch 32]

On the lecture's names MLP (its loss with respect to all seven parameters, float64):
  gradient    forward + loss.backward()
  hvp         forward, autograd.grad(create_graph=True), the gradient dotted with v,
              and its gradient: H v through the recorded backward pass
  hvp (torch) the same in PyTorch eager, when installed
Prints the time of each and the ratio of hvp to two gradient evaluations (the classic
estimate: an HVP costs a few gradients), timed in turns (see lecture_step.timed_in_turns).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tensorgrad  # noqa: E402
from lecture_step import forward, make_params, ratio, timed_in_turns  # noqa: E402


def make_steps(lib, P, batches, directions):
    params = [lib.tensor(P[k].astype(np.float64), requires_grad=True)
              for k in ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")]
    vs = [lib.tensor(d) for d in directions]

    def gradient(Xb, Yb):
        return lib.autograd.grad(forward(lib, params, Xb, Yb), params)

    def hvp(Xb, Yb):
        grads = lib.autograd.grad(forward(lib, params, Xb, Yb), params, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vs))
        return lib.autograd.grad(dot, params)

    data = [(lib.tensor(x), lib.tensor(y)) for x, y in batches]
    return gradient, hvp, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    P = make_params(27, 10, 3, args.hidden)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 27, (args.batch, 3)), rng.integers(0, 27, args.batch))
               for _ in range(10)]
    directions = [rng.standard_normal(P[k].shape)
                  for k in ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")]
    steps = {}
    gradient, hvp, data = make_steps(tensorgrad, P, batches, directions)
    steps["gradient"], steps["hvp"] = (gradient, data), (hvp, data)
    try:
        import torch
        torch.set_num_threads(1)
        tgrad, thvp, tdata = make_steps(torch, P, batches, directions)
        steps["gradient (torch)"], steps["hvp (torch)"] = (tgrad, tdata), (thvp, tdata)
    except ImportError:
        pass
    for fn, batch in steps.values():            # warm up (sympy derives the fused ops once)
        fn(*batch[0])
    times = timed_in_turns(steps, args.repeats)
    print(f"lecture MLP, batch {args.batch}, n_hidden {args.hidden}, float64, "
          f"{args.repeats} calls each, in 10 turns")
    for name, ts in times.items():
        print(f"  {name:18s} {np.median(ts) * 1e6:10.1f} us")
    print(f"hvp / (2 x gradient): {ratio(times, 'hvp', 'gradient') / 2:.2f}")
    if "hvp (torch)" in times:
        print(f"hvp (torch) / (2 x gradient (torch)): "
              f"{ratio(times, 'hvp (torch)', 'gradient (torch)') / 2:.2f}")
        print(f"hvp / hvp (torch): {ratio(times, 'hvp', 'hvp (torch)'):.2f}")


if __name__ == "__main__":
    main()
