"""PyTorch's semantics where tensorgrad once differed silently: every case here either matches
PyTorch (float64, with a random upstream gradient) or is refused with a clear error.

Groups: values a gradient reads are protected (version counter); indexing as PyTorch reads
it; dtype promotion; the conventions at kinks and limits; in-place ops on tensors that share
memory; grad modes as decorators.
"""
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgrad
from tensorgrad import nn

VERSION_MESSAGE = "was changed in place after the op used it"


def torch_or_skip():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------- the version counter

def test_an_index_tensor_changed_after_use_is_refused():
    C = tensorgrad.tensor(np.arange(10.).reshape(5, 2), requires_grad=True)
    idx = tensorgrad.tensor([0, 1])
    loss = C[idx].sum()
    idx[0] = 3
    with pytest.raises(RuntimeError, match=r"backward: the index array of 'index' \(shape \(2,\)\) " + VERSION_MESSAGE):
        loss.backward()


def test_a_boolean_mask_changed_after_use_is_refused():
    x = tensorgrad.tensor([1., 2., 3.], requires_grad=True)
    mask = x.detach() > 1.5
    loss = x[mask].sum()
    mask[0] = True
    with pytest.raises(RuntimeError, match=VERSION_MESSAGE):
        loss.backward()


def test_a_setitem_index_changed_after_use_is_refused():
    x = tensorgrad.zeros(4, dtype=tensorgrad.float64) * tensorgrad.ones(4, dtype=tensorgrad.float64, requires_grad=True)
    v = tensorgrad.tensor([1., 2.], dtype=tensorgrad.float64, requires_grad=True)
    idx = tensorgrad.tensor([0, 2])
    x[idx] = v
    idx[1] = 3
    with pytest.raises(RuntimeError, match=VERSION_MESSAGE):
        (x * x).sum().backward()


@pytest.mark.parametrize("make", [
    lambda w: tensorgrad.optim.SGD([w], lr=0.5),
    lambda w: tensorgrad.optim.SGD([w], lr=0.5, momentum=0.9),
    lambda w: tensorgrad.optim.Adam([w], lr=0.5),
], ids=["sgd", "sgd-momentum", "adam"])
def test_a_parameter_changed_by_an_optimizer_step_is_refused(make):
    w = tensorgrad.tensor([0.5, -1., 2.], requires_grad=True)
    opt = make(w)
    loss = (w * w).sum()
    w.grad = tensorgrad.ones(3)
    opt.step()
    opt.zero_grad()
    with pytest.raises(RuntimeError, match=r"input 0 of 'mul' \(shape \(3,\)\) " + VERSION_MESSAGE):
        loss.backward()


def test_parameters_changed_by_load_state_dict_are_refused():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    state = {k: v * 2 for k, v in model.state_dict().items()}
    loss = model(tensorgrad.randn(4, 3)).sum()
    model.load_state_dict(state)                # the second weight: read by the first's
    with pytest.raises(RuntimeError, match=VERSION_MESSAGE):     # gradient
        loss.backward()


def test_only_what_a_gradient_reads_is_protected_as_in_pytorch():
    """The first layer's weight is not read by any gradient here (x needs none): changing
    it after the forward changes no gradient, and PyTorch does not refuse either."""
    torch = torch_or_skip()
    grads = []
    for lib in (tensorgrad, torch):
        lib.manual_seed(0)
        w = lib.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
        x = lib.tensor([[0.5, -2.0]])
        loss = (x @ w).tanh().sum()
        with lib.no_grad():
            w.zero_()
        loss.backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4)


