"""Engine semantics: the backward pass, grad modes, the Tensor surface, numpy interop,
in-place changes, factories, and the error messages.

Each expected value comes from somewhere else than tensorgrad: worked out by hand (the
comment says how), computed with numpy, or, when PyTorch is installed, computed by PyTorch
on the same numbers. The PyTorch comparisons skip cleanly without it.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad import ops


def reference_torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------- the backward pass

def test_chain_of_100000_ops():
    """A deep graph walks without recursion; the gradient of x * c**k is c**k."""
    x0 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    x = x0
    for _ in range(100_000):
        x = x * 1.0001
    x.backward()
    expected = 1.0001 ** 100_000                # about e**10 = 22015
    assert x.item() == pytest.approx(expected, rel=1e-9)
    assert x0.grad.item() == pytest.approx(expected, rel=1e-9)


def test_wide_fan_in():
    """One tensor used in 1,000 terms: the gradients of all uses add up."""
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    total = sum(x * float(k) for k in range(1000))
    total.sum().backward()
    assert x.grad.tolist() == [499500.0] * 3    # 0 + 1 + ... + 999, exact in float32

    y = torch.tensor([0.5, 4.0], requires_grad=True)
    sum([y] * 1000).sum().backward()            # 0 + y + y + ... : a chain of adds of y
    assert y.grad.tolist() == [1000.0, 1000.0]


def test_diamond():
    """y feeds two branches that meet again: d/dx of exp(3x) + (3x)**2 is 3 exp(3x) + 18x."""
    values = np.array([0.1, -0.4, 0.7], np.float64)
    x = torch.tensor(values, requires_grad=True)
    y = x * 3
    a = y.exp()
    b = y * y                                   # the same tensor on both sides of one op
    (a + b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(3 * values) + 18 * values,
                               rtol=1e-12)


def test_same_tensor_twice_in_one_op():
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [3.0, -4.0]        # d x**2 = 2x


def test_retain_graph_accumulates():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    loss.backward()
    assert x.grad.tolist() == [6.0, 12.0, 18.0]  # three times 2x


def test_second_backward_without_retain_graph_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_gradients_accumulate_across_graphs_until_reset():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]        # 3 + 2x
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_backward_of_non_scalar_needs_a_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        (x * 2).backward()


def test_backward_of_one_element_tensor():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x.sum() * 2).reshape(1, 1).backward()       # one element, though not 0-d: allowed
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_with_explicit_gradient():
    """y = W @ v; backward(gradient=u) gives W.grad = outer(u, v), v.grad = W.T @ u."""
    W_values = np.arange(6, dtype=np.float32).reshape(2, 3)
    v_values = np.array([1.0, -1.0, 2.0], np.float32)
    u = np.array([10.0, 100.0], np.float32)
    W = torch.tensor(W_values, requires_grad=True)
    v = torch.tensor(v_values, requires_grad=True)
    y = W @ v
    y.backward(gradient=torch.tensor(u))
    np.testing.assert_array_equal(W.grad.numpy(), np.outer(u, v_values))
    np.testing.assert_array_equal(v.grad.numpy(), W_values.T @ u)


def test_backward_gradient_of_wrong_shape_raises():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises((ValueError, RuntimeError), match=r"\(3,\)"):
        (x * 2).backward(gradient=torch.ones(2))


def test_backward_on_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.tensor([1.0, 2.0]).sum().backward()
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        loss = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()


def test_grads_are_tensors_of_the_parameter_dtype():
    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (p * 2).sum().backward()
    assert isinstance(p.grad, torch.Tensor)
    assert p.grad.dtype == torch.float64 and p.grad.shape == (2,)
    assert not p.grad.requires_grad


def test_each_grad_is_an_array_of_its_own():
    """The backward pass hands a gradient to .grad without copying only when nothing else
    holds it: two leaves fed the same array by an add, a retained intermediate and the
    caller's own gradient argument must each get a separate one."""
    a, b = (torch.tensor([1.0, 2.0], requires_grad=True) for _ in range(2))
    h = a + b
    h.retain_grad()
    (h * 3).sum().backward()                        # one fresh array, sent to h, a and b
    a.grad.data[...] = 7
    assert b.grad.tolist() == [3.0, 3.0] and h.grad.tolist() == [3.0, 3.0]
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    G = np.array([3.0, 4.0], np.float32)
    w.backward(G)
    w.grad.data[...] = 0
    assert G.tolist() == [3.0, 4.0]
    c = torch.tensor([[1.0, 2.0]], requires_grad=True)
    (c * 3).sum().backward()                        # a fresh array: taken as it is
    assert c.grad.tolist() == [[3.0, 3.0]] and c.grad.numpy().flags.writeable


