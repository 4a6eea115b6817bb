"""PyTorch's `torch.utils` names: `data` (datasets, samplers, DataLoader) and `tensorboard`
(SummaryWriter; imported on its own, `from tensorgrad.utils.tensorboard import
SummaryWriter`, as in PyTorch, since it needs the optional tensorboardX package)."""
from . import data

__all__ = ["data"]
