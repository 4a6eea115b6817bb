"""`tensorgrad.cuda`: PyTorch's `torch.cuda` as seen from a machine without a GPU.

tensorgrad computes with numpy on the CPU, so `is_available()` is False and code that picks
its device with `'cuda' if torch.cuda.is_available() else 'cpu'` runs on the CPU. Seeding
the GPU's generators is accepted and does nothing: there are none to seed.
"""
from .checks import int_arg


def is_available():
    """False: tensorgrad has no GPU to run on."""
    return False


def device_count():
    """0: the number of GPUs tensorgrad can use."""
    return 0


def manual_seed(seed):
    """Accepted and ignored (checked to be an int): there is no GPU generator to seed;
    `tensorgrad.manual_seed` seeds the one that is used."""
    int_arg(seed, "cuda.manual_seed", "seed")


def manual_seed_all(seed):
    """Accepted and ignored, as `manual_seed`."""
    int_arg(seed, "cuda.manual_seed_all", "seed")


__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all"]
