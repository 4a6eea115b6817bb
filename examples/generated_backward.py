"""The backprop-ninja solutions, written by the engine: the backward pass as numpy code.

Runs the lecture's forward pass of the names MLP on one batch of the names data and prints
the code `tensorgrad.codegen` generates for its forward and backward pass:

    python examples/generated_backward.py            # exercise 1: op by op, the chunked forward
    python examples/generated_backward.py --fused    # exercises 2 and 3: the fused formulas

The code runs on plain numpy arrays; this script runs it and checks that it gives the
engine's gradients bit for bit before printing it.
"""
import argparse

import numpy as np

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad import codegen, viz
from tensorgrad.data import build_dataset, load_words, split_words, vocabulary


def forward(Xb, Yb, params, fused):
    """The lecture's forward pass; every tensor is named after its variable."""
    C, W1, b1, W2, b2, bngain, bnbias = params
    n = Xb.shape[0]
    emb = C[Xb]
    embcat = emb.view(n, -1)
    hprebn = embcat @ W1 + b1
    if fused:
        hpreact = F.batch_norm(hprebn, None, None, bngain, bnbias, training=True)
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
    else:
        bnmeani = 1/n * hprebn.sum(0, keepdim=True)
        bndiff = hprebn - bnmeani
        bndiff2 = bndiff**2
        bnvar = 1/(n-1) * bndiff2.sum(0, keepdim=True)
        bnvar_inv = (bnvar + 1e-5)**-0.5
        bnraw = bndiff * bnvar_inv
        hpreact = bngain * bnraw + bnbias
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        logit_maxes = logits.max(1, keepdim=True).values
        norm_logits = logits - logit_maxes
        counts = norm_logits.exp()
        counts_sum = counts.sum(1, keepdims=True)
        counts_sum_inv = counts_sum**-1
        probs = counts * counts_sum_inv
        logprobs = probs.log()
        loss = -logprobs[range(n), Yb].mean()
    viz.name_tensors(locals())
    return loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", action="store_true",
                        help="F.cross_entropy and F.batch_norm (exercises 2 and 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    words = load_words()
    stoi, _ = vocabulary(words)
    Xtr, Ytr = build_dataset(split_words(words)[0], 3, stoi)
    g = torch.Generator().manual_seed(2147483647)
    n_hidden = 64
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, n_hidden), generator=g) * (5/3) / 30**0.5
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, 27), generator=g) * 0.1
    b2 = torch.randn(27, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    params = [C, W1, b1, W2, b2, bngain, bnbias]
    viz.name_tensors(locals())
    for p in params:
        p.requires_grad = True
    ix = torch.randint(0, Xtr.shape[0], (args.batch_size,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]

    loss = forward(Xb, Yb, params, args.fused)
    program = codegen.generate(loss, {"Xb": Xb, "Yb": Yb})
    out = program(*[leaf.data for leaf in program.leaves], *[a for _, a in program.args])
    loss.backward()
    for leaf, grad in zip(program.leaves, out[1:]):
        assert np.array_equal(grad, leaf.grad.data), f"{leaf.name}: differs from the engine"
    print(program.source)
    print(f"# loss {float(out[0]):.4f}; every gradient equals the engine's, bit for bit")


if __name__ == "__main__":
    main()