def test_a_gradient_that_views_an_array_is_taken_only_when_it_views_all_of_it_alone():
    """A view (a reshaped sum) goes to .grad without a copy when it is contiguous and
    views all of an array held by nothing else; two views of one array, or a part of
    one, are copied."""
    x, y = (torch.ones(2, 3, requires_grad=True) for _ in range(2))
    (x.reshape(6) + y.reshape(6)).backward(torch.arange(6.0))   # two views of one array
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    assert x.grad.tolist() == y.grad.tolist() == [[0, 1, 2], [3, 4, 5]]
    z = torch.ones(3, requires_grad=True)
    w = torch.ones(4, requires_grad=True)
    (torch.cat([z, w]) * 2).sum().backward()        # parts of one array: copied
    assert z.grad.numpy().base is None and w.grad.numpy().base is None
    b = torch.ones(3, requires_grad=True)
    (torch.ones(4, 3) * 2 + b).sum().backward()     # the reshaped sum of unbroadcast
    assert b.grad.tolist() == [4.0, 4.0, 4.0] and b.grad.numpy().base is not None


def test_matches_pytorch_on_a_small_network():
    """A broadcast-heavy expression, with a non-trivial upstream gradient, against PyTorch."""
    pt = reference_torch()
    rng = np.random.default_rng(0)
    arrays = dict(x=rng.standard_normal((4, 3)), w=rng.standard_normal((3, 5)),
                  b=rng.standard_normal(5), s=rng.standard_normal((1, 5)))
    results = {}
    for lib in (torch, pt):
        t = {k: lib.tensor(v.astype(np.float64), requires_grad=True) for k, v in arrays.items()}
        h = (t["x"] @ t["w"] + t["b"]).tanh() * t["s"]
        out = (h - h.max(1, keepdim=True).values).exp() / h.exp().sum(1, keepdim=True)
        ((out + 1) ** 2).mean().backward()
        results[lib] = {k: np.array(v.grad.tolist()) for k, v in t.items()}
    for k in arrays:
        np.testing.assert_allclose(results[torch][k], results[pt][k], rtol=1e-10, err_msg=k)


# ---------------------------------------------------------------- no_grad

def test_no_grad_context_manager():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad


def test_no_grad_decorator():
    x = torch.tensor([1.0, 2.0], requires_grad=True)

    @torch.no_grad()
    def double(t):
        """Twice t."""
        assert not torch.is_grad_enabled()
        return t * 2

    y = double(x)
    assert y.tolist() == [2.0, 4.0] and not y.requires_grad
    assert torch.is_grad_enabled()
    assert double.__name__ == "double" and double.__doc__ == "Twice t."
    assert not double(x).requires_grad           # a second call behaves the same


def test_no_grad_nesting_restores_each_level():
    with torch.no_grad():
        with torch.no_grad():
            assert not torch.is_grad_enabled()
        assert not torch.is_grad_enabled()       # the inner exit keeps the outer mode
        with torch.set_grad_enabled(True):
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_no_grad_instance_reused_and_nested():
    ng = torch.no_grad()
    with ng:
        with ng:
            assert not torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_no_grad_restores_state_after_exception():
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError("boom")
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert torch.is_grad_enabled()


def test_set_grad_enabled():
    x = torch.tensor([1.0], requires_grad=True)
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with torch.no_grad():
        with torch.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad

    @torch.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert torch.is_grad_enabled()


def test_set_grad_enabled_called_alone_acts_at_once_and_enable_grad_reopens():
    x = torch.tensor([1.0], requires_grad=True)
    try:
        torch.set_grad_enabled(False)
        assert not torch.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)
    assert (x * 2).requires_grad
    with torch.no_grad():
        with torch.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad


# ---------------------------------------------------------------- the Tensor surface

def test_requires_grad_on_integer_tensors_raises():
    with pytest.raises(RuntimeError, match="floating"):
        torch.tensor([1, 2], requires_grad=True)
    t = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="int64"):
        t.requires_grad = True
    with pytest.raises(RuntimeError):
        torch.zeros(3, dtype=torch.int64, requires_grad=True)


def test_default_dtypes():
    assert torch.tensor([1.0, 2.0]).dtype == torch.float32
    assert torch.tensor(1.5).dtype == torch.float32
    assert torch.tensor([1, 2]).dtype == torch.int64
    assert torch.tensor([[1, 2], [3, 4]]).dtype == torch.int64
    assert torch.tensor([1, 2.5]).dtype == torch.float32      # mixed: float
    assert torch.tensor(np.array([1.0, 2.0])).dtype == torch.float64
    assert torch.tensor(np.array([1, 2], np.int32)).dtype == np.int32
    assert torch.tensor([True, False]).dtype == torch.bool
    assert torch.tensor([1, 2], dtype=torch.float64).dtype == torch.float64
    assert torch.float32 == np.float32 and torch.float64 == np.float64
    assert torch.int64 == np.int64 and torch.long == torch.int64


def test_conversions():
    t = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.sum().item() == 21.0 and isinstance(t.sum().item(), float)
    assert isinstance(torch.tensor([7]).item(), int)
    with pytest.raises((ValueError, RuntimeError), match=r"\(2, 3\)"):
        t.item()
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0, 0] = 10.0                              # numpy() shares memory, as in PyTorch
    assert t[0, 0].item() == 10.0


