"""Grad modes (no_grad, enable_grad, set_grad_enabled as context managers, decorators,
plain calls, on functions, methods and generators) and higher-order calls
(`backward(create_graph=True)`, `autograd.grad`, `autograd.backward`, `inputs=`).
"""
import numpy as np

from .harness import Case

W = np.array([0.5, -1.0, 2.0])


def leaf(lib):
    return lib.tensor(W, requires_grad=True)


def generator_no_grad(lib):
    @lib.no_grad()
    def steps(x):
        for k in range(2):
            yield x * (k + 2)
    return [y.requires_grad for y in steps(leaf(lib))]


def generator_enable_grad(lib):
    @lib.enable_grad()
    def steps(x):
        yield x * 2
    with lib.no_grad():
        return [y.requires_grad for y in steps(leaf(lib))]


def generator_set_grad_enabled(lib):
    @lib.set_grad_enabled(False)
    def steps(x):
        yield x * 2
        yield lib.is_grad_enabled()
    out = list(steps(leaf(lib)))
    return [out[0].requires_grad, out[1], lib.is_grad_enabled()]


def bare_no_grad(lib):
    @lib.no_grad
    def double(x):
        return x * 2
    return [double(leaf(lib)).requires_grad, lib.is_grad_enabled()]


def bare_enable_grad(lib):
    @lib.enable_grad
    def double(x):
        return x * 2
    with lib.no_grad():
        return double(leaf(lib)).requires_grad


def decorated_no_grad(lib):
    @lib.no_grad()
    def double(x):
        return x * 2, lib.is_grad_enabled()
    y, inside = double(leaf(lib))
    return [y.requires_grad, inside, lib.is_grad_enabled()]


def decorated_method(lib):
    class Model:
        @lib.no_grad()
        def predict(self, x):
            return x * 2
    return Model().predict(leaf(lib)).requires_grad


def set_grad_enabled_context(lib):
    x = leaf(lib)
    with lib.set_grad_enabled(False):
        y = x * 2
        inside = lib.is_grad_enabled()
    return [y.requires_grad, inside, lib.is_grad_enabled(), (x * 2).requires_grad]


def set_grad_enabled_decorator(lib):
    @lib.set_grad_enabled(False)
    def double(x):
        return x * 2
    x = leaf(lib)
    before = lib.is_grad_enabled()
    return [before, double(x).requires_grad, lib.is_grad_enabled(), (x * 2).requires_grad]


def set_grad_enabled_call(lib):
    x = leaf(lib)
    lib.set_grad_enabled(False)
    y = x * 2
    off = lib.is_grad_enabled()
    lib.set_grad_enabled(True)
    return [y.requires_grad, off, (x * 2).requires_grad]


def set_grad_enabled_true_inside_no_grad(lib):
    x = leaf(lib)
    with lib.no_grad():
        with lib.set_grad_enabled(True):
            y = x * 2
        z = x * 2
    return [y.requires_grad, z.requires_grad]


def enable_inside_no_grad(lib):
    x = leaf(lib)
    with lib.no_grad():
        with lib.enable_grad():
            y = x * 2
        z = x * 2
    loss = (y * y).sum()
    loss.backward()
    return [y.requires_grad, z.requires_grad, x.grad]


def nested_three(lib):
    x = leaf(lib)
    with lib.no_grad():
        with lib.enable_grad():
            with lib.no_grad():
                a = x * 2
            b = x * 2
        c = x * 2
    return [a.requires_grad, b.requires_grad, c.requires_grad, lib.is_grad_enabled()]


def exception_restores(lib):
    try:
        with lib.no_grad():
            raise ValueError("inside")
    except ValueError:
        pass
    return [lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad]


def decorator_exception_restores(lib):
    @lib.no_grad()
    def fail():
        raise ValueError("inside")
    try:
        fail()
    except ValueError:
        pass
    return lib.is_grad_enabled()


def no_grad_reused(lib):
    off = lib.no_grad()
    x = leaf(lib)
    with off:
        a = x * 2
    with off:
        b = x * 2
    return [a.requires_grad, b.requires_grad, lib.is_grad_enabled()]


def results_under_enable_grad(lib):
    with lib.enable_grad():
        y = lib.tensor(W) * 2
    return [y.requires_grad, y.is_leaf]


def requires_grad_under_no_grad(lib):
    with lib.no_grad():
        x = lib.tensor(W, requires_grad=True)
        y = x * 2
    return [x.requires_grad, x.is_leaf, y.requires_grad, y.is_leaf]


def generator_closed_early(lib):
    @lib.no_grad()
    def steps(x):
        while True:
            yield x * 2
    gen = steps(leaf(lib))
    first = next(gen)
    outside = lib.is_grad_enabled()
    gen.close()
    return [first.requires_grad, outside, lib.is_grad_enabled()]


MODES = {
    "@no_grad() on a generator": generator_no_grad,
    "@enable_grad() on a generator, consumed under no_grad": generator_enable_grad,
    "@set_grad_enabled(False) on a generator": generator_set_grad_enabled,
    "@no_grad() generator closed early": generator_closed_early,
    "bare @no_grad": bare_no_grad,
    "bare @enable_grad": bare_enable_grad,
    "@no_grad() on a function": decorated_no_grad,
    "@no_grad() on a method": decorated_method,
    "with set_grad_enabled(False)": set_grad_enabled_context,
    "@set_grad_enabled(False)": set_grad_enabled_decorator,
    "set_grad_enabled(False) called": set_grad_enabled_call,
    "set_grad_enabled(True) inside no_grad": set_grad_enabled_true_inside_no_grad,
    "enable_grad inside no_grad": enable_inside_no_grad,
    "no_grad, enable_grad, no_grad nested": nested_three,
    "exception inside no_grad": exception_restores,
    "exception inside @no_grad()": decorator_exception_restores,
    "one no_grad object used twice": no_grad_reused,
    "ops on constants under enable_grad": results_under_enable_grad,
    "requires_grad=True under no_grad": requires_grad_under_no_grad,
}


# ---------------------------------------------------------------- higher order

def create_graph(lib):
    x = leaf(lib)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    first = x.grad.clone()
    x.grad.sum().backward()
    return [first, x.grad]


def autograd_grad(lib):
    x = leaf(lib)
    (g,) = lib.autograd.grad((x ** 3).sum(), [x])
    return g


def autograd_grad_twice(lib):
    x = leaf(lib)
    (g,) = lib.autograd.grad((x ** 3).sum(), [x], create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), [x])
    return [g, h]


def autograd_backward(lib):
    x = leaf(lib)
    lib.autograd.backward([(x * x).sum()])
    return x.grad


def backward_inputs(lib):
    x, w = leaf(lib), leaf(lib)
    (x * w).sum().backward(inputs=[x])
    return [x.grad, w.grad]


def retain_graph_twice(lib):
    x = leaf(lib)
    y = (x ** 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    return x.grad


def backward_gradient_keyword(lib):
    x = leaf(lib)
    (x * 2).backward(gradient=lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64))
    return x.grad


HIGHER = {
    "backward(create_graph=True)": create_graph,
    "autograd.grad": autograd_grad,
    "autograd.grad(create_graph=True), twice": autograd_grad_twice,
    "autograd.backward([loss])": autograd_backward,
    "backward(inputs=[x])": backward_inputs,
    "backward(retain_graph=True) twice": retain_graph_twice,
    "backward(gradient=...)": backward_gradient_keyword,
}


def cases():
    return ([Case(f"gradmodes/{name}", fn) for name, fn in MODES.items()]
            + [Case(f"higher-order/{name}", fn) for name, fn in HIGHER.items()])
