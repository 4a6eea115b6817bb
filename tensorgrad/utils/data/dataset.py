"""Data sets: `Dataset` (indexed samples), `IterableDataset` (a stream of samples) and
`TensorDataset` (rows of tensors), as in `torch.utils.data.dataset`."""
from ...checks import shown
from ...tensor import Tensor


class Dataset:
    """A map-style data set: subclasses define `__getitem__(i)` and `__len__()`.

    Any object with those two methods works with DataLoader; this class is there so that
    PyTorch code that subclasses `Dataset` runs unchanged.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: __getitem__() is not defined; a "
                                  "subclass of Dataset defines __getitem__() and __len__()")


class IterableDataset(Dataset):
    """A data set read as a stream: subclasses define `__iter__()`, which yields samples.

    A DataLoader batches the samples in the order they come; it takes no sampler and no
    shuffle (the stream decides the order).
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: __iter__() is not defined; a "
                                  "subclass of IterableDataset defines __iter__()")


class TensorDataset(Dataset):
    """Samples that are rows of tensors: item i is `(t[i] for t in tensors)`, a tuple.

    All the tensors need the same first dimension, the number of samples.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for k, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.ndim == 0:
                what = "a 0-d tensor" if isinstance(t, Tensor) else shown(t)
                raise TypeError(f"TensorDataset: argument {k} must be a tensor with a first "
                                f"dimension (one row per sample), got {what}")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: the tensors' first dimensions differ, "
                             f"{tuple(sizes)}; each tensor needs one row per sample")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


__all__ = ["Dataset", "IterableDataset", "TensorDataset"]
