"""The backprop-ninja exercises, solved on tensorgrad.

Runs the lecture's chunked forward pass of the names MLP on one batch, lets the engine
backpropagate through it, backpropagates again by hand (exercise 1), and prints the
comparison table: one row per tensor, exact match, approximate match, largest difference.
Then checks the fused cross-entropy (exercise 2) and batchnorm (exercise 3) gradients.

    python examples/backprop_ninja.py [--data names.txt] [--seed 2147483647]

The code below is PyTorch code with `torch` swapped for tensorgrad in the imports.
"""
import argparse
import sys
import time

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad.data import DataError, build_dataset, load_words, split_words, vocabulary


def cmp(name, dt, t):
    """One row of the table: the hand-derived gradient `dt` against the engine's `t.grad`."""
    exact = torch.all(dt == t.grad).item()
    approx = torch.allclose(dt, t.grad)
    maxdiff = (dt - t.grad).abs().max().item()
    print(f"{name:15s} | exact: {str(exact):5s} | approximate: {str(approx):5s} "
          f"| maxdiff: {maxdiff:.3g}")
    return exact, approx


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a UTF-8 words file, one per line (default: names)")
    parser.add_argument("--seed", type=int, default=2147483647)
    args = parser.parse_args(argv)
    try:
        words = load_words(args.data)
    except DataError as e:
        sys.exit(f"error: {e}")

    stoi, itos = vocabulary(words)
    vocab_size, block_size = len(itos), 3
    train, _, _ = split_words(words)
    Xtr, Ytr = build_dataset(train, block_size, stoi)

    # parameters: small random values everywhere, so a wrong gradient cannot hide behind 0s
    n_embd, n_hidden = 10, 64
    g = torch.Generator().manual_seed(args.seed)
    C = torch.randn((vocab_size, n_embd), generator=g)
    W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5/3) / (n_embd * block_size)**0.5
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
    b2 = torch.randn(vocab_size, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    print(f"{sum(p.nelement() for p in parameters)} parameters")
    for p in parameters:
        p.requires_grad = True

    n = 32
    ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]

    # forward pass, in steps small enough to backpropagate through one at a time
    start = time.perf_counter()
    emb = C[Xb]                                        # (32, 3, 10)
    embcat = emb.view(emb.shape[0], -1)                # (32, 30)
    hprebn = embcat @ W1 + b1                          # (32, 64)
    bnmeani = 1/n * hprebn.sum(0, keepdim=True)        # (1, 64)
    bndiff = hprebn - bnmeani                          # (32, 64)
    bndiff2 = bndiff**2
    bnvar = 1/(n-1) * bndiff2.sum(0, keepdim=True)     # (1, 64), Bessel's correction
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2                               # (32, 27)
    logit_maxes = logits.max(1, keepdim=True).values   # (32, 1)
    norm_logits = logits - logit_maxes                 # subtracted for numerical stability
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)          # (32, 1)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()

    intermediates = [logprobs, probs, counts_sum_inv, counts_sum, counts, norm_logits,
                     logit_maxes, logits, h, hpreact, bnraw, bnvar_inv, bnvar, bndiff2,
                     bndiff, bnmeani, hprebn, embcat, emb]
    for t in intermediates:
        t.retain_grad()
    loss.backward()
    elapsed = time.perf_counter() - start
    print(f"loss {loss.item():.4f}; forward + backward took {elapsed * 1e3:.2f} ms")

    # exercise 1: backpropagate by hand, through every intermediate in reverse order
    with torch.no_grad():
        dlogprobs = torch.zeros_like(logprobs)
        dlogprobs[range(n), Yb] = -1.0/n
        dprobs = (1.0 / probs) * dlogprobs
        dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
        dcounts = counts_sum_inv * dprobs
        dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
        dcounts += torch.ones_like(counts) * dcounts_sum
        dnorm_logits = counts * dcounts
        dlogits = dnorm_logits.clone()
        dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
        dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
        dh = dlogits @ W2.T
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(0)
        dhpreact = (1.0 - h**2) * dh
        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
        dbnraw = bngain * dhpreact
        dbnbias = dhpreact.sum(0, keepdim=True)
        dbndiff = bnvar_inv * dbnraw
        dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
        dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
        dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar
        dbndiff += (2 * bndiff) * dbndiff2
        dhprebn = dbndiff.clone()
        dbnmeani = (-dbndiff).sum(0)
        dhprebn += 1.0/n * (torch.ones_like(hprebn) * dbnmeani)
        dembcat = dhprebn @ W1.T
        dW1 = embcat.T @ dhprebn
        db1 = dhprebn.sum(0)
        demb = dembcat.view(emb.shape)
        dC = torch.zeros_like(C)
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                dC[Xb[k, j]] += demb[k, j]

    print("\nexercise 1: every gradient, by hand vs by the engine")
    rows = {"logprobs": (dlogprobs, logprobs), "probs": (dprobs, probs),
            "counts_sum_inv": (dcounts_sum_inv, counts_sum_inv),
            "counts_sum": (dcounts_sum, counts_sum), "counts": (dcounts, counts),
            "norm_logits": (dnorm_logits, norm_logits), "logit_maxes": (dlogit_maxes, logit_maxes),
            "logits": (dlogits, logits), "h": (dh, h), "W2": (dW2, W2), "b2": (db2, b2),
            "hpreact": (dhpreact, hpreact), "bngain": (dbngain, bngain),
            "bnbias": (dbnbias, bnbias), "bnraw": (dbnraw, bnraw),
            "bnvar_inv": (dbnvar_inv, bnvar_inv), "bnvar": (dbnvar, bnvar),
            "bndiff2": (dbndiff2, bndiff2), "bndiff": (dbndiff, bndiff),
            "bnmeani": (dbnmeani, bnmeani), "hprebn": (dhprebn, hprebn),
            "embcat": (dembcat, embcat), "W1": (dW1, W1), "b1": (db1, b1),
            "emb": (demb, emb), "C": (dC, C)}
    results = [cmp(name, dt, t) for name, (dt, t) in rows.items()]
    exact = sum(e for e, _ in results)
    approx = sum(a for _, a in results)
    print(f"{exact} of {len(results)} bit-exact, {approx} of {len(results)} approximately equal")

    print("\nexercise 2: cross-entropy in one step")
    loss_fast = F.cross_entropy(logits, Yb)
    print(f"F.cross_entropy {loss_fast.item():.6f}, chunked {loss.item():.6f}, "
          f"diff {(loss_fast - loss).item():.2g}")
    with torch.no_grad():
        dlogits = F.softmax(logits, 1)
        dlogits[range(n), Yb] -= 1
        dlogits /= n
    ok2 = cmp("logits", dlogits, logits)[1]

    print("\nexercise 3: batchnorm in one step")
    with torch.no_grad():
        hpreact_fast = bngain * (hprebn - hprebn.mean(0, keepdim=True)) / torch.sqrt(
            hprebn.var(0, keepdim=True, unbiased=True) + 1e-5) + bnbias
        print(f"forward max diff {(hpreact_fast - hpreact).abs().max().item():.2g}")
        dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                            - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    ok3 = cmp("hprebn", dhprebn, hprebn)[1]
    return 0 if approx == len(results) and ok2 and ok3 else 1


if __name__ == "__main__":
    sys.exit(main())
