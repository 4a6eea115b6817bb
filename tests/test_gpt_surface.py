"""The tensor surface the lecture's GPT and makemore.py use beyond the MLP: devices and
dtypes, masks and triangles, roll, topk, randperm, linspace, histogram, remainder and
cross_entropy's ignore_index, checked against PyTorch where it is installed.

Gradients of the differentiable ones are checked in test_gradients.py (finite differences,
PyTorch in float64 and float32, dtypes); here: values, indices, random functions, devices,
and the generated code of a step that uses them.
"""
import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import codegen


def torch_or_skip():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------- devices

CREATIONS = {
    "tensor": lambda lib, **kw: lib.tensor([1.0, 2.0], **kw),
    "as_tensor": lambda lib, **kw: lib.as_tensor([1, 2], **kw),
    "zeros": lambda lib, **kw: lib.zeros(2, 3, **kw),
    "ones": lambda lib, **kw: lib.ones((2, 3), **kw),
    "empty": lambda lib, **kw: lib.empty(2, 3, **kw),
    "full": lambda lib, **kw: lib.full((2,), 7, **kw),
    "zeros_like": lambda lib, **kw: lib.zeros_like(lib.ones(2), **kw),
    "ones_like": lambda lib, **kw: lib.ones_like(lib.ones(2), **kw),
    "full_like": lambda lib, **kw: lib.full_like(lib.ones(2), 3, **kw),
    "arange": lambda lib, **kw: lib.arange(0, 4, **kw),
    "linspace": lambda lib, **kw: lib.linspace(0, 1, 5, **kw),
    "randn": lambda lib, **kw: lib.randn(2, 3, **kw),
    "rand": lambda lib, **kw: lib.rand(2, **kw),
    "randint": lambda lib, **kw: lib.randint(0, 5, (3,), **kw),
    "randperm": lambda lib, **kw: lib.randperm(4, **kw),
}


def test_cuda_is_not_available_and_its_seeds_are_accepted():
    assert tg.cuda.is_available() is False and tg.cuda.device_count() == 0
    assert tg.cuda.manual_seed(3) is None and tg.cuda.manual_seed_all(3) is None
    device = "cuda" if tg.cuda.is_available() else "cpu"        # the lecture's setup line
    assert tg.zeros(2, device=device).device == tg.device("cpu")


@pytest.mark.parametrize("name", list(CREATIONS))
@pytest.mark.parametrize("device", ["cpu", "cpu:0", tg.device("cpu")], ids=str)
def test_every_creation_function_takes_the_cpu(name, device):
    t = CREATIONS[name](tg, device=device)
    assert t.device == tg.device("cpu") and t.device.type == "cpu" and not t.is_cuda


@pytest.mark.parametrize("name", list(CREATIONS))
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_every_creation_function_refuses_other_devices_in_one_line(name, device):
    with pytest.raises(RuntimeError) as info:
        CREATIONS[name](tg, device=device)
    assert str(info.value) == (f"{name}: device {device!r} is not available: tensorgrad runs "
                               "on the CPU only (numpy); use 'cpu' (torch.cuda.is_available() "
                               "is False)")


def test_to_takes_devices_dtypes_and_both():
    x = tg.ones(2, 3)
    assert x.to("cpu") is x and x.to(tg.device("cpu")) is x and x.cpu() is x
    assert x.to("cpu", tg.float64).dtype == np.float64
    assert x.to(tg.device("cpu"), dtype=tg.int32).dtype == np.int32
    assert x.to(device="cpu", dtype=tg.long).dtype == np.int64
    assert x.to(tg.zeros(1, dtype=tg.float64)).dtype == np.float64
    assert x.to("cpu", copy=True) is not x
    w = tg.ones(3, requires_grad=True)
    y = w.to("cpu", tg.float64)                   # a float cast stays in the graph
    (y * tg.arange(3.0, dtype=tg.float64)).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 2.0] and w.grad.dtype == np.float32