def test_the_usual_training_loop_is_not_refused():
    w = tensorgrad.tensor([0.5, -1., 2.], requires_grad=True)
    opt = tensorgrad.optim.Adam([w], lr=0.1)
    for _ in range(3):
        loss = (w * w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.all(np.abs(w.detach().numpy()) < [0.5, 1., 2.])


def test_numpy_of_a_tensor_that_requires_grad_is_read_only():
    w = tensorgrad.tensor([1., 2.], requires_grad=True)
    loss = (w * w).sum()
    array = w.numpy()
    assert array.tolist() == [1., 2.]
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 5.
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(w)[0] = 5.
    loss.backward()
    assert w.grad.tolist() == [2., 4.]
    w.detach().numpy()[0] = 3.                  # detach() says the graph does not matter
    assert w.tolist() == [3., 2.]


# ---------------------------------------------------------------- indexing as PyTorch reads it

INDEXES = [
    (0, slice(None), [0, 1]),                  # int, slice, list: PyTorch and numpy differ
    ([0, 1], 0, [0, 1]),
    ([0, 1], slice(None), 0),
    (slice(None), 0, slice(None), [0, 1]),
    (None, 0, slice(None), [0, 1]),
    (0, None, [0, 1]),
    (Ellipsis, 0, [0, 1]),
    (1, [0, 1], slice(None), 0),
    (slice(None), [0, 1], 0, [1, 0]),
    ([[0], [1]], 0, slice(None), [0, 2, 0]),
    ("t0", slice(None), [2, 0]),               # a 0-d int tensor counts as an int
    (0, True, [0, 1]),
    (slice(None), True, [0, 1]),
    ([1, 1, 0],),                              # repeated rows: gradients add up
    (slice(1, None, 2), Ellipsis, [3, 0]),
    ("mask",),
    (0, "mask2"),
    (-1, [-1, 0], slice(None, 3)),
]


def _index(lib, item):
    def one(i):
        if i == "t0":
            return lib.tensor(1)
        if i == "mask":
            return lib.tensor(np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) % 3 == 0)
        if i == "mask2":
            return lib.tensor(np.arange(3 * 4).reshape(3, 4) % 2 == 0)
        return i
    return tuple(one(i) for i in item)


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i) for i in INDEXES])
def test_getitem_matches_pytorch(index):
    torch = torch_or_skip()
    x0 = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    results = []
    for lib in (tensorgrad, torch):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        y = x[_index(lib, index)]
        upstream = lib.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)),
                              dtype=lib.float64)
        (y * upstream).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    (tv, tg), (pv, pg) = results
    assert tv.shape == pv.shape
    np.testing.assert_allclose(tv, pv)
    np.testing.assert_allclose(tg, pg)


SET_INDEXES = [i for i in INDEXES if i != ([1, 1, 0],)]   # a repeated target: either write
                                                          # may win, in PyTorch too


