"""The lecture's exercises 2 and 3, solved by the engine: derive, simplify, prove, compile.

    python examples/derivations.py [--latex]

For softmax cross-entropy, training-mode batchnorm and layer norm (the GPT's) it prints the
forward as tensorgrad reads it, the gradient as the chain rule gives it, the gradient after
each stage of the simplification (docs/symbolic.md, section 3), the simplified gradient,
the proof that it equals the hand-derived formula, the lecture's (the textbook's for layer
norm; the difference, written with the inputs only, is 0), and the numpy kernel it runs
on. Then the local derivatives of the elementwise ops, derived from their formulas.
"""
import argparse
import time

from tensorgrad import symbolic
from tensorgrad.symbolic import builtin_op, lecture_dhprebn, lecture_dlogits, textbook_dx


def show(name, input, lecture, latex):
    start = time.perf_counter()
    op = builtin_op(name)
    work = op.derivation([input])
    work.steps()                         # derives and simplifies (once; cached after)
    elapsed = time.perf_counter() - start
    print(work.latex(stages=True) if latex else work.text(stages=True))
    d = op.definition
    difference = d.difference(d.gradient(input), lecture(d))
    print(f"\nderived - hand-derived, with the inputs only: {difference}")
    print(f"(derived and simplified in {elapsed * 1e3:.0f} ms)\n")
    print(op.writer.gradient_source(input))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latex", action="store_true", help="print LaTeX, not text")
    args = parser.parse_args()
    print("=== exercise 2: cross-entropy ===")
    show("cross_entropy_mean", "logits", lecture_dlogits, args.latex)
    print("=== exercise 3: batchnorm ===")
    show("batch_norm", "hprebn", lecture_dhprebn, args.latex)
    print("=== layer norm (nn.LayerNorm) ===")
    show("layer_norm", "x", textbook_dx, args.latex)
    print("=== elementwise ops: local derivatives from their formulas ===")
    for name in ("exp", "log", "tanh", "sqrt", "sigmoid", "relu", "pow", "softplus", "gelu"):
        d = symbolic.derivative(name)
        print(d.latex() if args.latex else d)


if __name__ == "__main__":
    main()
