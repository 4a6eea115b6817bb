"""Devices, as PyTorch names them: tensorgrad computes with numpy, so there is one, the CPU.

PyTorch code says where its tensors live (`device="cpu"`, `.to(device)`, `torch.device`),
and the lecture's programs pick "cuda" only when `torch.cuda.is_available()`. So every
creation function and `Tensor.to` take a device, accept the CPU in any of its spellings,
and refuse any other device in one line, rather than compute on the CPU while the code
believes it runs elsewhere.
"""
from .checks import DEVICES, shown


class device:
    """A device, as `torch.device`: `device("cpu")`, or `device("cpu", 0)`; its `type` is
    "cpu". Other devices ("cuda", "mps") are refused: tensorgrad runs on the CPU only."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        self.type, self.index = _cpu(type, "device"), index

    def __repr__(self):
        return f"device(type='cpu'{'' if self.index is None else f', index={self.index}'})"

    def __str__(self):
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            return other in ("cpu", str(self))
        return isinstance(other, device) and (other.type, other.index) == (self.type, self.index)

    def __hash__(self):
        return hash((self.type, self.index))


def is_device(value):
    """Whether `value` names a device (a `device`, or a string such as "cpu" or "cuda:0"),
    as opposed to a dtype: `Tensor.to` takes either."""
    return isinstance(value, device) or (isinstance(value, str)
                                         and value.split(":")[0] in DEVICES)


def device_arg(value, op):
    """A `device=` argument: None, or the CPU in any spelling, refused otherwise."""
    if value is not None and not isinstance(value, device):
        _cpu(value, op)


def _cpu(value, op):
    """"cpu" from the CPU's names ("cpu", "cpu:0"); one line for anything else."""
    if isinstance(value, str) and value.split(":")[0] == "cpu":
        return "cpu"
    if isinstance(value, str) and value.split(":")[0] in DEVICES:
        raise RuntimeError(f"{op}: device {value!r} is not available: tensorgrad runs on the "
                           "CPU only (numpy); use 'cpu' (torch.cuda.is_available() is False)")
    raise TypeError(f"{op}: expected a device such as 'cpu', got {shown(value)}")


CPU = device("cpu")

__all__ = ["device", "CPU", "is_device", "device_arg"]