@pytest.mark.parametrize("index", SET_INDEXES, ids=[repr(i) for i in SET_INDEXES])
def test_setitem_in_the_graph_matches_pytorch(index):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((2, 3, 4, 5))
    shape = tuple(torch.zeros(2, 3, 4, 5)[_index(torch, index)].shape)
    v0 = rng.standard_normal(shape)
    upstream = rng.standard_normal((2, 3, 4, 5))
    results = []
    for lib in (tensorgrad, torch):
        a = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        v = lib.tensor(v0, dtype=lib.float64, requires_grad=True)
        x = a * 1
        x[_index(lib, index)] = v * 2
        (x * lib.tensor(upstream, dtype=lib.float64)).sum().backward()
        results.append((x.detach().numpy(), a.grad.numpy(), v.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs)


def test_setitem_outside_the_graph_reads_the_index_as_pytorch():
    torch = torch_or_skip()
    ours, theirs = tensorgrad.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    value = np.arange(6.).reshape(3, 2)
    ours[0, :, [1, 3]] = tensorgrad.tensor(value)
    theirs[0, :, [1, 3]] = torch.tensor(value, dtype=torch.float32)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------- dtype promotion

DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def _make(lib, dtype, shape, requires_grad=False):
    values = np.arange(1, 1 + int(np.prod(shape))).reshape(shape) % 3
    t = lib.tensor(values.astype(dtype), dtype=getattr(lib, dtype) if dtype != "bool" else lib.bool)
    return t.requires_grad_() if requires_grad and dtype.startswith("float") else t


@pytest.mark.parametrize("first", DTYPES)
@pytest.mark.parametrize("second", DTYPES)
def test_cat_and_stack_promote_as_pytorch_and_keep_the_gradient_path(first, second):
    torch = torch_or_skip()
    for join in ("cat", "stack"):
        outs = []
        for lib in (tensorgrad, torch):
            a, b = _make(lib, first, (2, 3), True), _make(lib, second, (2, 3), True)
            out = getattr(lib, join)([a, b], 1 if join == "cat" else 0)
            grads = None
            if out.requires_grad:
                (out * out).sum().backward()
                grads = [t.grad.numpy() if t.grad is not None else None for t in (a, b)]
            outs.append((str(out.dtype).replace("torch.", ""), out.detach().numpy(), grads))
        assert outs[0][0] == outs[1][0], (join, first, second)
        np.testing.assert_array_equal(outs[0][1], outs[1][1])
        assert (outs[0][2] is None) == (outs[1][2] is None)
        for g1, g2 in zip(outs[0][2] or (), outs[1][2] or ()):
            assert (g1 is None) == (g2 is None)
            if g1 is not None:
                np.testing.assert_allclose(g1, g2)


@pytest.mark.parametrize("first", DTYPES)
@pytest.mark.parametrize("second", DTYPES)
@pytest.mark.parametrize("shapes", [((3,), ()), ((), (3,)), ((), ())], ids=["t-0d", "0d-t", "0d-0d"])
def test_zero_dim_tensors_are_weak_in_promotion_as_in_pytorch(first, second, shapes):
    torch = torch_or_skip()
    dtypes = []
    for lib in (tensorgrad, torch):
        a, b = _make(lib, first, shapes[0]), _make(lib, second, shapes[1])
        dtypes.append([str(op(a, b).dtype).replace("torch.", "") for op in
                       (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a / b)])
    assert dtypes[0] == dtypes[1]


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_in_place_never_stores_a_float_result_in_an_integer_tensor(dtype):
    x = _make(tensorgrad, dtype, (2,))
    w = tensorgrad.ones(2, requires_grad=True)
    for other in (w, 1.5, tensorgrad.ones(2)):
        with pytest.raises(TypeError, match=f"add_: the result is float32, which a tensor of "
                                            f"dtype {dtype} cannot hold in place"):
            x += other
    assert x.dtype == np.dtype(dtype)


def test_setitem_of_an_integer_tensor_casts_like_pytorch():
    torch = torch_or_skip()
    ours, theirs = tensorgrad.zeros(3, dtype=tensorgrad.int64), torch.zeros(3, dtype=torch.int64)
    ours[0] = tensorgrad.tensor(2.7, requires_grad=True)
    theirs[0] = torch.tensor(2.7, requires_grad=True)
    assert ours.tolist() == theirs.tolist() and not ours.requires_grad


# ---------------------------------------------------------------- kinks and limits

KINKS = {
    "std of a constant row": (lambda lib, x: x.std(), [2., 2., 2.]),
    "std along a dim, one constant row": (lambda lib, x: x.view(2, 2).std(1), [2., 2., 1., 3.]),
    "var of a constant row": (lambda lib, x: x.var(), [2., 2., 2.]),
    "normalised constant input": (lambda lib, x: (x - x.mean()) / (x.std() + 1e-5), [2., 2., 2.]),
    "sqrt of relu at 0": (lambda lib, x: x.relu().sqrt(), [0., 1., -1.]),
    "sqrt of abs at 0": (lambda lib, x: x.abs().sqrt(), [0., 1.]),
    "x ** 0 at 0": (lambda lib, x: x ** 0, [0., 1.]),
    "x ** zeros tensor at 0": (lambda lib, x: x ** lib.zeros(2, dtype=lib.float64), [0., 1.]),
    "0 ** x": (lambda lib, x: lib.zeros(3, dtype=lib.float64) ** x, [0., 1., -1.]),
    "2 ** x": (lambda lib, x: 2.0 ** x, [0., 1.]),
    "x ** 2 at 0": (lambda lib, x: x ** 2, [0., 1.]),
    "max with ties": (lambda lib, x: x.max(), [1., 1., 0.]),
    "max along a dim with ties": (lambda lib, x: x.view(1, 3).max(1).values, [1., 1., 0.]),
    "min with ties": (lambda lib, x: x.min(), [0., 0., 1.]),
    "abs at 0": (lambda lib, x: x.abs(), [0., 1.]),
    "relu at 0": (lambda lib, x: x.relu(), [0., 1.]),
    "log at 0": (lambda lib, x: x.log(), [0., 1.]),
    "logsumexp with -inf": (lambda lib, x: x.logsumexp(0), [-np.inf, 1.]),
    "var of one element": (lambda lib, x: x.var(), [1.]),
    "std of one element": (lambda lib, x: x.std(), [1.]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kinks_and_limits_follow_pytorch(name):
    torch = torch_or_skip()
    fn, values = KINKS[name]
    outs = []
    for lib in (tensorgrad, torch):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        with np.errstate(all="ignore"):
            y = fn(lib, x)
            upstream = lib.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)),
                                  dtype=lib.float64)
            (y * upstream).sum().backward()
        outs.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0])
    np.testing.assert_allclose(outs[0][1], outs[1][1])


