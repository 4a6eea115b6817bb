"""Neural-network layers (`tensorgrad.nn`), functions (`tensorgrad.nn.functional`) and
initialisations (`tensorgrad.nn.init`)."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .modules import (GELU, BatchNorm1d, Dropout, Embedding, Flatten, LayerNorm, Linear, Module,
                      Parameter, ReLU, Sigmoid, Tanh)

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "Embedding", "BatchNorm1d",
           "LayerNorm", "Dropout", "Tanh", "ReLU", "GELU", "Sigmoid", "Flatten", "Sequential",
           "ModuleList", "ModuleDict"]