def test_a_device_reads_as_in_pytorch():
    torch = torch_or_skip()
    assert repr(tg.device("cpu")) == repr(torch.device("cpu")) == "device(type='cpu')"
    assert str(tg.ones(1).device) == str(torch.ones(1).device) == "cpu"
    assert repr(tg.device("cpu", 0)) == repr(torch.device("cpu", 0))
    assert tg.device("cpu") == "cpu" and tg.device(tg.device("cpu")) == tg.device("cpu")
    assert len({tg.device("cpu"), tg.ones(1).device}) == 1


DTYPES = ["long", "int32", "int64", "float32", "float64", "bool"]
RANDOM = {"randn", "rand", "randint", "randperm", "empty"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CREATIONS))
def test_dtype_is_taken_everywhere_as_in_pytorch(name, dtype):
    """Each creation function takes each dtype PyTorch's takes, with the same values, and
    refuses the others (integer normals, bool ranges) in one line."""
    torch = torch_or_skip()
    try:
        theirs = CREATIONS[name](torch, dtype=getattr(torch, dtype))
    except (RuntimeError, NotImplementedError):
        with pytest.raises(TypeError, match=f"^{name}: .*dtype"):
            CREATIONS[name](tg, dtype=getattr(tg, dtype))
        return
    ours = CREATIONS[name](tg, dtype=getattr(tg, dtype))
    assert str(theirs.dtype) == f"torch.{ours.dtype}", (ours.dtype, theirs.dtype)
    if name not in RANDOM:
        assert ours.tolist() == theirs.tolist()


def test_int_and_bool_conversions():
    x = tg.tensor([0.0, 1.5, -2.0])
    assert x.int().dtype == np.int32 and x.int().tolist() == [0, 1, -2]
    assert x.bool().tolist() == [False, True, True]


# ---------------------------------------------------------------- the lecture's setup

def test_the_gpt_lectures_mask_gives_pytorchs_attention():
    """tril buffer, masked_fill with -inf, softmax: every row sums to 1 with zeros above the
    diagonal; its first row has one finite entry and is exactly [1, 0, ...]."""
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    outs = []
    for lib in (tg, torch):
        mask = lib.tril(lib.ones(5, 5)).view(1, 5, 5)
        wei = lib.tensor(q) @ lib.tensor(k).transpose(-2, -1) * 4 ** -0.5
        wei = wei.masked_fill(mask[:, :5, :5] == 0, float("-inf"))
        outs.append(np.asarray(wei.softmax(dim=-1)))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-7)
    assert np.array_equal(outs[0][:, 0], np.eye(5, dtype=np.float32)[[0, 0]])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")       # -inf - -inf, on purpose
def test_a_row_that_is_all_minus_infinity_is_nan_as_in_pytorch():
    torch = torch_or_skip()
    for lib, functional in ((tg, F), (torch, torch.nn.functional)):
        x = lib.tensor([[float("-inf")] * 3, [0.0, float("-inf"), 1.0]], requires_grad=True)
        out = functional.softmax(x, dim=-1)
        out.backward(lib.tensor([[1.0, 2.0, 3.0], [1.0, -1.0, 2.0]]))
        value, grad = np.asarray(out.detach()), np.asarray(x.grad)
        if lib is tg:
            ours = value, grad
    np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(value))
    np.testing.assert_allclose(ours[0][1], value[1], rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(ours[1]), np.isnan(grad))
    np.testing.assert_allclose(ours[1][1], grad[1], rtol=1e-6)


# ---------------------------------------------------------------- values and indices

def test_topk_gives_pytorchs_values_and_indices():
    torch = torch_or_skip()
    x = np.random.default_rng(1).permutation(24).reshape(2, 3, 4).astype(np.float32)
    for kw in [dict(k=2), dict(k=3, dim=1), dict(k=1, dim=0, largest=False), dict(k=4)]:
        ours, theirs = tg.topk(tg.tensor(x), **kw), torch.topk(torch.tensor(x), **kw)
        assert ours.values.tolist() == theirs.values.tolist()
        assert ours.indices.tolist() == theirs.indices.tolist()
        assert ours.indices.dtype == np.int64
    values, indices = tg.tensor([3, 1, 2]).topk(1)
    assert values.tolist() == [3] and indices.tolist() == [0]


