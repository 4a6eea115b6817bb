"""Symbolic gradients: tensorgrad derives its backward formulas with sympy and shows its work.

Not imported by `import tensorgrad` (sympy takes a moment to load); the core fetches the
fused kernels it uses (cross-entropy, batchnorm) from here on first use.
"""
from .elementwise import derivative, derive_local, elementwise
from .fused import FusedDefinition, Forward

__all__ = ["derivative", "derive_local", "elementwise", "FusedDefinition", "Forward"]
