"""The makemore training run's recipe on PyTorch eager (CPU), as a reference for wall time.

    python benchmarks/makemore_torch.py [--steps 200000] [--threads 1]

Same data split, model, initialisation scheme, batch, steps and learning rates as
`tensorgrad-makemore` (its random numbers differ: PyTorch draws its own). Prints the wall
time of the training loop, steps/s and the train/val/test losses after batchnorm
calibration. Compare with `summary.json` of a tensorgrad run made in the same session.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from tensorgrad.data import build_dataset, load_words, split_words, vocabulary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    words = load_words()
    stoi, itos = vocabulary(words)
    splits = [tuple(torch.tensor(t.numpy()) for t in build_dataset(part, 3, stoi))
              for part in split_words(words)]
    (Xtr, Ytr), _, _ = splits
    V, n_embd, n_hidden, block = len(itos), 10, 200, 3
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((V, n_embd), generator=g)
    W1 = torch.randn((n_embd * block, n_hidden), generator=g) * (5/3) / (n_embd * block)**0.5
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, V), generator=g) * 0.1
    b2 = torch.randn(V, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True

    def hidden(X, mean=None, var=None):
        hprebn = C[X].view(X.shape[0], -1) @ W1 + b1
        if mean is None:
            mean = hprebn.mean(0, keepdim=True)
            var = hprebn.var(0, keepdim=True, unbiased=True)
        return torch.tanh(bngain * (hprebn - mean) * (var + 1e-5)**-0.5 + bnbias)

    start = time.perf_counter()
    for step in range(args.steps):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        loss = F.cross_entropy(hidden(Xtr[ix]) @ W2 + b2, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if step < args.steps // 2 else 0.01
        with torch.no_grad():
            for p in parameters:
                p += -lr * p.grad
    seconds = time.perf_counter() - start

    with torch.no_grad():
        hprebn = C[Xtr].view(Xtr.shape[0], -1) @ W1 + b1
        mean, var = hprebn.mean(0, keepdim=True), hprebn.var(0, keepdim=True, unbiased=True)
        losses = {name: F.cross_entropy(hidden(X, mean, var) @ W2 + b2, Y).item()
                  for name, (X, Y) in zip(("train", "val", "test"), splits)}
    print(f"PyTorch {torch.__version__} eager, {args.threads} thread(s): {args.steps} steps in "
          f"{seconds:.1f} s ({args.steps / seconds:.0f} steps/s)")
    print("  ".join(f"{name} {value:.4f}" for name, value in losses.items()))


if __name__ == "__main__":
    main()