def test_makemore_crops_logits_with_topk():
    """generate()'s top-k crop: every logit below the k-th largest of its row to -inf."""
    logits = tg.tensor([[0.1, 2.0, -1.0, 0.5], [3.0, 0.0, 1.0, 2.0]])
    with tg.no_grad():
        v, _ = tg.topk(logits, 2)
        logits[logits < v[:, [-1]]] = -float("inf")
    assert np.isinf(logits.numpy()).sum(1).tolist() == [2, 2]
    _, idx_next = tg.topk(F.softmax(logits, dim=-1), k=1, dim=-1)
    assert idx_next.tolist() == [[1], [0]]


def test_remainder_follows_pytorchs_sign_convention():
    torch = torch_or_skip()
    a, b = [-7, -3, 3, 7, 0], [2, -2, -2, 3, -5]
    for dtype in ("int64", "int32", "float32", "float64"):
        ours = tg.tensor(a, dtype=getattr(tg, dtype)) % tg.tensor(b, dtype=getattr(tg, dtype))
        theirs = torch.tensor(a, dtype=getattr(torch, dtype)) % torch.tensor(
            b, dtype=getattr(torch, dtype))
        assert ours.tolist() == theirs.tolist() and str(theirs.dtype) == f"torch.{ours.dtype}"
    assert (tg.tensor([5, -5]) % 3).tolist() == (torch.tensor([5, -5]) % 3).tolist()
    assert (7 % tg.tensor([-2, 3])).tolist() == (7 % torch.tensor([-2, 3])).tolist()
    assert tg.remainder(tg.tensor([-1.5]), 1).tolist() == [0.5]
    assert (tg.tensor([5]) % 2.5).dtype == np.float32        # int % float: the default float


def test_randperm_is_a_seeded_permutation():
    a = tg.randperm(10, generator=tg.Generator().manual_seed(5))
    b = tg.randperm(10, generator=tg.Generator().manual_seed(5))
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(10))
    assert a.dtype == np.int64 and tg.randperm(3, dtype=tg.int32).dtype == np.int32
    tg.manual_seed(7)
    first = tg.randperm(50).tolist()
    tg.manual_seed(7)
    assert tg.randperm(50).tolist() == first and first != sorted(first)
    assert tg.randperm(0).tolist() == []


@pytest.mark.parametrize("start, end, steps", [(-3, 0, 1000), (0, 1, 5), (0, 1, 1),
                                               (0, 1, 0), (2, -2, 7), (-1e-3, 1e3, 11)])
def test_linspace_matches_pytorch(start, end, steps):
    torch = torch_or_skip()
    ours, theirs = tg.linspace(start, end, steps), torch.linspace(start, end, steps)
    assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    if steps > 1:
        assert ours[0].item() == theirs[0].item() and ours[-1].item() == theirs[-1].item()
    for dtype in ("int64", "float64"):
        assert (tg.linspace(0, 10, 5, dtype=getattr(tg, dtype)).tolist()
                == torch.linspace(0, 10, 5, dtype=getattr(torch, dtype)).tolist())


def test_linspace_feeds_the_learning_rate_search():
    lre = tg.linspace(-3, 0, 1000)
    lrs = 10 ** lre
    assert lrs.shape == (1000,) and abs(lrs[0].item() - 1e-3) < 1e-9 and lrs[-1].item() == 1.0


@pytest.mark.parametrize("kw", [dict(), dict(bins=7), dict(density=True),
                                dict(bins=5, range=(-1.0, 1.0)), dict(bins=4, weight=True)],
                         ids=str)