ENGINE_DOC = Path(__file__).resolve().parents[1] / "docs" / "engine.md"
CONVENTION = re.compile(r"^\| `(?P<expr>[^`]+)` \| `(?P<at>[^`]+)` \| `(?P<grad>[^`]+)` \|")


def documented_conventions():
    section = ENGINE_DOC.read_text(encoding="utf-8").split("## 6. Conventions")[1].split("## 7")[0]
    return [m.groupdict() for m in map(CONVENTION.match, section.splitlines()) if m]


@pytest.mark.parametrize("row", documented_conventions(), ids=lambda r: r["expr"])
def test_the_conventions_in_the_docs_hold(row):
    names = {"tensorgrad": tensorgrad, "inf": np.inf, "nan": np.nan}
    x = tensorgrad.tensor(eval(row["at"], names), dtype=tensorgrad.float64, requires_grad=True)
    with np.errstate(all="ignore"):
        eval(row["expr"], names | {"x": x}).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), eval(row["grad"], names))


def test_the_docs_list_the_conventions():
    assert len(documented_conventions()) >= 12


def test_anomaly_mode_names_the_op_where_a_nan_is_born_from_infinite_inputs():
    x = tensorgrad.tensor([1000., 1.], requires_grad=True)
    with pytest.warns(tensorgrad.AnomalyWarning, match="exp: the forward produced Inf"):
        with tensorgrad.detect_anomaly():
            with pytest.raises(FloatingPointError, match="mul: the forward produced NaN from "
                                                         "inputs with no NaN"):
                x.exp() * 0


# ---------------------------------------------------------------- in place, with shared memory

@pytest.mark.parametrize("view", [
    lambda y: y[0:2], lambda y: y.view(3, 1), lambda y: y.detach(), lambda y: y[None],
], ids=["slice", "view", "detach", "none-index"])
def test_an_in_place_op_in_the_graph_on_a_tensor_with_views_is_refused(view):
    x = tensorgrad.randn(3, requires_grad=True)
    y = x * 1
    v = view(y)
    with pytest.raises(RuntimeError, match="add_: in-place change, recorded in the graph, of a "
                                           "tensor whose memory another tensor"):
        y += 1
    with pytest.raises(RuntimeError, match="in-place change, recorded in the graph"):
        v += x[0]                               # and the other way round
    with pytest.raises(RuntimeError, match="setitem: in-place change, recorded in the graph"):
        y[0] = x[1]


def test_an_in_place_op_in_the_graph_after_numpy_is_refused():
    y = tensorgrad.zeros(3)
    held = y.numpy()
    with pytest.raises(RuntimeError, match="memory numpy code"):
        y += tensorgrad.ones(3, requires_grad=True)
    assert held.tolist() == [0., 0., 0.]


def test_in_place_ops_in_the_graph_still_work_when_nothing_shares_the_memory():
    x = tensorgrad.tensor([1., 2., 3.], requires_grad=True)
    y = x * 2
    v = y[0:2]
    del v                                       # the view is gone: nothing left behind
    y += 1
    y[0] = x[2]
    (y * y).sum().backward()
    assert x.grad.tolist() == [0., 2 * 2 * 5, 2 * 2 * 7 + 2 * 3]


def test_views_see_in_place_changes_made_outside_the_graph_as_in_pytorch():
    torch = torch_or_skip()
    outs = []
    for lib in (tensorgrad, torch):
        y = lib.arange(6.).reshape(2, 3)
        v, t, d = y[0], y.T, y.detach()
        with lib.no_grad():
            y += 1
            y[1, 1] = 10.
        outs.append([a.tolist() for a in (v, t, d)])
    assert outs[0] == outs[1]


# ---------------------------------------------------------------- `.data` is a tensor

DATA_CALLS = {
    "std": lambda d: d.std(),
    "var": lambda d: d.var(),
    "mean(0, keepdim=True)": lambda d: d.mean(0, keepdim=True),
    "max(1)": lambda d: d.max(1)[0],
    "max(1) indices": lambda d: d.max(1)[1],
    "view(-1)": lambda d: d.view(-1),
    "sum(1)": lambda d: d.sum(1),
    "log10 of std ratio": lambda d: (0.1 * d.std() / d.std()).log10(),
}


