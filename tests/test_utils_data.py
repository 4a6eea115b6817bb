"""tensorgrad.utils.data against torch.utils.data: the same data sets and options give
batches of the same shapes, dtypes and count, and (where the order is not random) the same
values. Shuffled orders come from different random streams, so only their contents are
compared. The PyTorch comparisons skip when torch is not installed."""
from collections import namedtuple

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset,
                                   RandomSampler, SequentialSampler, TensorDataset,
                                   default_collate)

Point = namedtuple("Point", "x y")


def plain(batch):
    """A batch as comparable plain data: containers by kind, tensors as (dtype, values)."""
    if hasattr(batch, "detach") and hasattr(batch, "numpy"):       # a tensor of either
        array = batch.detach().numpy()
        return ("tensor", str(array.dtype), array.shape, array.tolist())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return (type(batch).__name__, [plain(b) for b in batch])
    if isinstance(batch, dict):
        return ("dict", {k: plain(v) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):
        return (type(batch).__name__, [plain(b) for b in batch])
    return ("other", batch)


def to_lib(lib, x):
    """`x` with every numpy array made a tensor of `lib` (tensorgrad or torch)."""
    if isinstance(x, np.ndarray):
        return lib.tensor(x) if lib is tg else lib.from_numpy(x.copy())
    if isinstance(x, dict):
        return {k: to_lib(lib, v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(to_lib(lib, v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(to_lib(lib, v) for v in x)
    return x


class Squares(Dataset):
    """A map-style data set written as makemore writes its own: a class with two methods."""

    def __init__(self, lib, n):
        self.lib, self.n = lib, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = self.lib.tensor([float(i), float(i * i)])
        return x, self.lib.tensor(i % 3)


def torch_and_tg():
    torch = pytest.importorskip("torch")
    return torch, torch.utils.data


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True),
                                                      (9, 3, False), (9, 3, True),
                                                      (2, 5, False), (2, 5, True),
                                                      (7, 1, False)])
def test_sequential_batches_match_torch(n, batch_size, drop_last):
    torch, tdata = torch_and_tg()
    got = DataLoader(Squares(tg, n), batch_size=batch_size, drop_last=drop_last)
    want = tdata.DataLoader(Squares(torch, n), batch_size=batch_size, drop_last=drop_last)
    assert len(got) == len(want)
    assert [plain(b) for b in got] == [plain(b) for b in want]


@pytest.mark.parametrize("batch_size, drop_last", [(4, False), (4, True), (13, False)])
def test_shuffled_batches_have_torchs_shapes_and_cover_the_data(batch_size, drop_last):
    torch, tdata = torch_and_tg()
    X, Y = np.arange(26, dtype=np.float32).reshape(13, 2), np.arange(13)
    got = list(DataLoader(TensorDataset(tg.tensor(X), tg.tensor(Y)), batch_size=batch_size,
                          shuffle=True, drop_last=drop_last))
    want = list(tdata.DataLoader(tdata.TensorDataset(torch.tensor(X), torch.tensor(Y)),
                                 batch_size=batch_size, shuffle=True, drop_last=drop_last))
    assert [[(b.shape, b.dtype) for b in batch] for batch in got] == [
        [(tuple(b.shape), b.numpy().dtype) for b in batch] for batch in want]
    ys = np.concatenate([yb.numpy() for _, yb in got])
    assert len(set(ys.tolist())) == len(ys)                   # no sample twice in a pass
    if not drop_last:
        assert sorted(ys.tolist()) == list(range(13))
    for xb, yb in got:                                        # rows stay paired
        np.testing.assert_array_equal(xb.numpy(), X[yb.numpy()])


def test_each_pass_shuffles_anew_and_the_seed_repeats_it():
    loader = DataLoader(TensorDataset(tg.arange(50)), batch_size=50, shuffle=True)
    tg.manual_seed(0)
    first, second = (next(iter(loader))[0].tolist() for _ in range(2))
    tg.manual_seed(0)
    assert next(iter(loader))[0].tolist() == first
    tg.manual_seed(0)
    batches = iter(loader)                    # the pass's seed is drawn here, as in PyTorch,
    tg.randn(10)                              # so later draws do not change its order
    assert next(batches)[0].tolist() == first
    assert first != second and sorted(first) == sorted(second) == list(range(50))
    g = tg.Generator().manual_seed(5)
    seeded = DataLoader(TensorDataset(tg.arange(50)), batch_size=50, shuffle=True, generator=g)
    tg.manual_seed(1)                         # the loader's generator, not the global one
    a = next(iter(seeded))[0].tolist()
    g.manual_seed(5)
    tg.manual_seed(2)
    assert next(iter(seeded))[0].tolist() == a


@pytest.mark.parametrize("replacement, num_samples", [(True, None), (True, 25), (True, 3000),
                                                      (False, None), (False, 7), (False, 25)])
def test_random_sampler_counts_match_torch(replacement, num_samples):
    torch, tdata = torch_and_tg()
    data = list(range(10))
    got = RandomSampler(data, replacement=replacement, num_samples=num_samples)
    want = tdata.RandomSampler(data, replacement=replacement, num_samples=num_samples)
    drawn = list(got)
    assert len(got) == len(want) == len(drawn) == len(list(want))
    assert all(isinstance(i, int) and 0 <= i < 10 for i in drawn)
    if not replacement:                       # whole permutations, the last one cut short
        for start in range(0, len(drawn), 10):
            chunk = drawn[start:start + 10]
            assert len(set(chunk)) == len(chunk)
    if replacement and len(drawn) > 1000:     # uniform draws: about 300 of each index
        assert np.bincount(drawn, minlength=10).min() > 200


def test_an_endless_sampler_costs_nothing_up_front():
    """makemore's InfiniteDataLoader: replacement with num_samples=1e10, read with next()."""
    dataset = TensorDataset(tg.arange(100), tg.arange(100) * 2)
    loader = DataLoader(dataset, batch_size=32, pin_memory=True, num_workers=4,
                        sampler=RandomSampler(dataset, replacement=True,
                                              num_samples=10**10 + 1))
    assert len(loader) == 10**10 // 32 + 1
    batches = iter(loader)
    for _ in range(3):
        x, y = next(batches)
        assert x.shape == y.shape == (32,)
        np.testing.assert_array_equal(y.numpy(), 2 * x.numpy())


def nested_samples():
    rng = np.random.default_rng(0)
    return [{"image": rng.standard_normal((2, 3)).astype(np.float32),
             "label": i, "weight": 0.5 * i, "flag": i % 2 == 0, "name": f"s{i}",
             "pair": (np.int64(i), rng.standard_normal(2)),
             "list": [np.array(i, dtype=np.int32), [i, i + 1]],
             "point": Point(float(i), np.arange(3) + i)} for i in range(4)]


@pytest.mark.parametrize("as_tensors", [False, True])
def test_collate_of_nested_samples_matches_torch(as_tensors):
    torch, tdata = torch_and_tg()
    samples = nested_samples()
    got = default_collate([to_lib(tg, s) if as_tensors else s for s in samples])
    want = tdata.default_collate([to_lib(torch, s) if as_tensors else s for s in samples])
    assert plain(got) == plain(want)


def test_the_loader_collates_with_torchs_rules():
    torch, tdata = torch_and_tg()
    samples = nested_samples()
    got = list(DataLoader(samples, batch_size=3))
    want = list(tdata.DataLoader(samples, batch_size=3))
    assert [plain(b) for b in got] == [plain(b) for b in want]
    # no batching: each sample, numpy arrays made tensors
    got = list(DataLoader(samples, batch_size=None))
    want = list(tdata.DataLoader(samples, batch_size=None))
    assert [plain(b) for b in got] == [plain(b) for b in want]


def test_batch_sampler_and_custom_collate_match_torch():
    torch, tdata = torch_and_tg()
    data = [np.float64(i) for i in range(10)]
    got = DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 4, True),
                     collate_fn=lambda batch: sum(batch))
    want = tdata.DataLoader(data, batch_sampler=tdata.BatchSampler(
        tdata.SequentialSampler(data), 4, True), collate_fn=lambda batch: sum(batch))
    assert len(got) == len(want) == 2
    assert list(got) == list(want)
    assert list(BatchSampler(range(7), 3, False)) == list(tdata.BatchSampler(range(7), 3, False))


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(np.arange(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (None, False)])
def test_iterable_dataset_matches_torch(batch_size, drop_last):
    torch, tdata = torch_and_tg()

    class TorchStream(tdata.IterableDataset):
        __iter__, __len__ = Stream.__iter__, Stream.__len__

        def __init__(self, n):
            self.n = n

    got = DataLoader(Stream(8), batch_size=batch_size, drop_last=drop_last)
    want = tdata.DataLoader(TorchStream(8), batch_size=batch_size, drop_last=drop_last)
    assert len(got) == len(want)
    assert [plain(b) for b in got] == [plain(b) for b in want]


