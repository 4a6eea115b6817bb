"""Samplers: the order in which a DataLoader visits a data set, as in
`torch.utils.data.sampler`. Random orders come from tensorgrad's generators (numpy's
stream), not PyTorch's."""
import itertools

from ...checks import int_arg, shown
from ...creation import Generator, default_generator


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
        # the pass's generator is chosen now, at iter(), as PyTorch draws its seed then;
        # the indices are drawn as they are consumed
        return self._indices(_pass_rng(self.generator), n, total)

    def _indices(self, rng, n, total):
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


__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "BatchSampler"]