@pytest.mark.parametrize("call", DATA_CALLS, ids=str)
def test_methods_called_on_data_give_pytorchs_results(call):
    """`.data` is a Tensor, so `p.data.std()` is the unbiased std, not numpy's (issue: the
    update-to-data ratio of makemore part 3 computed `p.data.std()`)."""
    torch = torch_or_skip()
    values = np.random.default_rng(0).standard_normal((3, 4))
    ours = DATA_CALLS[call](tensorgrad.tensor(values, requires_grad=True).data)
    theirs = DATA_CALLS[call](torch.tensor(values, requires_grad=True).data)
    assert isinstance(ours, tensorgrad.Tensor) and not ours.requires_grad
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert ours.shape == tuple(theirs.shape)


def test_data_shares_memory_both_ways_and_is_outside_the_graph():
    p = tensorgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = p.data
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    d[0] = 10.0                                  # a write through .data changes p
    assert p.tolist() == [10.0, 2.0, 3.0]
    with tensorgrad.no_grad():
        p[1] = 20.0                              # a write to p shows through .data
    assert d.tolist() == [10.0, 20.0, 3.0]
    p.data += 1                                  # the update idiom, with a number
    assert p.tolist() == [11.0, 21.0, 4.0] and p.requires_grad and p.is_leaf


def test_reading_data_leaves_gradients_unchanged():
    torch = torch_or_skip()
    values = np.random.default_rng(1).standard_normal((4, 3))
    upstream = np.random.default_rng(2).standard_normal((4, 3))
    grads = []
    for lib in (tensorgrad, torch):
        x = lib.tensor(values, requires_grad=True)
        y = x * x.data.std() + x.data.mean(0, keepdim=True) * x   # .data terms are constants
        y.backward(lib.tensor(upstream))
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_changes_through_data_are_untracked_and_through_detach_refused_as_in_pytorch():
    torch = torch_or_skip()
    outcome = {}
    for lib in (tensorgrad, torch):
        for how in ("data", "detach"):
            w = lib.tensor([1.0, 2.0], requires_grad=True)
            loss = (w * w).sum()
            view = w.data if how == "data" else w.detach()
            view[0] = 5.0
            try:
                loss.backward()
                outcome[lib.__name__, how] = w.grad.tolist()
            except RuntimeError:
                outcome[lib.__name__, how] = "refused"
    assert outcome["tensorgrad", "data"] == outcome["torch", "data"] == [10.0, 4.0]
    assert outcome["tensorgrad", "detach"] == outcome["torch", "detach"] == "refused"


def test_setting_data_follows_pytorch():
    torch = torch_or_skip()
    for lib in (tensorgrad, torch):
        p = lib.ones(3, requires_grad=True)
        p.data = lib.zeros(5, dtype=lib.float64)      # shape and dtype are replaced
        assert tuple(p.shape) == (5,) and p.dtype == lib.float64 and p.requires_grad
        (p * p).sum().backward()
        assert p.grad.tolist() == [0.0] * 5
        with pytest.raises(RuntimeError):
            p.data = lib.zeros(2, dtype=lib.int64)     # a tensor that requires grad is float
        with pytest.raises(TypeError):
            p.data = [1.0, 2.0]                        # a tensor, not a list
    q = tensorgrad.zeros(2)
    source = tensorgrad.tensor([4.0, 5.0])
    q.data = source
    source[0] = 7.0
    assert q.tolist() == [7.0, 5.0]                    # the memory is shared


def test_replacing_data_keeps_graphs_recorded_before_apart():
    p = tensorgrad.ones(3, requires_grad=True)
    before = (p * 2).sum()
    p.data = tensorgrad.arange(5.0)
    (p * p).sum().backward()                          # a graph of the new shape
    assert p.grad.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    p.grad = None
    with pytest.raises(RuntimeError, match=r"shape \(3,\) for a tensor of shape \(5,\).*"
                                           r"replaced"):
        before.backward()
    assert p.grad is None
    p.data = tensorgrad.ones(5, dtype=tensorgrad.float64)
    (p * 3).sum().backward()
    assert p.grad.dtype == np.float64 and p.grad.tolist() == [3.0] * 5

    x = tensorgrad.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"data: cannot change the shape or dtype of a "
                                           r"tensor computed by an op \(\(3,\) float32"):
        y.data = tensorgrad.zeros(5)
    assert y.shape == (3,)
    y.data = tensorgrad.full((3,), 5.0)                # the same shape and dtype: allowed
    y.sum().backward()
    assert x.grad.tolist() == [2.0] * 3


