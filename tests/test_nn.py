"""Layers and optimizers, checked against numpy references (and PyTorch when installed)."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn, optim


def numpy_batchnorm(x, gain, bias, eps=1e-5):
    """Training-mode batchnorm with Bessel's correction, as the lecture computes it."""
    mean = x.mean(0, keepdims=True)
    var = x.var(0, keepdims=True, ddof=1)
    return gain * (x - mean) / np.sqrt(var + eps) + bias, mean[0], var[0]


def test_linear_matches_numpy_and_has_torch_shapes():
    layer = nn.Linear(5, 3, generator=tg.Generator().manual_seed(0))
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert np.abs(layer.weight.numpy()).max() <= 1 / np.sqrt(5)
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    y = layer(tg.tensor(x))
    np.testing.assert_allclose(y.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(),
                               rtol=1e-6)
    G = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    y.backward(G)
    np.testing.assert_allclose(layer.weight.grad.numpy(), G.T @ x, rtol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.numpy(), G.sum(0), rtol=1e-5)


def test_linear_without_bias_has_one_parameter():
    assert [name for name, _ in nn.Linear(4, 2, bias=False).named_parameters()] == ["weight"]


def test_embedding_gathers_rows_and_adds_repeated_gradients():
    emb = nn.Embedding(6, 2, generator=tg.Generator().manual_seed(0))
    idx = tg.tensor([[1, 1], [4, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx.numpy()])
    out.backward(np.ones((2, 2, 2), np.float32))
    counts = np.bincount(idx.numpy().ravel(), minlength=6)[:, None]
    np.testing.assert_array_equal(emb.weight.grad.numpy(), np.broadcast_to(counts, (6, 2)))


def test_batchnorm_training_eval_and_running_statistics():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(4, momentum=0.25)
    with tg.no_grad():
        bn.weight.data[...] = rng.standard_normal(4)
        bn.bias.data[...] = rng.standard_normal(4)
    x = (rng.standard_normal((16, 4)) * 3 + 2).astype(np.float32)
    expected, mean, var = numpy_batchnorm(x, bn.weight.numpy(), bn.bias.numpy())
    np.testing.assert_allclose(bn(tg.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.25 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.75 + 0.25 * var, rtol=1e-5)
    bn.eval()
    y = bn(tg.tensor(x[:1]))                            # one row works with running statistics
    ref = bn.weight.numpy() * (x[:1] - bn.running_mean.numpy()) / np.sqrt(
        bn.running_var.numpy() + 1e-5) + bn.bias.numpy()
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_batchnorm_gradient_matches_the_lectures_fused_formula():
    rng = np.random.default_rng(3)
    n = 32
    bn = nn.BatchNorm1d(8)
    with tg.no_grad():
        bn.weight.data[...] = rng.standard_normal(8) * 0.1 + 1
    x = tg.tensor(rng.standard_normal((n, 8)), dtype=tg.float64, requires_grad=True)
    bn.weight.data = bn.weight.data.double()
    bn.bias.data = bn.bias.data.double()
    G = rng.standard_normal((n, 8))
    bn(x).backward(G)
    xs = x.numpy()
    var_inv = (xs.var(0, ddof=1) + 1e-5) ** -0.5
    raw = (xs - xs.mean(0)) * var_inv
    fused = bn.weight.numpy() * var_inv / n * (n * G - G.sum(0) - n / (n - 1) * raw * (G * raw).sum(0))
    np.testing.assert_allclose(x.grad.numpy(), fused, rtol=1e-9, atol=1e-12)


def test_batchnorm_rejects_wrong_shapes_and_single_rows_in_training():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input \(N, 4\).*\(3, 5\)"):
        bn(tg.zeros(3, 5))
    with pytest.raises(ValueError, match="more than one value"):
        bn(tg.zeros(1, 4))


def test_sequential_parameters_modes_and_state_dict_round_trip():
    g = tg.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, generator=g), nn.BatchNorm1d(4),
                          nn.Tanh(), nn.Linear(4, 2, generator=g))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["1.weight", "1.bias", "2.weight", "2.bias",
                     "4.weight", "4.bias"]
    assert model(tg.randn(5, 2, 3)).shape == (5, 2)
    model.eval()
    assert not model[2].training
    state = model.state_dict()
    assert "2.running_mean" in state
    other = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Tanh(),
                          nn.Linear(4, 2))
    other.load_state_dict(state)
    for (_, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_state_dict_names_missing_keys_and_bad_shapes():
    layer = nn.Linear(3, 2)
    with pytest.raises(KeyError, match="missing \\['bias'\\]"):
        layer.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"weight has shape \(3, 3\).*\(2, 3\)"):
        layer.load_state_dict({"weight": np.zeros((3, 3)), "bias": np.zeros(2)})


