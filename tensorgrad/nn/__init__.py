"""Neural-network layers (`tensorgrad.nn`) and functions (`tensorgrad.nn.functional`)."""
from . import functional
from .modules import BatchNorm1d, Embedding, Flatten, Linear, Module, Sequential, Tanh

__all__ = ["functional", "Module", "Linear", "Embedding", "BatchNorm1d", "Tanh", "Flatten",
           "Sequential"]