def test_tensor_dataset_rows():
    X, Y = tg.randn(5, 3), tg.arange(5)
    ds = TensorDataset(X, Y)
    assert len(ds) == 5
    x, y = ds[2]
    np.testing.assert_array_equal(x.numpy(), X.numpy()[2])
    assert y.item() == 2


@pytest.mark.parametrize("make, kind, message", [
    (lambda: TensorDataset(tg.ones(3), tg.ones(4)), ValueError,
     "TensorDataset: the tensors' first dimensions differ, (3, 4); each tensor needs one row "
     "per sample"),
    (lambda: TensorDataset(tg.tensor(1.0)), TypeError,
     "TensorDataset: argument 0 must be a tensor with a first dimension (one row per "
     "sample), got a 0-d tensor"),
    (lambda: DataLoader([1, 2], batch_size=0), ValueError,
     "DataLoader: batch_size must be at least 1, got 0"),
    (lambda: DataLoader([1, 2], num_workers=-1), ValueError,
     "DataLoader: num_workers must be at least 0, got -1"),
    (lambda: DataLoader([1, 2], shuffle=True, sampler=SequentialSampler([1, 2])), ValueError,
     "DataLoader: pass shuffle=True or a sampler, not both (the sampler decides the order)"),
    (lambda: DataLoader([1, 2], batch_size=None, drop_last=True), ValueError,
     "DataLoader: batch_size=None gives unbatched samples, so there is no last batch to "
     "drop; drop_last must be False"),
    (lambda: DataLoader([1, 2], batch_sampler=[[0, 1]], batch_size=2), ValueError,
     "DataLoader: batch_sampler makes the batches itself; pass no batch_size, shuffle, "
     "sampler or drop_last with it"),
    (lambda: DataLoader(Stream(3), shuffle=True), ValueError,
     "DataLoader: an IterableDataset decides its own order; pass no shuffle, sampler or "
     "batch_sampler with it"),
    (lambda: DataLoader([1, 2], shuffle=1), TypeError,
     "DataLoader: shuffle must be True or False, got int (1)"),
    (lambda: RandomSampler([1, 2], num_samples=0), ValueError,
     "RandomSampler: num_samples must be at least 1, got 0"),
    (lambda: RandomSampler([1, 2], replacement="yes"), TypeError,
     "RandomSampler: replacement must be True or False, got str ('yes')"),
    (lambda: list(RandomSampler([])), ValueError,
     "RandomSampler: the data set is empty, there is nothing to sample"),
    (lambda: next(iter(DataLoader([object(), object()], batch_size=2))), TypeError,
     "default_collate: a batch must hold tensors, numpy arrays of numbers, numbers, strings, "
     "or dicts, lists and tuples of them; found object"),
    (lambda: default_collate([[1, 2], [3]]), RuntimeError,
     "default_collate: the samples of a batch are sequences of different lengths [1, 2]; "
     "each field needs a value in every sample"),
    (lambda: Dataset()[0], NotImplementedError,
     "Dataset: __getitem__() is not defined; a subclass of Dataset defines __getitem__() "
     "and __len__()"),
])
def test_refusals(make, kind, message):
    with pytest.raises(kind) as info:
        make()
    assert str(info.value) == message


