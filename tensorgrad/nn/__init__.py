"""Neural-network layers (`tensorgrad.nn`), functions (`tensorgrad.nn.functional`) and
initialisations (`tensorgrad.nn.init`)."""
from . import functional, init
from .modules import (GELU, BatchNorm1d, Dropout, Embedding, Flatten, LayerNorm, Linear, Module,
                      ModuleDict, ModuleList, Parameter, ReLU, Sequential, Sigmoid, Tanh)

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "Embedding", "BatchNorm1d",
           "LayerNorm", "Dropout", "Tanh", "ReLU", "GELU", "Sigmoid", "Flatten", "Sequential",
           "ModuleList", "ModuleDict"]