def test_histogram_matches_pytorch(kw):
    torch = torch_or_skip()
    x = np.random.default_rng(2).standard_normal((40, 5)).astype(np.float32)
    theirs_kw, ours_kw = dict(kw), dict(kw)
    if kw.get("weight"):
        w = np.abs(x) + 1
        ours_kw["weight"], theirs_kw["weight"] = tg.tensor(w), torch.tensor(w)
    ours, theirs = tg.histogram(tg.tensor(x), **ours_kw), torch.histogram(torch.tensor(x),
                                                                           **theirs_kw)
    hist, edges = ours                                   # unpacks as (hist, bin_edges)
    assert hist.dtype == edges.dtype == np.float32
    np.testing.assert_allclose(hist.numpy(), theirs.hist.numpy(), rtol=1e-5)
    np.testing.assert_allclose(edges.numpy(), theirs.bin_edges.numpy(), rtol=1e-6, atol=1e-6)


def test_histogram_takes_bin_edges_and_a_constant_input():
    torch = torch_or_skip()
    x = np.array([0.5, 1.5, 1.5, 2.0, 9.0])
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    ours = tg.histogram(tg.tensor(x, dtype=tg.float64), tg.tensor(edges))
    theirs = torch.histogram(torch.tensor(x), torch.tensor(edges))
    assert ours.hist.tolist() == theirs.hist.tolist()
    flat = tg.histogram(tg.tensor([2.0, 2.0]), bins=3)
    expected = torch.histogram(torch.tensor([2.0, 2.0]), bins=3)
    assert flat.hist.tolist() == expected.hist.tolist()
    np.testing.assert_allclose(flat.bin_edges.numpy(), expected.bin_edges.numpy())


def test_where_with_a_condition_alone_gives_indices():
    torch = torch_or_skip()
    m = np.array([[True, False], [True, True]])
    ours, theirs = tg.where(tg.tensor(m)), torch.where(torch.tensor(m))
    assert [t.tolist() for t in ours] == [t.tolist() for t in theirs]


def test_where_promotes_as_pytorch():
    torch = torch_or_skip()
    c = [True, False]
    for a, b in [(1, 0.0), (1.5, 0.5), (2, 3)]:
        ours, theirs = tg.where(tg.tensor(c), a, b), torch.where(torch.tensor(c), a, b)
        assert str(theirs.dtype) == f"torch.{ours.dtype}"
    ints = tg.where(tg.tensor(c), tg.tensor([1, 2]), 0.5)
    assert ints.dtype == np.float32 and ints.tolist() == [1.0, 0.5]


def test_masked_fill_in_place_outside_the_graph_writes_through_views():
    x = tg.zeros(2, 3, dtype=tg.long)
    row = x[0]
    x.masked_fill_(tg.tensor([True, False, True]), 4)
    assert x.tolist() == [[4, 0, 4], [4, 0, 4]] and row.tolist() == [4, 0, 4]
    y = tg.ones(3)
    with tg.no_grad():
        assert y.masked_fill_(y > 0, 0.5) is y
    assert y.tolist() == [0.5, 0.5, 0.5]


def test_split_and_chunk_give_pytorchs_pieces():
    torch = torch_or_skip()
    x = np.arange(24).reshape(2, 12)
    for how in [(5, 1), ([2, 3, 7], 1), (1, 0), (12, -1)]:
        ours, theirs = tg.tensor(x).split(*how), torch.tensor(x).split(*how)
        assert [p.tolist() for p in ours] == [p.tolist() for p in theirs]
    for n in (1, 3, 5, 7, 13):
        ours, theirs = tg.tensor(x).chunk(n, 1), torch.tensor(x).chunk(n, 1)
        assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]


def test_makemores_attention_reassembles_heads():
    """split into q, k, v; heads by view and transpose; 4-d @; back with
    transpose(1, 2).contiguous().view(B, T, C): the shapes makemore.py reads."""
    B, T, C, nh = 2, 5, 12, 3
    x = tg.randn(B, T, 3 * C)
    q, k, v = x.split(C, dim=2)
    q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
    att = (q @ k.transpose(-2, -1)) * (1.0 / (k.size(-1) ** 0.5))
    bias = tg.tril(tg.ones(T, T)).view(1, 1, T, T)
    att = F.softmax(att.masked_fill(bias[:, :, :T, :T] == 0, float("-inf")), dim=-1)
    y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
    assert y.shape == (B, T, C) and x.size() == (B, T, 3 * C)