def test_sizes_and_shapes():
    t = torch.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == 3 and t.dim() == 3
    assert t.nelement() == 24 and t.numel() == 24
    assert t.dtype == torch.float32
    m = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert m.T.shape == (3, 2)
    assert m.T.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert len(m) == 2


def test_repr():
    assert repr(torch.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(torch.tensor([1, 2])) == "tensor([1, 2])"
    assert "float64" in repr(torch.tensor([1.0], dtype=torch.float64))
    x = torch.tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<mul>" in repr(x * 2)


def test_detach_and_clone():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.tolist() == [1.0, 2.0]
    assert np.shares_memory(d.numpy(), x.numpy())           # detach shares the values
    c = x.clone()
    assert c.requires_grad and not c.is_leaf
    assert not np.shares_memory(c.numpy(), x.numpy())       # clone copies them
    (c * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]                     # and passes the gradient on
    with torch.no_grad():
        c2 = x.clone()
    c2[0] = 100.0
    assert x[0].item() == 1.0


def test_retain_grad_on_intermediates():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = x * 5
    y.retain_grad()
    (y * y + z).sum().backward()
    assert y.grad.tolist() == [6.0, 12.0]        # 2y
    assert z.grad is None                        # intermediates keep no grad unless asked
    assert x.grad.tolist() == [23.0, 41.0]       # 2y * 3 + 5
    assert y.retains_grad and not z.retains_grad
    with pytest.raises(RuntimeError):
        torch.tensor([1.0]).retain_grad()        # nothing to retain


def test_gradients_of_several_uses_add_up_in_place_only_where_nothing_else_holds_them():
    from tensorgrad.graph import add_gradients
    grads = {"p": np.ones(3, np.float32)}
    first = id(grads["p"])                          # (an id: a reference would hold it)
    grads["p"] = add_gradients(grads["p"], np.full(3, 2.0, np.float32))
    assert id(grads["p"]) == first and grads["p"].tolist() == [3.0, 3.0, 3.0]    # reused
    held = np.ones(3, np.float32)
    grads = {"p": held}
    grads["p"] = add_gradients(grads["p"], np.full(3, 2.0, np.float32))
    assert held.tolist() == [1.0, 1.0, 1.0] and grads["p"].tolist() == [3.0, 3.0, 3.0]
    # n's gradient is n.grad (not copied) and also what the add sends on to p; q's gradient
    # of p, which arrives later, must not be added into it
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    p = x * 2
    q = p * 5
    n = p + 0.0
    n.retain_grad()
    ((n * 3).sum() + q.sum()).backward()
    assert n.grad.tolist() == [3.0, 3.0]
    assert x.grad.tolist() == [16.0, 16.0]          # 2 * (3 + 5)


def test_is_leaf_and_grad_fn():
    x = torch.tensor([1.0], requires_grad=True)
    plain = torch.tensor([1.0])
    y = x * 2
    assert x.is_leaf and x.grad_fn is None
    assert plain.is_leaf and plain.grad_fn is None and not plain.requires_grad
    assert not y.is_leaf and y.grad_fn is not None
    assert (plain * 2).is_leaf                   # no input requires grad: nothing recorded
    with torch.no_grad():
        assert (x * 2).is_leaf


def test_requires_grad_cannot_be_turned_off_on_a_result():
    x = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2).requires_grad = False
    x.requires_grad = False                      # on a leaf it can
    assert not (x * 2).requires_grad


# ---------------------------------------------------------------- numpy interoperation

def test_np_asarray():
    t = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_ndarray_on_the_left_stays_in_the_graph():
    a = np.array([2.0, 3.0], np.float32)
    x = torch.tensor([5.0, 7.0], requires_grad=True)
    added, scaled = a + x, a * x
    for r in (added, scaled):
        assert isinstance(r, torch.Tensor) and r.requires_grad
    assert added.tolist() == [7.0, 10.0] and scaled.tolist() == [10.0, 21.0]
    (added.sum() + scaled.sum()).backward()
    assert x.grad.tolist() == [3.0, 4.0]         # 1 + a

    M = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    W = torch.tensor([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]], requires_grad=True)
    out = M @ W
    assert isinstance(out, torch.Tensor) and out.shape == (3, 3) and out.requires_grad
    np.testing.assert_array_equal(out.numpy(), M @ W.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(W.grad.numpy(), M.T @ np.ones((3, 3), np.float32))


def test_ndarray_minus_and_divide_tensor():
    a = np.array([8.0], np.float32)
    x = torch.tensor([2.0], requires_grad=True)
    ((a - x) + (a / x)).sum().backward()
    assert x.grad.item() == pytest.approx(-1 - 8 / 4)    # d(a - x) = -1, d(a / x) = -a / x**2


def test_data_update_in_place():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    data = p.data
    lr = 0.1
    p.data += -lr * p.grad
    assert np.shares_memory(data.numpy(), p.numpy())    # the same memory, changed in place
    np.testing.assert_allclose(data.numpy(), [0.8, 1.6], rtol=1e-6)
    assert p.requires_grad and p.is_leaf and p.dtype == torch.float32


def test_np_exp_of_tensor():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    y = np.exp(x)
    assert isinstance(y, torch.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, math.e], rtol=1e-6)


