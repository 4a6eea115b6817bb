"""Neural-network building blocks. `tensorgrad.nn.functional` holds the functions."""
from . import functional

__all__ = ["functional"]
