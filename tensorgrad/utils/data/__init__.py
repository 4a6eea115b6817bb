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
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import Dataset, IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Sampler", "SequentialSampler",
           "RandomSampler", "BatchSampler", "DataLoader", "default_collate", "default_convert"]
