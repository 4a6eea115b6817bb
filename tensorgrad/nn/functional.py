"""The functions of `torch.nn.functional` that tensorgrad provides (see tensorgrad.functional)."""
from ..functional import (batch_norm, cross_entropy, dropout, gelu, layer_norm, linear,
                          log_softmax, one_hot, relu, sigmoid, softmax, softplus, tanh)

__all__ = ["batch_norm", "cross_entropy", "dropout", "gelu", "layer_norm", "linear",
           "log_softmax", "one_hot", "relu", "sigmoid", "softmax", "softplus", "tanh"]