def test_numpy_function_without_a_gradient_rule_says_so():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    with pytest.raises(TypeError, match="sin"):
        np.sin(x)


# ---------------------------------------------------------------- in-place changes

def test_in_place_on_leaf_requiring_grad():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        p += 1
    with pytest.raises(RuntimeError, match="leaf"):
        p[0] = 5.0
    assert p.tolist() == [1.0, 2.0]              # nothing changed
    with torch.no_grad():
        p += 1
        p[0] = 5.0
        p *= 2
    assert p.tolist() == [10.0, 6.0]
    assert p.requires_grad and p.is_leaf


def test_in_place_on_non_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y += 3
    y *= x                                       # y = (x**2 + 3) * x = x**3 + 3x
    y.sum().backward()
    assert y.tolist() == [4.0, 14.0]
    assert x.grad.tolist() == [6.0, 15.0]        # 3x**2 + 3


def test_in_place_after_the_old_value_was_used():
    """z read y before `y += 1`; z's gradient must still see the old y.

    By hand: z = 3y = 6x and the new y = 2x + 1, so d/dx (sum z + sum y) = 6 + 2 = 8.
    """
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y * 3
    y += 1
    (z.sum() + y.sum()).backward()
    assert z.tolist() == [6.0, 12.0, 18.0] and y.tolist() == [3.0, 5.0, 7.0]
    assert x.grad.tolist() == [8.0, 8.0, 8.0]


def test_in_place_after_the_old_value_was_used_matches_pytorch():
    pt = reference_torch()
    grads = []
    for lib in (torch, pt):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        w = y.exp()                              # exp saves its output, the old y's exp
        y *= x                                   # mul saves both operands: old y and x
        y -= w
        (w.sum() + (y * y).sum()).backward()
        grads.append(np.array(x.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_retained_grad_follows_in_place_change():
    """y.grad is the gradient of the loss with respect to y's current value."""
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y += 1                                       # y = 2x + 1 = 3, 5, 7
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, 10.0, 14.0]  # 2y, for the new y only
    assert x.grad.tolist() == [12.0, 20.0, 28.0]  # 2y * 2


def test_in_place_keeps_the_dtype():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert y.dtype == torch.float32
    y += np.ones(2)                              # a float64 numpy array
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [2.0, 2.0]
    plain = torch.zeros(2)
    plain += torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert plain.dtype == torch.float32


def test_setitem_on_tensors_without_grad():
    t = torch.zeros(3, 4)
    expected = np.zeros((3, 4), np.float32)
    t[1] = 5.0
    expected[1] = 5.0
    t[:, 0] = torch.tensor([1.0, 2.0, 3.0])
    expected[:, 0] = [1.0, 2.0, 3.0]
    t[[0, 2], [1, 3]] = 7.0
    expected[[0, 2], [1, 3]] = 7.0
    t[torch.tensor([2]), 2] = -1.0
    expected[2, 2] = -1.0
    np.testing.assert_array_equal(t.numpy(), expected)
    assert not t.requires_grad


def test_setitem_in_the_graph():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y[0] = 0.0                                   # overwritten: no gradient reaches x[0]
    (y * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 10.0, 100.0]

    w = torch.tensor([2.0, 3.0], requires_grad=True)
    a = torch.zeros(3)
    a[1] = w[0] * 5                              # a value that requires grad pulls a in
    assert a.requires_grad
    a.sum().backward()
    assert w.grad.tolist() == [5.0, 0.0]


def test_subtract_one_at_the_targets():
    """The lecture's `dlogits[range(n), Yb] -= 1`, with and without grad."""
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], np.float32)
    targets = [2, 0]
    expected = probs.copy()
    expected[[0, 1], targets] -= 1

    d = torch.tensor(probs)
    d[range(2), torch.tensor(targets)] -= 1
    np.testing.assert_array_equal(d.numpy(), expected)

    logits = torch.tensor(probs, requires_grad=True)
    d = logits * 1
    d[range(2), torch.tensor(targets)] -= 1      # subtracting a constant: gradient unchanged
    d /= 2
    np.testing.assert_allclose(d.numpy(), expected / 2)
    (d * torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    np.testing.assert_array_equal(logits.grad.numpy(), [[0.5, 1.0, 1.5], [2.0, 2.5, 3.0]])


def test_accumulating_rows_with_repeats():
    """The lecture's `dC[ix] += demb[k, j]` loop: a row used twice gets both additions."""
    demb = torch.tensor([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]], requires_grad=True)
    Xb = torch.tensor([2, 0, 2])
    dC = torch.zeros(3, 2)
    for k in range(Xb.shape[0]):
        ix = Xb[k]
        dC[ix] += demb[k]
    assert dC.tolist() == [[10.0, 20.0], [0.0, 0.0], [101.0, 202.0]]
    (dC * torch.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert demb.grad.tolist() == [[3.0, 3.0], [1.0, 1.0], [3.0, 3.0]]


# ---------------------------------------------------------------- factories

def test_filled_factories():
    assert torch.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert torch.zeros((2, 3)).shape == (2, 3) and torch.zeros(2).dtype == torch.float32
    assert torch.ones(2).tolist() == [1.0, 1.0]
    assert torch.ones(2, dtype=torch.int64).dtype == torch.int64
    assert torch.full((2, 2), 3.5).tolist() == [[3.5, 3.5], [3.5, 3.5]]
    assert torch.full((2,), 3.5).dtype == torch.float32
    assert torch.full((2,), 7).dtype == torch.int64
    p = torch.zeros(3, requires_grad=True)
    assert p.requires_grad and p.is_leaf


def test_like_factories():
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    z, o = torch.zeros_like(x), torch.ones_like(x)
    assert z.shape == o.shape == (1, 2)
    assert z.dtype == o.dtype == torch.float64
    assert z.tolist() == [[0.0, 0.0]] and o.tolist() == [[1.0, 1.0]]
    assert not z.requires_grad and not o.requires_grad
    assert torch.zeros_like(torch.tensor([1, 2])).dtype == torch.int64
    assert torch.ones_like(x, dtype=torch.float32).dtype == torch.float32


def test_arange():
    assert torch.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert torch.arange(5).dtype == torch.int64
    assert torch.arange(2, 8, 2).tolist() == [2, 4, 6]
    t = torch.arange(0, 1, 0.25)
    assert t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), np.arange(0, 1, 0.25, dtype=np.float32))
    assert torch.arange(1.0, 4).tolist() == [1.0, 2.0, 3.0]


