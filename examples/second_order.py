"""Second derivatives on tensorgrad: Newton's method against gradient descent, and a
Hessian-vector product checked against finite differences of gradients.

    python examples/second_order.py [--points 200] [--seed 0] [--out second_order.svg]

The problem: logistic regression on a small synthetic data set (3 features and a bias),
loss = mean(softplus(z) - y z) + 0.01 |w|^2 / 2 with z = X w. Its Hessian comes from
`tensorgrad.autograd.functional.hessian`, through the backward pass recorded as a graph;
softplus's second derivative is derived by sympy (its derivative is an op of its own).
Newton's step solves H d = g; gradient descent steps by -lr g. The script prints both runs
and the Hessian-vector product check, and draws the graph of the gradient (the backward
pass as ops) when Graphviz's `dot` is installed.
"""
import argparse

import numpy as np

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad import autograd
from tensorgrad.autograd.functional import hessian, hvp

WEIGHT_DECAY = 0.01


def make_data(points, seed):
    """Points with 3 features plus a column of ones; labels from a noisy linear rule."""
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((points, 3)), np.ones((points, 1))])
    true_w = np.array([2.0, -1.0, 0.5, 0.3])
    y = (X @ true_w + rng.logistic(size=points) > 0).astype(np.float64)
    return torch.tensor(X), torch.tensor(y)


def loss_fn(X, y):
    """The regularised logistic loss as a function of the weights."""
    def loss(w):
        z = X @ w
        return (F.softplus(z) - y * z).mean() + WEIGHT_DECAY / 2 * (w * w).sum()
    return loss


def gradient(loss, w):
    w = w.detach().requires_grad_()
    (g,) = autograd.grad(loss(w), w)
    return g


def newton(loss, w, steps):
    """Newton's method: w <- w - H^-1 g. Returns the loss after each step."""
    history = []
    for _ in range(steps):
        g, H = gradient(loss, w), hessian(loss, w)
        w = w - torch.tensor(np.linalg.solve(H.numpy(), g.numpy()))
        history.append(loss(w).item())
    return w, history


def gradient_descent(loss, w, steps, lr):
    history = []
    for _ in range(steps):
        w = w - lr * gradient(loss, w)
        history.append(loss(w).item())
    return w, history


def check_hvp(loss, w, seed, eps=1e-6):
    """H v from the recorded backward pass against (g(w + eps v) - g(w - eps v)) / 2 eps."""
    v = torch.tensor(np.random.default_rng(seed + 1).standard_normal(w.shape))
    _, hv = hvp(loss, w, v)
    numeric = (gradient(loss, w + eps * v) - gradient(loss, w - eps * v)) / (2 * eps)
    return hv, numeric


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--points", type=int, default=200, help="data points")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--steps", type=int, default=8, help="steps of each method")
    parser.add_argument("--lr", type=float, default=1.0, help="gradient descent's step size")
    parser.add_argument("--out", default=None,
                        help="draw the gradient's graph to this file (.svg or .png)")
    args = parser.parse_args(argv)

    X, y = make_data(args.points, args.seed)
    loss = loss_fn(X, y)
    w0 = torch.zeros(4, dtype=torch.float64)
    _, newton_losses = newton(loss, w0, args.steps)
    _, gd_losses = gradient_descent(loss, w0, args.steps, args.lr)
    print(f"loss at w = 0: {loss(w0).item():.10f}")
    print(" step | Newton          | gradient descent")
    for k, (a, b) in enumerate(zip(newton_losses, gd_losses), 1):
        print(f" {k:4d} | {a:.12f} | {b:.12f}")

    hv, numeric = check_hvp(loss, w0 + 0.5, args.seed)
    print(f"Hessian-vector product at w = 0.5: {np.round(hv.numpy(), 6)}")
    print(f"max difference from finite differences of gradients: "
          f"{float(np.abs(hv.numpy() - numeric.numpy()).max()):.2e}")

    if args.out:
        from tensorgrad import viz
        w = (w0 + 0.5).requires_grad_()
        with autograd.keep_grads():                  # keep every value, to show it
            (g,) = autograd.grad(loss(w), w, create_graph=True)
        try:
            viz.render(g.sum(), args.out)
            print(f"wrote {args.out}: the graph of the gradient, the backward pass as ops")
        except Exception as e:                       # no `dot` program: say so, go on
            print(f"no drawing: {e}")
    return newton_losses, gd_losses, hv, numeric


if __name__ == "__main__":
    main()