def test_pytorch_puts_a_gradient_of_the_old_shape_in_grad_after_data_is_replaced():
    """What docs/engine.md says tensorgrad refuses: PyTorch's .grad no longer fits .data."""
    torch = torch_or_skip()
    p = torch.ones(3, requires_grad=True)
    before = (p * 2).sum()
    p.data = torch.arange(5.0)
    before.backward()
    assert tuple(p.grad.shape) == (3,) and tuple(p.shape) == (5,)
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    y.data = torch.zeros(5)                            # tensorgrad refuses this line; PyTorch
    with pytest.raises(RuntimeError, match="invalid gradient"):      # refuses the backward
        y.sum().backward()


def test_module_to_gives_parameters_nodes_of_the_new_dtype():
    layer = tensorgrad.nn.Linear(2, 3).to(tensorgrad.float64)
    layer(tensorgrad.ones(1, 2, dtype=tensorgrad.float64)).sum().backward()
    assert layer.weight.grad.dtype == np.float64
    assert layer.weight._node.out_dtype == np.float64    # what drawings show


def test_module_to_float64_matches_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(3)
    x, g = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    results = []
    for lib in (tensorgrad, torch):
        layer = lib.nn.Linear(2, 3)
        layer.weight.data = lib.tensor(w.astype(np.float32))
        layer.bias.data = lib.tensor(b.astype(np.float32))
        layer.to(lib.float64)
        out = layer(lib.tensor(x))
        out.backward(lib.tensor(g))
        results.append([t.detach().numpy() for t in (out, layer.weight.grad, layer.bias.grad)])
    for ours, theirs in zip(*results):
        assert ours.dtype == theirs.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", ["", ".4f", ".2e", "10.3f"])
@pytest.mark.parametrize("value", [7 / 3, 3, True])
def test_formatting_a_zero_dim_tensor_prints_the_number_as_pytorch(value, spec):
    torch = torch_or_skip()
    assert format(tensorgrad.tensor(value), spec) == format(torch.tensor(value), spec)


def test_formatting_other_tensors_follows_pytorch():
    torch = torch_or_skip()
    for shape in ((1,), (2, 2)):
        t, u = tensorgrad.ones(shape), torch.ones(shape)
        assert f"{t}" == str(t)
        with pytest.raises(TypeError, match=r"format: a format spec \('.4f'\) applies to a 0-d"):
            f"{t:.4f}"
        with pytest.raises(TypeError):
            f"{u:.4f}"


# ---------------------------------------------------------------- grad modes as decorators

@pytest.mark.parametrize("mode, expected", [
    (lambda: tensorgrad.no_grad(), False),
    (lambda: tensorgrad.enable_grad(), True),
    (lambda: tensorgrad.set_grad_enabled(False), False),
])
def test_a_decorated_generator_runs_its_body_in_the_mode(mode, expected):
    @mode()
    def generator(n):
        for _ in range(n):
            received = yield tensorgrad.is_grad_enabled()
            assert received == "sent"
        return "done"

    with tensorgrad.set_grad_enabled(not expected):
        gen = generator(3)
        seen = [next(gen)]
        outside = tensorgrad.is_grad_enabled()
        seen += [gen.send("sent"), gen.send("sent")]
        with pytest.raises(StopIteration) as stop:
            gen.send("sent")
    assert seen == [expected] * 3 and outside == (not expected) and stop.value.value == "done"
    assert tensorgrad.is_grad_enabled()


def test_no_grad_works_without_parentheses_and_set_grad_enabled_checks_its_argument():
    @tensorgrad.no_grad
    def f(x):
        return (x * 2).requires_grad, tensorgrad.is_grad_enabled()

    assert f(tensorgrad.ones(2, requires_grad=True)) == (False, False)
    assert tensorgrad.is_grad_enabled()
    with pytest.raises(TypeError, match="set_grad_enabled: mode must be a bool"):
        tensorgrad.set_grad_enabled(lambda: None)