def test_roll_as_makemores_bag_of_words_uses_it():
    torch = torch_or_skip()
    idx = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    for shifts, dims in [(1, 1), (-1, 0), ((1, 2), (0, 1)), (3, None)]:
        assert (tg.roll(tg.tensor(idx), shifts, dims).tolist()
                == torch.roll(torch.tensor(idx), shifts, dims).tolist())
    rolled = tg.roll(tg.tensor(idx), 1, 1)
    rolled[:, 0] = 27                           # makemore marks the start with a blank token
    assert rolled.tolist() == [[27, 1, 2, 3], [27, 5, 6, 7]] and idx[0, 0] == 1


def test_inference_mode_is_no_grad_as_context_and_decorator():
    w = tg.ones(2, requires_grad=True)
    with tg.inference_mode():
        assert not (w * 2).requires_grad
    with tg.inference_mode(False):
        assert (w * 2).requires_grad

    @tg.inference_mode()
    def evaluate():
        return w * 2

    @tg.inference_mode
    def bare():
        return w * 2

    assert not evaluate().requires_grad and not bare().requires_grad
    assert (w * 2).requires_grad


# ---------------------------------------------------------------- cross_entropy ignore_index

def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient():
    torch = torch_or_skip()
    for reduction in ("mean", "sum", "none"):
        results = []
        for lib, functional in ((tg, F), (torch, torch.nn.functional)):
            x = lib.tensor(np.ones((2, 3)), requires_grad=True)
            loss = functional.cross_entropy(x, lib.tensor([-1, -1]), ignore_index=-1,
                                            reduction=reduction)
            loss.sum().backward()
            results.append((np.asarray(loss.detach()), np.asarray(x.grad)))
        (value, grad), (expected, expected_grad) = results
        np.testing.assert_array_equal(value, expected)           # NaN for 'mean'
        np.testing.assert_array_equal(grad, expected_grad)


def test_cross_entropy_ignores_its_default_index_as_pytorch():
    torch = torch_or_skip()
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    target = [1, -100, 4, 0]
    ours = F.cross_entropy(tg.tensor(x), tg.tensor(target))
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(target))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)


def test_a_target_of_ignore_index_inside_the_classes_is_ignored():
    torch = torch_or_skip()
    x = np.random.default_rng(4).standard_normal((4, 5))
    ours = F.cross_entropy(tg.tensor(x), tg.tensor([1, 0, 4, 0]), ignore_index=0)
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor([1, 0, 4, 0]),
                                               ignore_index=0)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)


def test_the_common_case_still_runs_on_the_fused_op():
    x = tg.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(x, tg.tensor([0, 1, 2, 1]), ignore_index=-1)
    assert hasattr(loss.grad_fn.op, "fused")


# ---------------------------------------------------------------- generated code

def compiled_matches_eager(make_step, batches, params):
    """Run the step eagerly and compiled on each batch: equal losses and gradients, and the
    compiled step really runs generated code after its first call."""
    compiled = codegen.compile(make_step())
    eager = make_step()
    for k, batch in enumerate(batches):
        for p in params:
            p.grad = None
        loss = eager(*batch)
        loss.backward()
        expected = [p.grad.numpy().copy() for p in params]
        for p in params:
            p.grad = None
        closs = compiled(*batch)
        assert compiled.last == ("traced" if k == 0 else "compiled"), compiled.explain()
        np.testing.assert_allclose(closs.item(), loss.item(), rtol=1e-6)
        for p, e in zip(params, expected):
            np.testing.assert_allclose(p.grad.numpy(), e, rtol=1e-5, atol=1e-6)


def test_a_causal_attention_step_compiles():
    """tril in the step and as a buffer, masked_fill, softmax, roll, where and % in a
    compiled step give eager's loss and gradients batch after batch."""
    rng = np.random.default_rng(5)
    W = tg.tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    tril = tg.tril(tg.ones(6, 6))                       # a buffer, made outside the step

    def make_step():
        def step(x):
            wei = (x @ W) @ x.transpose(-2, -1)                          # (B, T, T)
            wei = wei.masked_fill(tril[:6, :6] == 0, float("-inf")).softmax(dim=-1)
            out = tg.roll(wei @ x, 1, 1) + tg.triu(wei, 1).sum(-1, keepdim=True)
            out = tg.where(out > 0, out, out % 0.5)
            return (out * out).mean()
        return step

    batches = [(tg.tensor(rng.standard_normal((2, 6, 4)).astype(np.float32)),)
               for _ in range(3)]
    compiled_matches_eager(make_step, batches, [W])


