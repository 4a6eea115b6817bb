"""Datasets, samplers and the DataLoader, with `torch.utils.data`'s names and semantics.

    loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)
    for xb, yb in loader:           # xb (32, ...) and yb (32,), the last batch smaller
        ...

A DataLoader asks its sampler for indices, groups them into batches (a BatchSampler),
fetches each sample with `dataset[i]` and joins the samples of a batch with `collate_fn`
(by default `default_collate`: tensors, arrays and numbers are stacked into one tensor,
and tuples, lists and dicts of them are collated field by field).

What differs from PyTorch:
- Batches are always made in this process: `num_workers` and `pin_memory` are accepted
  (and checked) so that PyTorch code runs unchanged, but no worker processes start and
  no memory is pinned (there is no GPU to copy to). `worker_init_fn` is never called, as
  in PyTorch with `num_workers=0`.
- Shuffled orders come from tensorgrad's random numbers (the global seed set by
  `tensorgrad.manual_seed`, or the `generator` given), so a seeded run repeats its
  order, but not PyTorch's order for the same seed.
"""
import collections.abc
import itertools

import numpy as np

from ..checks import NUMBER_KINDS, int_arg, shown
from ..creation import Generator, as_tensor, default_generator, tensor
from ..functional import stack
from ..tensor import Tensor


# ---------------------------------------------------------------- datasets

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
                what = f"a 0-d tensor" if isinstance(t, Tensor) else shown(t)
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


# ---------------------------------------------------------------- samplers

class Sampler:
    """Yields dataset indices (or, for a batch sampler, lists of them) in some order."""

    def __init__(self, data_source=None):
        pass                                # PyTorch's signature; the argument is unused

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: __iter__() is not defined; a "
                                  "subclass of Sampler defines __iter__()")


class SequentialSampler(Sampler):
    """Indices 0, 1, ..., len(data_source) - 1, in order."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in a random order: a permutation of the data set, or with `replacement`,
    `num_samples` independent uniform draws.

    Without replacement, `num_samples` (default: the data set's size) may exceed the size:
    then whole permutations follow one another, the last one cut short. Draws happen as
    they are consumed, so `num_samples=int(1e10)` (an endless stream) costs nothing up
    front. Each pass (`iter`) draws a fresh order from `generator`, or, without one, from
    a seed taken from the global generator (`tensorgrad.manual_seed`), as PyTorch does.
    """

    CHUNK = 1024                    # draws with replacement made per numpy call

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be True or False, got "
                            f"{shown(replacement)}")
        if num_samples is not None:
            int_arg(num_samples, "RandomSampler", "num_samples", low=1)
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"RandomSampler: generator must be a tensorgrad.Generator, got "
                            f"{shown(generator)}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator

    @property
    def num_samples(self):
        """How many indices a pass yields (the data set's size unless given)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, total = len(self.data_source), self.num_samples
        if n == 0:
            raise ValueError("RandomSampler: the data set is empty, there is nothing to "
                             "sample")
        rng = _pass_rng(self.generator)
        if self.replacement:
            for start in range(0, total, self.CHUNK):
                yield from rng.integers(n, size=min(self.CHUNK, total - start)).tolist()
        else:
            for start in range(0, total, n):
                yield from rng.permutation(n)[:total - start].tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`; the last, shorter list
    is dropped with `drop_last`."""

    def __init__(self, sampler, batch_size, drop_last):
        self.batch_size = int_arg(batch_size, "BatchSampler", "batch_size", low=1)
        if not isinstance(drop_last, bool):
            raise TypeError(f"BatchSampler: drop_last must be True or False, got "
                            f"{shown(drop_last)}")
        self.sampler, self.drop_last = sampler, drop_last

    def __iter__(self):
        return _batches(iter(self.sampler), self.batch_size, self.drop_last)

    def __len__(self):
        return _batch_count(len(self.sampler), self.batch_size, self.drop_last)


def _pass_rng(generator):
    """The numpy generator for one pass of a sampler: `generator`'s own, or a new one
    seeded from the global generator (so each pass, like each epoch, differs)."""
    if generator is not None:
        return generator.rng
    seed = int(default_generator.rng.integers(2**63))
    return Generator(seed).rng


def _batches(items, size, drop_last):
    """Lists of `size` consecutive items of the iterator `items`; the last may be shorter
    (or is dropped with `drop_last`)."""
    while batch := list(itertools.islice(items, size)):
        if len(batch) < size and drop_last:
            return
        yield batch


def _batch_count(n, size, drop_last):
    return n // size if drop_last else -(-n // size)     # (a float division rounds past 2**53)


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
        return stack(batch)
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


__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Sampler", "SequentialSampler",
           "RandomSampler", "BatchSampler", "DataLoader", "default_collate", "default_convert"]