def _quadratic_problem(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)


def _run(opt_cls, steps, **kwargs):
    start, target = _quadratic_problem()
    p = tg.tensor(start, requires_grad=True)
    opt = opt_cls([p], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        ((p - tg.tensor(target)) ** 2).sum().backward()
        opt.step()
    return p.numpy(), start, target


def test_sgd_step_and_schedule():
    p, start, target = _run(optim.SGD, 1, lr=0.1)
    np.testing.assert_allclose(p, start - 0.1 * 2 * (start - target), rtol=1e-6)
    opt = optim.SGD([tg.zeros(1, requires_grad=True)], lr=0.1,
                    lr_schedule=lambda step: 0.1 if step < 2 else 0.01)
    seen = []
    for _ in range(4):
        seen.append(opt.lr)
        opt.step()
    assert seen == [0.1, 0.1, 0.01, 0.01]


def test_adam_matches_a_numpy_reference():
    p, start, target = _run(optim.Adam, 3, lr=0.05)
    x, m, v = start.astype(np.float64), 0.0, 0.0
    for t in range(1, 4):
        grad = 2 * (x - target)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        x = x - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(p, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                          ("Adam", {"lr": 0.01}),
                                          ("SGD", {"lr": 0.1, "weight_decay": 0.3}),
                                          ("SGD", {"lr": 0.05, "momentum": 0.9,
                                                   "weight_decay": 0.1}),
                                          ("Adam", {"lr": 0.01, "weight_decay": 0.5})])
def test_optimizers_match_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, start, target = _run(getattr(optim, name), 5, **kwargs)
    p = torch.tensor(start, requires_grad=True)
    opt = getattr(torch.optim, name)([p], **kwargs)
    for _ in range(5):
        opt.zero_grad()
        ((p - torch.tensor(target)) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_optimizer_state_round_trip_continues_identically():
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([1.0, 2.0], requires_grad=True)
    opt_a, opt_b = optim.Adam([a], lr=0.1), optim.Adam([b], lr=0.1)
    for p, opt in ((a, opt_a), (b, opt_b)):
        (p ** 2).sum().backward()
        opt.step()
        opt.zero_grad()
    opt_c = optim.Adam([b], lr=0.1)
    opt_c.load_state_dict(opt_b.state_dict())
    for p, opt in ((a, opt_a), (b, opt_c)):
        (p ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_optimizer_without_parameters_is_an_error():
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD([], lr=0.1)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_is_one_op_with_the_bits_of_matmul_and_add(shape):
    """F.linear (so nn.Linear) records one node; its output and gradients are the very
    arrays the transpose, matmul and add it stands for give."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (shape, (5, 4), (5,))]
    g = rng.standard_normal(shape[:-1] + (5,)).astype(np.float32)
    results = []
    for form in (lambda x, w, b: nn.functional.linear(x, w, b), lambda x, w, b: x @ w.T + b):
        x, w, b = (tg.tensor(a, requires_grad=True) for a in arrays)
        out = form(x, w, b)
        out.backward(tg.tensor(g))
        results.append((out, [t.grad.numpy() for t in (x, w, b)]))
    (fused, grads), (plain, plain_grads) = results
    assert fused.grad_fn.op.name == "linear" and plain.grad_fn.op.name == "add"
    assert np.array_equal(fused.detach().numpy(), plain.detach().numpy())
    assert all(map(np.array_equal, grads, plain_grads))


@pytest.mark.parametrize("x, w, b", [((3, 4), (5, 3), None), ((3, 4), (5,), None),
                                     ((4,), (5, 3), None), ((3, 4), (4,), (1,))])
def test_linear_refuses_what_pytorch_refuses(x, w, b):
    bias = lambda lib: None if b is None else lib.ones(*b)          # noqa: E731
    with pytest.raises(ValueError, match=r"^linear: "):
        nn.functional.linear(tg.ones(*x), tg.ones(*w), bias(tg))
    try:
        import torch
    except ImportError:
        return
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.ones(*x), torch.ones(*w), bias(torch))