def test_importable_as_torch_code_does():
    """`torch.utils.data.X` after `import torch` alone, `from torch.utils.data import X`, and
    from the submodules that PyTorch defines them in."""
    import tensorgrad
    assert tensorgrad.utils.data.DataLoader is DataLoader
    assert tensorgrad.utils.data.RandomSampler is RandomSampler
    # the modules PyTorch code imports from (makemore: torch.utils.data.dataloader)
    from tensorgrad.utils.data.dataloader import DataLoader as from_dataloader
    from tensorgrad.utils.data.dataset import Dataset as from_dataset
    from tensorgrad.utils.data.sampler import RandomSampler as from_sampler
    assert (from_dataloader, from_dataset, from_sampler) == (DataLoader, Dataset, RandomSampler)


def test_collate_keeps_tensors_that_require_grad_in_the_graph():
    a, b = tg.randn(2, 3, requires_grad=True), tg.randn(2, 3, requires_grad=True)
    batch = default_collate([a, b])
    assert batch.shape == (2, 2, 3) and batch.requires_grad
    (batch * tg.tensor([1.0, 2.0]).view(2, 1, 1)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(b.grad.numpy(), 2 * np.ones((2, 3)))
    plain_batch = default_collate([a.detach(), b.detach()])
    assert not plain_batch.requires_grad
    np.testing.assert_array_equal(plain_batch.numpy(), batch.detach().numpy())
    with pytest.raises(ValueError, match=r"^stack: all tensors need the same shape"):
        default_collate([tg.ones(2), tg.ones(3)])