def test_tensor_copies_its_input():
    a = np.array([1.0, 2.0], np.float32)
    t = torch.tensor(a)
    a[0] = 100.0
    assert t.tolist() == [1.0, 2.0]


def test_randn_and_rand():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100_000, generator=g)
    assert x.dtype == torch.float32 and x.shape == (100_000,)
    assert abs(x.mean().item()) < 0.02 and abs(x.numpy().std() - 1) < 0.02
    assert torch.randn((3, 4), generator=g).shape == (3, 4)
    assert torch.randn(3, 4, generator=g).shape == (3, 4)
    u = torch.rand(100_000, generator=g)
    assert u.dtype == torch.float32
    assert 0.0 <= u.numpy().min() and u.numpy().max() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.01
    assert torch.randn(2, requires_grad=True).requires_grad


def test_randint_signatures():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(10, (1000,), generator=g)
    assert a.dtype == torch.int64 and a.shape == (1000,)
    assert set(a.tolist()) == set(range(10))
    b = torch.randint(5, 8, (2, 500), generator=g)
    assert b.shape == (2, 500) and set(b.numpy().ravel().tolist()) == {5, 6, 7}
    c = torch.randint(0, 100, (32,), generator=torch.Generator().manual_seed(7))
    d = torch.randint(0, 100, (32,), generator=torch.Generator().manual_seed(7))
    assert c.tolist() == d.tolist()


def test_generator_manual_seed_returns_the_generator():
    g = torch.Generator()
    assert g.manual_seed(2147483647) is g
    g1 = torch.Generator().manual_seed(2147483647)
    g2 = torch.Generator().manual_seed(2147483647)
    assert torch.randn(5, generator=g1).tolist() == torch.randn(5, generator=g2).tolist()
    assert torch.randn(5, generator=g1).tolist() != torch.randn(5, generator=g1).tolist()


def test_global_manual_seed():
    torch.manual_seed(123)
    a = torch.randn(4)
    torch.manual_seed(123)
    g = torch.Generator().manual_seed(5)
    torch.randn(10, generator=g)                 # another generator leaves the default alone
    b = torch.randn(4)
    assert a.tolist() == b.tolist()


def test_multinomial_with_replacement_follows_the_weights():
    g = torch.Generator().manual_seed(3)
    weights = torch.tensor([1.0, 2.0, 7.0])      # need not sum to 1
    draws = torch.multinomial(weights, 30_000, replacement=True, generator=g)
    assert draws.dtype == torch.int64 and draws.shape == (30_000,)
    freq = np.bincount(draws.numpy(), minlength=3) / 30_000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.01)   # about 4 standard errors


def test_multinomial_without_replacement():
    g = torch.Generator().manual_seed(4)
    draws = torch.multinomial(torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0]), 4, generator=g)
    assert sorted(draws.tolist()) == [0, 1, 3, 4]   # each drawn once; never the zero weight
    rows = torch.multinomial(torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]]), 3,
                             generator=g)
    assert rows.shape == (2, 3)
    for row in rows.tolist():
        assert len(set(row)) == 3
    with pytest.raises((ValueError, RuntimeError)):
        torch.multinomial(torch.tensor([1.0, 1.0]), 3)


