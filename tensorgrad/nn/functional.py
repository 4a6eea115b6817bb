"""The functions of `torch.nn.functional` that tensorgrad provides (see tensorgrad.functional)."""
from ..functional import (cross_entropy, log_softmax, one_hot, relu, sigmoid, softmax,
                          tanh)

__all__ = ["cross_entropy", "log_softmax", "one_hot", "relu", "sigmoid", "softmax", "tanh"]