def test_cross_entropy_with_ignored_targets_compiles_for_new_targets():
    """The kept rows are found again from each batch's targets in the generated code."""
    rng = np.random.default_rng(6)
    W = tg.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)

    def make_step():
        return lambda x, y: F.cross_entropy(x @ W, y, ignore_index=-1)

    targets = [[0, -1, 4, -1, 2, 3], [1, 1, -1, -1, -1, 0], [-1, 2, 2, 2, 2, 2]]
    batches = [(tg.tensor(rng.standard_normal((6, 3)).astype(np.float32)), tg.tensor(t))
               for t in targets]
    compiled_matches_eager(make_step, batches, [W])


def test_new_ops_are_written_out_standalone_bit_for_bit():
    rng = np.random.default_rng(7)
    x = tg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = tg.tensor(rng.standard_normal(4), requires_grad=True)
    loss = (tg.tril(x, -1) + tg.triu(x, 2) + tg.roll(x, (1, 2), (0, 1))
            + tg.where(x > 0, y, 0.5) + x % y).sum()
    program = codegen.generate(loss)
    for text in ["np.tril(", "np.triu(", "np.roll(", "np.where(", "np.remainder(",
                 "np.floor("]:
        assert text in program.source, text
    out = program(*[leaf.numpy() for leaf in program.leaves], *[a for _, a in program.args])
    loss.backward()
    assert np.array_equal(np.asarray(out[0]), loss.numpy())
    for leaf, grad in zip(program.leaves, out[1:]):
        assert np.array_equal(grad, leaf.grad.numpy())


@pytest.mark.parametrize("divide", [
    lambda lib: lib.tensor([5, 7]) % lib.tensor([2, 0]),
    lambda lib: lib.tensor([5, 7]) % 0,
    lambda lib: 7 % lib.tensor([0, 1]),
    lambda lib: lib.remainder(lib.tensor([5, -5], dtype=lib.int32), lib.tensor([0], dtype=lib.int32)),
    lambda lib: np.remainder(lib.tensor([5, 6]), 0),
], ids=["tensors", "number", "reflected", "int32", "np.remainder"])
def test_an_integer_remainder_by_zero_is_refused(divide):
    # numpy gives 0 (with a warning that training loops silence): a wrong answer
    with pytest.raises(ZeroDivisionError, match="remainder: integer division by zero"):
        divide(tg)
    try:
        import torch
    except ImportError:
        return
    if "np" not in divide.__code__.co_names:        # (numpy's own call on a torch tensor
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):       # is numpy's)
            divide(torch)


def test_a_float_remainder_by_zero_is_nan_as_in_pytorch():
    assert np.isnan((tg.tensor([5.0, -1.0]) % 0).numpy()).all()
    with pytest.raises(ZeroDivisionError):          # in place, too
        x = tg.tensor([5, 7])
        x %= tg.tensor([1, 0])


def test_a_compiled_step_checks_the_divisor_at_every_call():
    # the divisor is read anew at every call: the code checks it as eager does
    emb = tg.nn.Embedding(5, 2)
    step = codegen.compile(lambda i, d: emb(i % d).sum())
    i = tg.tensor([3, 4, 7])
    step(i, tg.tensor([5, 5, 5]))
    emb.zero_grad()
    step(i, tg.tensor([4, 5, 5]))
    assert step.last == "compiled"
    emb.zero_grad()
    with pytest.raises(ZeroDivisionError, match="remainder: integer division by zero"):
        step(i, tg.tensor([5, 0, 5]))
    assert "_nonzero_divisor(" in step.source(i, tg.tensor([5, 5, 5]))