def test_multinomial_two_dimensional_with_replacement():
    g = torch.Generator().manual_seed(5)
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    draws = torch.multinomial(probs, num_samples=4, replacement=True, generator=g)
    assert draws.tolist() == [[1, 1, 1, 1], [2, 2, 2, 2]]   # all mass on one class per row
    one = torch.multinomial(torch.tensor([[0.2, 0.8]]), num_samples=1, generator=g)
    assert one.shape == (1, 1) and one.item() in (0, 1)


def test_multinomial_is_reproducible():
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 3)

    def draw(seed):
        return torch.multinomial(weights, 2, generator=torch.Generator().manual_seed(seed))

    assert draw(2147483647).tolist() == draw(2147483647).tolist()
    samples = [draw(s).tolist() for s in range(10)]
    assert any(s != samples[0] for s in samples)


def test_all_and_allclose():
    assert torch.all(torch.tensor([1, 1])).item() is True
    assert torch.all(torch.tensor([1.0, 0.0])).item() is False
    assert torch.all(torch.tensor([1.0, 2.0]) == torch.tensor([1.0, 2.0])).item()
    a = torch.tensor([1.0, 100.0])
    assert torch.allclose(a, torch.tensor([1.0 + 5e-6, 100.0])) is True
    assert torch.allclose(a, torch.tensor([1.0 + 5e-5, 100.0])) is False   # rtol 1e-5
    assert torch.allclose(a, torch.tensor([1.0 + 5e-5, 100.0]), rtol=1e-4)


