"""The DataLoader and the collate functions that join samples into batches, as in
`torch.utils.data.dataloader` (see the package's docstring for what differs)."""
import collections.abc

import numpy as np

from ...checks import NUMBER_KINDS, int_arg, shown
from ...creation import Generator, as_tensor, tensor
from ...functional import stack
from ...tensor import Tensor
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _batch_count, _batches


# ---------------------------------------------------------------- collating

def default_collate(batch):
    """Join a list of samples into one batch, as PyTorch's `default_collate` does.

    Tensors and numpy arrays are stacked along a new first dimension; Python floats become
    a float64 tensor, ints int64 and bools bool; strings stay a list. Samples that are
    dicts give a dict of batches, key by key; tuples and lists give a list of batches,
    field by field (a tuple becomes a list, as in PyTorch); named tuples keep their type.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(t.requires_grad or t.shape != elem.shape or t.dtype != elem.dtype
               for t in batch):
            return stack(batch)     # in the graph, with PyTorch's promotion and shape check
        # a batch of data, outside the graph: one numpy call (stack's unsqueeze-and-cat
        # per sample took 2/3 of the time of a makemore batch of 32)
        return Tensor._wrap(np.stack([t._data for t in batch]), None)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind not in NUMBER_KINDS:
            raise _collate_error(elem)
        return as_tensor(np.stack(batch))           # keeps the arrays' dtype
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)
    if isinstance(elem, int):                       # bool is an int: a bool tensor
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _same_type(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):          # a named tuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        sizes = {len(sample) for sample in batch}
        if len(sizes) > 1:
            raise RuntimeError(f"default_collate: the samples of a batch are sequences of "
                               f"different lengths {sorted(sizes)}; each field needs a value "
                               "in every sample")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return fields if isinstance(elem, (tuple, list)) else _same_type(elem, fields)
    raise _collate_error(elem)


def default_convert(data):
    """Turn numpy arrays and scalars (also inside dicts, lists and tuples) into tensors,
    leaving the rest as it is: the collate_fn of a DataLoader with `batch_size=None` (no batching)."""
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind in NUMBER_KINDS:
        return as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_type(data, {key: default_convert(value) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (tuple, list)):                 # a tuple becomes a list, as in PyTorch
        return [default_convert(d) for d in data]
    return data


def _same_type(like, value):
    """`value` in the container type of `like` when that type can be built from it (a
    dict subclass, a custom sequence), else as it is, as PyTorch falls back."""
    try:
        return type(like)(value)
    except TypeError:
        return value


def _collate_error(elem):
    what = elem.dtype if isinstance(elem, (np.ndarray, np.generic)) else type(elem).__name__
    return TypeError(f"default_collate: a batch must hold tensors, numpy arrays of numbers, "
                     f"numbers, strings, or dicts, lists and tuples of them; found {what}")


# ---------------------------------------------------------------- the loader

class DataLoader:
    """Batches of a data set, in order, shuffled, or as a sampler gives them.

    `len(loader)` is the number of batches; `iter(loader)` starts a pass (a new order each
    time with `shuffle=True`), and `next()` on it gives the next batch. Arguments are
    PyTorch's: `sampler` (indices) or `batch_sampler` (lists of indices) replace the
    default order; `batch_size=None` gives the samples one by one, unbatched.
    `num_workers`, `pin_memory`, `timeout`, `worker_init_fn`, `prefetch_factor` and
    `persistent_workers` are accepted but change nothing: batches are made in this
    process, when `next()` asks for them.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False,
                 timeout=0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor=None, persistent_workers=False):
        int_arg(num_workers, "DataLoader", "num_workers", low=0)
        for what, flag in (("shuffle", shuffle), ("pin_memory", pin_memory),
                           ("drop_last", drop_last)):
            if flag is not None and not isinstance(flag, bool):
                raise TypeError(f"DataLoader: {what} must be True or False, got {shown(flag)}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be a function of a list of "
                            f"samples, got {shown(collate_fn)}")
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"DataLoader: generator must be a tensorgrad.Generator, got "
                            f"{shown(generator)}")
        streamed = isinstance(dataset, IterableDataset)
        if streamed and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset decides its own order; pass no "
                             "shuffle, sampler or batch_sampler with it")
        if shuffle and sampler is not None:
            raise ValueError("DataLoader: pass shuffle=True or a sampler, not both (the "
                             "sampler decides the order)")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler makes the batches itself; pass "
                                 "no batch_size, shuffle, sampler or drop_last with it")
            batch_size = None
        elif batch_size is None:
            if drop_last:
                raise ValueError("DataLoader: batch_size=None gives unbatched samples, so "
                                 "there is no last batch to drop; drop_last must be False")
        else:
            int_arg(batch_size, "DataLoader", "batch_size", low=1)
        if sampler is None and not streamed:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_sampler is None and batch_size is not None and not streamed:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor
        self.persistent_workers = persistent_workers
        self.multiprocessing_context = multiprocessing_context
        self._auto_collation = batch_sampler is not None or (streamed and batch_size is not None)
        self.collate_fn = collate_fn or (default_collate if self._auto_collation
                                         else default_convert)

    def __iter__(self):
        """One pass over the data: an iterator of batches, made as they are asked for."""
        if isinstance(self.dataset, IterableDataset):
            samples = iter(self.dataset)
            if self.batch_size is None:
                return map(self.collate_fn, samples)
            return map(self.collate_fn, _batches(samples, self.batch_size, self.drop_last))
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        return (self.collate_fn([self.dataset[i] for i in indices])
                for indices in self.batch_sampler)

    def __len__(self):
        """The number of batches in a pass (of samples, with `batch_size=None`)."""
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            return n if self.batch_size is None else _batch_count(n, self.batch_size,
                                                                  self.drop_last)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)


__all__ = ["DataLoader", "default_collate", "default_convert"]
