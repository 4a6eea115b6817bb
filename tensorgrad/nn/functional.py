"""The functions of `torch.nn.functional` that tensorgrad provides (see tensorgrad.functional)."""
from ..functional import (batch_norm, cross_entropy, gelu, log_softmax, one_hot, relu, sigmoid,
                          softmax, softplus, tanh)

__all__ = ["batch_norm", "cross_entropy", "gelu", "log_softmax", "one_hot", "relu", "sigmoid",
           "softmax", "softplus", "tanh"]