@pytest.mark.parametrize("name, numpy_f, derivative", [
    ("tanh", np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    ("exp", np.exp, np.exp),
    ("log", np.log, lambda x: 1 / x),
    ("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x)),
])
def test_math_functions(name, numpy_f, derivative):
    values = np.array([0.3, 1.0, 2.5], np.float64)
    x = torch.tensor(values, requires_grad=True)
    y = getattr(torch, name)(x)
    np.testing.assert_allclose(y.numpy(), numpy_f(values), rtol=1e-12)
    (y * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), derivative(values) * [1, 2, 3], rtol=1e-12)
    assert getattr(torch, name)(torch.tensor([1.0])).dtype == torch.float32


# ---------------------------------------------------------------- errors that teach

def test_matmul_error():
    with pytest.raises((ValueError, RuntimeError)) as info:
        torch.randn(32, 30) @ torch.randn(64, 200)
    assert str(info.value) == "matmul: (32, 30) @ (64, 200): inner dimensions 30 and 64 differ"


def test_broadcast_error_names_the_op_and_shapes():
    with pytest.raises((ValueError, RuntimeError)) as info:
        torch.randn(3, 4) + torch.randn(2, 4)
    message = str(info.value)
    assert message.startswith("add")
    assert "(3, 4)" in message and "(2, 4)" in message
    with pytest.raises((ValueError, RuntimeError), match=r"mul.*\(3, 4\).*\(5,\)"):
        torch.randn(3, 4) * torch.randn(5)


def test_float_index_error():
    t = torch.randn(4, 3)
    with pytest.raises(IndexError, match="integers") as info:
        t[torch.tensor([0.0, 1.0])]
    assert "float32" in str(info.value)


def test_out_of_range_index_error():
    t = torch.randn(4, 3)
    with pytest.raises(IndexError, match=r"\b7\b"):
        t[torch.tensor([0, 7])]
    with pytest.raises(IndexError, match=r"\b9\b"):
        t[1, 9]


def test_string_operand_error():
    t = torch.randn(3)
    for f in (lambda: t + "a", lambda: "a" * t, lambda: t - "text"):
        with pytest.raises(TypeError, match="str") as info:
            f()
        assert re.match(r"(add|mul|sub)\b", str(info.value))


def test_view_error_names_the_shapes():
    t = torch.zeros(2, 3)
    with pytest.raises((ValueError, RuntimeError)) as info:
        t.view(4, 2)
    message = str(info.value)
    assert "(2, 3)" in message and re.search(r"\(4, ?2\)", message)


def test_cross_entropy_target_out_of_range():
    logits = torch.randn(3, 27)
    with pytest.raises(IndexError, match=r"27.*\b30\b"):
        F.cross_entropy(logits, torch.tensor([0, 30, 1]))
    with pytest.raises(IndexError, match="-1"):
        F.cross_entropy(logits, torch.tensor([0, -1, 1]))


def test_cross_entropy_value():
    """Against the definition, in numpy: -mean(log softmax at the targets)."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 4))
    targets = np.array([0, 3, 1, 1, 2])
    expected = -np.mean(logits[range(5), targets] - np.log(np.exp(logits).sum(1)))
    loss = F.cross_entropy(torch.tensor(logits), torch.tensor(targets))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- ties in max

def test_max_along_a_dim_routes_ties_to_the_first():
    x = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0], [5.0, 5.0, 5.0]], requires_grad=True)
    values, indices = x.max(1)
    assert values.tolist() == [3.0, 2.0, 5.0] and indices.tolist() == [1, 0, 0]
    (values * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [10.0, 0.0, 0.0], [100.0, 0.0, 0.0]]
    x.grad = None
    x.max(1, keepdim=True).values.sum().backward()
    expected = F.one_hot(x.max(1).indices, num_classes=3)   # the lecture's routing
    np.testing.assert_array_equal(x.grad.numpy(), expected.numpy())


def test_max_over_everything_splits_ties():
    x = torch.tensor([[1.0, 3.0, 3.0], [2.0, 3.0, 1.0]], requires_grad=True)
    x.max().backward()
    third = 1 / 3
    np.testing.assert_allclose(x.grad.numpy(), [[0, third, third], [0, third, 0]], rtol=1e-6)
    assert x.grad.dtype == torch.float32


def test_ties_match_pytorch():
    pt = reference_torch()
    values = [[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]]
    grads = []
    for lib in (torch, pt):
        x = lib.tensor(values, requires_grad=True)
        (x.max(0).values.sum() + 2 * x.max() + 3 * x.min(1).values.sum() + x.min()).backward()
        grads.append(np.array(x.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_reductions_of_a_0d_tensor_over_dim_0_return_the_value():
    x = torch.tensor(3.0, requires_grad=True)
    y = x.sum(0) + x.mean(0) + x.logsumexp(0) + x.max(0).values + x.sum(-1)
    y.backward()
    assert y.item() == 15.0 and x.grad.item() == 5.0      # each term is x, d/dx = 1
    assert x.max(0).indices.item() == 0
    with pytest.raises(IndexError, match="sum: dim 1 is out of range"):
        x.sum(1)


# ---------------------------------------------------------------- in-place changes of saved values

def test_changing_a_saved_value_in_place_makes_backward_refuse():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.tanh()
    loss = (y * y).sum()                       # tanh saved y as its output, mul as its input
    with torch.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match=r"changed in place after the op used it"):
        loss.backward()


def test_changing_memory_through_a_view_is_caught_too():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 2
    v = y.T                                    # a view of y's memory
    loss = (v * v).sum()
    with torch.no_grad():
        y[0] = 5.0
    with pytest.raises(RuntimeError, match=r"'mul' \(shape \(2, 2\)\) was changed in place"):
        loss.backward()


def test_a_parameter_updated_before_backward_of_an_old_graph_is_caught():
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w).sum()
    with torch.no_grad():
        w -= 0.1                               # an update of the leaf the graph saved
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_unrelated_and_later_in_place_changes_are_fine():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    loss = (y * y).sum()
    other = torch.zeros(2)
    other += 1                                 # not saved by any node of this graph
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 18 * x.numpy())
    with torch.no_grad():
        y += 1                                 # after backward: nothing left to corrupt
        x -= 0.5
    z = (x * 2).sum()
    z.backward()                               # a new graph sees the new values
    np.testing.assert_allclose(x.grad.numpy(), 18 * np.array([1.0, 2.0]) + 2)


# ---------------------------------------------------------------- anomaly mode

def test_anomaly_mode_names_the_op_and_the_users_line_for_a_nan_forward():
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    with torch.detect_anomaly():
        with np.errstate(invalid="ignore"):
            with pytest.raises(FloatingPointError) as info:
                x.sqrt()                                   # sqrt(-1): NaN from finite input
    message = str(info.value)
    assert message.startswith("sqrt: the forward produced NaN")
    assert f"{__file__}:" in message and "test_anomaly_mode_names_the_op" in message


def test_anomaly_mode_catches_the_first_backward_that_makes_inf():
    x = torch.tensor([0.0, 4.0], requires_grad=True)
    with torch.detect_anomaly():
        y = (x * x).sqrt()                                 # finite; d/dx sqrt at 0 is inf
        with np.errstate(divide="ignore"), pytest.raises(FloatingPointError,
                                                        match=r"sqrt: the backward .* Inf"):
            y.sum().backward()


def test_outside_anomaly_mode_nan_flows_through_silently_as_in_numpy():
    x = torch.tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        y = x.sqrt()
    assert np.isnan(y.item())


def test_anomaly_mode_does_not_blame_ops_fed_with_nan():
    x = torch.tensor([np.nan, 1.0], requires_grad=True)
    with torch.detect_anomaly():
        (x * 2).sum().backward()                           # NaN in, NaN out: not this op's fault
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


# ---------------------------------------------------------------- memory

def test_a_dropped_graph_frees_its_arrays_without_the_garbage_collector():
    import gc
    import weakref

    w = torch.randn(64, 64, requires_grad=True)
    gc.disable()
    try:
        h = (w @ w).tanh()
        saved = weakref.ref(h.grad_fn.out)          # an array only the graph holds
        loss = (h * h).sum()
        loss.backward()
        del h, loss
        assert saved() is None                     # freed by reference counting alone
    finally:
        gc.enable()
    assert w.grad is not None


def test_many_training_steps_keep_one_graph_alive():
    import gc

    w = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(4, 8)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(200):
        loss = ((x @ w).tanh() ** 2).mean()
        w.grad = None
        loss.backward()
        with torch.no_grad():
            w -= 0.01 * w.grad
    gc.collect()
    assert len(gc.get_objects()) - before < 100    # no per-step leftovers


def test_log_of_zero_is_minus_inf_quietly_and_a_warning_in_anomaly_mode():
    import subprocess
    import sys

    # In a fresh interpreter: pytest resets warning filters around each test, which would
    # hide the filter tensorgrad installs at import. -W default shows every warning.
    script = ("import tensorgrad as tg; x = tg.tensor([0.0, 1.0]); "
              "print(x.log().tolist(), (x / x).tolist())")
    run = subprocess.run([sys.executable, "-W", "default", "-c", script],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[-inf, 0.0] [nan, 1.0]"
    assert "Warning" not in run.stderr
    x = torch.tensor([0.0, 1.0])
    with torch.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.warns(torch.AnomalyWarning, match=r"log: the forward produced Inf"):
            y = x.log()
    assert y.tolist() == [-np.inf, 0.0]


# ---------------------------------------------------------------- docs/engine.md is true

ENGINE_DOC = Path(__file__).resolve().parents[1] / "docs" / "engine.md"


def test_the_engine_doc_shows_unbroadcast_as_it_is():
    import inspect
    from tensorgrad.arrays import unbroadcast
    source = inspect.getsource(unbroadcast)
    code = source[:source.index('    """')] + source[source.rindex('"""') + 4:]
    assert f"```python\n{code}```" in ENGINE_DOC.read_text(encoding="utf-8")


def test_the_engine_doc_counts_the_primitives_and_lists_the_files():
    text = ENGINE_DOC.read_text(encoding="utf-8")
    primitives = [op for op in vars(ops).values()
                  if isinstance(op, type) and issubclass(op, ops.Op) and "grads" in vars(op)]
    assert f"There are {len(primitives)} primitives:" in text
    listed = re.findall(r"^(\w+\.py) ", text.split("```")[1], re.M)
    package = Path(ops.__file__).parent
    assert listed and all((package / name).exists() for name in listed)


def test_the_engine_doc_shows_how_a_plan_calls_a_rule():
    a, b = (torch.randn(3, requires_grad=True) for _ in range(2))
    plan = (a * b)._node.plan
    assert plan.sources == ["lambda node, g: rule(g, node.inputs[1])",
                            "lambda node, g: rule(g, node.inputs[0])"]
    assert f"`{plan.sources[0]}` for `Mul.grad_a`" in " ".join(
        ENGINE_DOC.read_text(encoding="utf-8").split())


def test_a_node_keeps_exactly_what_its_rules_read_and_backward_leaves_the_constants():
    """Each pattern of kept inputs, through real nodes: all, none, some, one input; and what
    backward leaves (the constants only)."""
    a, b = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    both, added, halved, exp = a * b, a + b, a / b, a.exp()
    scaled = a * 2.0
    x, y = both.grad_fn.inputs                                     # each rule reads the other
    assert x is a._data and y is b._data
    assert added.grad_fn.inputs == (None, None)                    # add's rules read nothing
    assert halved.grad_fn.inputs[0] is None                        # a / b: b and the output
    assert halved.grad_fn.inputs[1] is b._data and halved.grad_fn.out is not None
    assert exp.grad_fn.inputs == (None,) and exp.grad_fn.out is not None
    const = scaled.grad_fn.inputs[1]
    assert scaled.grad_fn.inputs[0] is None and const.tolist() == 2.0   # the constant, kept
    for t in (both, added, halved, exp, scaled):
        t.sum().backward()
    assert both.grad_fn.inputs == (None, None) and halved.grad_fn.inputs == (None, None)
    assert exp.grad_fn.inputs == (None,) and exp.grad_fn.out is None
    assert scaled.grad_fn.inputs[0] is None and scaled.grad_fn.inputs[1] is const
    assert both.grad_fn.shapes == ((2, 3), (2, 3)) and scaled.grad_fn.shapes == ((2, 3), ())
    assert exp.grad_fn.shapes == ((2, 3),)           # the shapes outlive the arrays
    cast = a.double()
    cast.sum().backward()
    assert cast.grad_fn.dtypes == (np.float32,) and cast.grad_fn.out_dtype == np.float64


def test_a_gradient_rule_of_the_wrong_shape_is_refused_not_reshaped():
    class Transposed(ops.Op):
        name = "transposed"

        def forward(x):
            return x.copy()

        def grad_x(g):
            return g.T                      # wrong: (4, 3) for an input of shape (3, 4)

    from tensorgrad.tensor import apply
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(4, 3\) cannot be summed "
                                           r"down to its input's shape \(3, 4\)"):
        apply(Transposed, x).sum().backward()
