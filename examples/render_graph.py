"""Draw the backprop-ninja lecture's MLP: its chunked forward pass and the gradients.

Runs the lecture's forward pass on one batch (the same code as backprop_ninja.py), names
every tensor after its variable, backpropagates keeping every value and gradient, and
writes three pictures, in the compact layout (each op in the box of the tensor it made):

    lecture_graph.svg     the forward graph: each tensor's shape, values and gradient,
                          each op's local derivative
    lecture_backward.svg  the backward pass: gradients flowing from the loss to the
                          parameters, with each sum that undoes broadcasting
    lecture_cross_entropy.svg
                          the backward pass from the loss back to the logits only

    python examples/render_graph.py [--out .] [--format svg] [--rankdir TB]

Rendering needs the `dot` program of Graphviz (see the README); without it the DOT source
is saved instead (.gv) and the error says how to install it.
"""
import argparse
import sys
import time
from pathlib import Path

import tensorgrad as torch
from tensorgrad import viz
from tensorgrad.autograd import keep_grads
from tensorgrad.data import build_dataset, load_words, split_words, vocabulary


def lecture_forward(seed=2147483647, n=32):
    """The lecture's chunked forward pass; returns its local variables, loss included."""
    words = load_words()
    stoi, itos = vocabulary(words)
    vocab_size, block_size = len(itos), 3
    Xtr, Ytr = build_dataset(split_words(words)[0], block_size, stoi)

    n_embd, n_hidden = 10, 64
    g = torch.Generator().manual_seed(seed)
    C = torch.randn((vocab_size, n_embd), generator=g)
    W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5/3) / (n_embd * block_size)**0.5
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
    b2 = torch.randn(vocab_size, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    for p in [C, W1, b1, W2, b2, bngain, bnbias]:
        p.requires_grad = True

    ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]
    emb = C[Xb]                                        # (32, 3, 10)
    embcat = emb.view(emb.shape[0], -1)                # (32, 30)
    hprebn = embcat @ W1 + b1                          # (32, 64)
    bnmeani = 1/n * hprebn.sum(0, keepdim=True)        # (1, 64)
    bndiff = hprebn - bnmeani                          # (32, 64)
    bndiff2 = bndiff**2
    bnvar = 1/(n-1) * bndiff2.sum(0, keepdim=True)     # (1, 64)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2                               # (32, 27)
    logit_maxes = logits.max(1, keepdim=True).values   # (32, 1)
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)          # (32, 1)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    return locals()


def lecture_stages(v):
    """The lecture's stages, each drawn in a frame: {label: (outputs, inputs)}."""
    return {"embedding": (v["embcat"], []), "linear layer 1": (v["hprebn"], v["embcat"]),
            "batchnorm": (v["hpreact"], v["hprebn"]), "tanh": (v["h"], v["hpreact"]),
            "linear layer 2": (v["logits"], v["h"]),
            "cross-entropy": (v["loss"], v["logits"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="directory for the pictures (default: .)")
    parser.add_argument("--format", choices=viz.FORMATS, default="svg")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="top to bottom (default) or left to right")
    args = parser.parse_args(argv)

    with keep_grads():                                 # every value and gradient is kept
        variables = lecture_forward()
        variables["loss"].backward()
    viz.name_tensors(variables)                        # C, W1, ..., emb, ..., logprobs, loss
    loss = variables["loss"]
    print(f"loss {loss.item():.4f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = (("lecture_graph", False, None), ("lecture_backward", True, None),
             ("lecture_cross_entropy", True, variables["logits"]))
    for stem, backward, stop_at in parts:
        start = time.perf_counter()
        graph = viz.draw(loss, rankdir=args.rankdir, backward=backward, compact=True,
                         stop_at=stop_at)
        drawn = time.perf_counter()
        try:
            path = viz.render(graph, out / f"{stem}.{args.format}")
        except viz.DotNotFound as e:
            sys.exit(f"error: {e}")
        nodes, edges = viz.graph_size(graph)
        print(f"{path}: {nodes} nodes, {edges} edges; drawn in "
              f"{(drawn - start) * 1e3:.0f} ms, rendered in "
              f"{(time.perf_counter() - drawn) * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
