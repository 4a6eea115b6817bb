"""Symbolic gradients: tensorgrad derives backward formulas with sympy and shows its work.

    from tensorgrad import symbolic

    symbolic.derivative("tanh")                  # d out/dx = 1 - out**2, derived from tanh(x)
    softplus = symbolic.elementwise("softplus", "log(1 + exp(x))")   # a new differentiable op

    @symbolic.fused_op(dim=-1, positive=("eps",))
    def layer_norm(f, x, weight, bias, eps=1e-5):   # forward only; the backward is derived
        ...
    print(layer_norm.derivation())

Three pieces:
  elementwise  ops defined by a formula: the local derivative is derived, simplified
               (reusing the output where that is cheaper) and compiled to numpy
  fused        ops with reductions over axes of symbolic length: the gradient of each input
               derived through the steps of the forward, simplified, compiled (kernels)
  library      the fused ops tensorgrad runs on (softmax cross-entropy, batchnorm, layer
               norm) and the hand-derived results they are proved equal to

Not imported by `import tensorgrad` (sympy takes a moment to load). `F.cross_entropy`,
`F.batch_norm` and `F.layer_norm` fetch their fused op from here on first use; the
derivation runs then, once.
"""
from .elementwise_ops import (DERIVED_OPS, ElementwiseFunction, LocalDerivative, derivative,
                          derive_local, derived_op, elementwise)
from .fused import FusedDefinition, Forward
from .kernels import FusedOp, fused_op
from .library import (BUILTINS, builtin_op, cross_entropy_definition, lecture_dhprebn,
                      lecture_dlogits, textbook_dx)
from .library import batch_norm as batch_norm_definition
from .library import layer_norm as layer_norm_definition
from .show import Derivation


def derivation(op):
    """The derivation of an op, for display: `str(result)` is text, `result.latex()` LaTeX.

    `op` may be a fused op (or its op-table class, or a built-in name such as
    "batch_norm"), an elementwise op made with `elementwise`, or the name or class of an
    elementwise op of the op table ("tanh").
    """
    fused = getattr(op, "fused", None)
    if isinstance(op, FusedOp) or fused is not None:
        return (op if isinstance(op, FusedOp) else fused).derivation()
    if isinstance(op, str) and op in BUILTINS:
        return builtin_op(op).derivation()
    return derivative(op)


def gelu(input, approximate="none"):
    """GELU, x * Phi(x), elementwise; approximate="tanh" for the tanh approximation.
    Defined by its formula; its gradient is derived."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return derived_op("gelu" if approximate == "none" else "gelu_tanh")(input)


def softplus(input):
    """log(1 + exp(x)), elementwise, without overflow. Its gradient is derived."""
    return derived_op("softplus")(input)


__all__ = ["derivative", "derive_local", "elementwise", "ElementwiseFunction",
           "LocalDerivative", "DERIVED_OPS", "derived_op", "FusedDefinition", "Forward",
           "FusedOp", "fused_op", "Derivation", "derivation", "BUILTINS", "builtin_op",
           "batch_norm_definition", "cross_entropy_definition", "layer_norm_definition",
           "lecture_dlogits", "lecture_dhprebn", "textbook_dx",
           "gelu", "softplus"]
