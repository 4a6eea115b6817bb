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
from render_graph import lecture_forward            # the chunked forward, on one batch
from tensorgrad import codegen, viz


def fused_forward(v):
    """Exercises 2 and 3: from the chunked pass's `hprebn` (in `v`, its variables) on, the
    same batch through F.batch_norm and F.cross_entropy; returns the loss."""
    hpreact = F.batch_norm(v["hprebn"], None, None, v["bngain"], v["bnbias"], training=True)
    h = torch.tanh(hpreact)
    logits = h @ v["W2"] + v["b2"]
    loss = F.cross_entropy(logits, v["Yb"])
    viz.name_tensors(locals())
    return loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", action="store_true",
                        help="F.cross_entropy and F.batch_norm (exercises 2 and 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    v = lecture_forward(n=args.batch_size)
    viz.name_tensors(v)
    loss = fused_forward(v) if args.fused else v["loss"]
    program = codegen.generate(loss, {"Xb": v["Xb"], "Yb": v["Yb"]})
    out = program(*[leaf.numpy() for leaf in program.leaves], *[a for _, a in program.args])
    loss.backward()
    for leaf, grad in zip(program.leaves, out[1:]):
        assert np.array_equal(grad, leaf.grad.numpy()), f"{leaf.name}: differs from the engine"
    print(program.source)
    print(f"# loss {float(out[0]):.4f}; every gradient equals the engine's, bit for bit")


if __name__ == "__main__":
    main()
