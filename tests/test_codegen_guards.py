"""The compiled step never runs stale code: each step below is written as a user would (a
function closing over a model or variables, called again and again while something it
depends on changes), and every call's loss and gradients must equal an eager run of the
same step on a copy of the same state. The compiled step may retrace or run eagerly; it
may never return what eager would not."""
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad import codegen, nn

SCALE = 0.5                                 # a global number a step reads


def batch(k, n=8, features=4, classes=3):
    """The inputs of call k: (x, y), the same for the eager and the compiled copy."""
    rng = np.random.default_rng(100 + k)
    return (torch.tensor(rng.standard_normal((n, features)).astype(np.float32)),
            torch.tensor(rng.integers(0, classes, n)))


def parameters(state):
    """Every tensor that requires grad in a state dict (tensors, lists, modules)."""
    found = []
    for value in state.values():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, nn.Module):
                found += item.parameters()
            elif isinstance(item, torch.Tensor) and item.requires_grad:
                found.append(item)
    return found


def agree_with_eager(build, calls=6, change=None, inputs=batch):
    """Run `build()`'s step eagerly on one copy of its state and compiled on another.

    `build()` returns (step, state): a fresh step and the state it closes over (a dict);
    calling it twice gives two equal copies. Before call k, `change(k, state)` changes a
    copy as the user would (both copies alike). Every call's loss and gradients must be
    the eager ones, bit for bit. Returns the compiled step and what each call did.
    """
    eager_step, eager_state = build()
    step, state = build()
    compiled = codegen.compile(step)
    did = []
    for k in range(calls):
        args = inputs(k)
        for copy in (eager_state, state):
            if change is not None:
                change(k, copy)
            for p in parameters(copy):
                p.grad = None
            if copy is eager_state:
                expected = eager_step(*args)
                expected.backward()
            else:
                loss = compiled(*args)
        did.append(compiled.last)
        assert loss.dtype == expected.dtype
        assert np.array_equal(loss.numpy(), expected.detach().numpy()), (
            k, compiled.explain(), loss.item(), expected.item())
        ours, theirs = parameters(state), parameters(eager_state)
        assert len(ours) == len(theirs)
        for p, q in zip(ours, theirs):
            assert (p.grad is None) == (q.grad is None), (k, compiled.explain())
            if q.grad is not None:
                assert np.array_equal(p.grad.numpy(), q.grad.numpy()), (k, compiled.explain())
    return compiled, did


def model_state(seed=0, batchnorm=True):
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if batchnorm else []) + [
        nn.Tanh(), nn.Linear(6, 3)]
    return {"model": nn.Sequential(*layers)}


# ---------------------------------------------------------------- module modes

def test_a_module_switched_to_eval_retraces():
    def build():
        state = model_state()
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        if k == 3:
            state["model"].eval()
        if k == 5:
            state["model"].train()

    compiled, did = agree_with_eager(build, calls=7, change=change)
    assert did[3] == "traced" and did[5] == "compiled"    # train mode's program is kept


def test_retracing_says_what_changed():
    state = model_state()
    step = codegen.compile(lambda x, y: F.cross_entropy(state["model"](x), y))
    for k in range(3):
        step(*batch(k))
    state["model"].layers[1].eval()
    step(*batch(3))
    assert step.last == "traced"
    assert step.explain().endswith(
        "state['model'].layers[1].training changed from True to False")


# ---------------------------------------------------------------- Python values

def test_a_changed_closure_number_retraces():
    def build():
        state = model_state(batchnorm=False)
        state["scale"] = 1.0

        def step(x, y):
            return F.cross_entropy(state["model"](x) * state["scale"], y)
        return step, state

    def change(k, state):
        state["scale"] = 1.0 if k < 3 else 2.5

    compiled, did = agree_with_eager(build, change=change)
    assert did == ["traced", "compiled", "compiled", "traced", "compiled", "compiled"]


def test_a_changed_nonlocal_number_retraces():
    def build():
        state = model_state(batchnorm=False)
        scale = 1.0

        def step(x, y):
            return F.cross_entropy(state["model"](x) * scale, y)

        def set_scale(value):
            nonlocal scale
            scale = value
        state["set_scale"] = set_scale
        return step, state

    agree_with_eager(build, change=lambda k, s: s["set_scale"](1.0 if k < 3 else 0.25))


def test_a_changed_global_number_retraces():
    def build():
        state = model_state(batchnorm=False)
        return (lambda x, y: F.cross_entropy(state["model"](x) * SCALE, y)), state

    def change(k, state):
        global SCALE
        SCALE = 0.5 if k < 3 else 3.0

    try:
        compiled, did = agree_with_eager(build, change=change)
    finally:
        change(0, None)
    assert did[3] == "traced"


def test_a_number_that_changes_every_call_ends_in_eager():
    def build():
        state = model_state(batchnorm=False)
        state["scale"] = 1.0
        return (lambda x, y: F.cross_entropy(state["model"](x) * state["scale"], y)), state

    def change(k, state):
        state["scale"] = 1.0 + k

    compiled, did = agree_with_eager(build, calls=14, change=change)
    assert did[-1] == "eager" and "keeps changing" in compiled.explain()


HELPER_SCALE = 1.0


def scaled(h):
    """A helper of the step's, reading a global of its own."""
    return h * HELPER_SCALE


@torch.no_grad()
def keep_large(h):
    """A helper under a library decorator: a mask, outside the graph, from a global."""
    return (h.abs() > HELPER_SCALE * 0.2).to(h.dtype)


@pytest.mark.parametrize("helper", [scaled, keep_large])
def test_a_number_read_by_a_function_the_step_calls_retraces(helper):
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            return F.cross_entropy(h * helper(h), y)
        return step, state

    def change(k, state):
        global HELPER_SCALE
        HELPER_SCALE = 1.0 if k < 3 else 2.0

    try:
        compiled, did = agree_with_eager(build, change=change)
    finally:
        change(0, None)
    assert did == ["traced", "compiled", "compiled", "traced", "compiled", "compiled"]


def test_a_class_attribute_of_your_layer_retraces():
    class Scaled(nn.Module):
        factor = 1.0

        def __init__(self):
            self.inner = nn.Linear(4, 3)

        def forward(self, x):
            return self.inner(x) * self.factor

    def build():
        torch.manual_seed(0)
        state = {"model": Scaled()}
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        type(state["model"]).factor = 1.0 if k < 3 else 4.0

    compiled, did = agree_with_eager(build, change=change)
    assert did[3] == "traced"


def test_a_modules_attributes_are_checked_whole_and_without_its_training_flag():
    """The check compares a module's attribute names as they were, then (when they are
    not) without `training`, which `train()` and `eval()` set on the module itself: a flag
    set to the value it had keeps the code, an attribute added or removed retraces."""
    class Gated(nn.Module):
        def __init__(self):
            self.inner = nn.Linear(4, 3)

        def forward(self, x):
            out = self.inner(x)
            return out * 2.0 if hasattr(self, "double") else out

    def build():
        torch.manual_seed(0)
        state = {"model": Gated()}
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        model = state["model"]
        if k == 2:
            model.train()                       # `training` now set on the module itself
            assert "training" in vars(model)
        if k == 3:
            model.double = True
        if k == 5:
            del model.double

    compiled, did = agree_with_eager(build, calls=7, change=change)
    assert did == ["traced", "compiled", "compiled", "traced", "compiled", "compiled",
                   "compiled"], did
    assert compiled.last == "compiled"


def test_a_branch_on_whether_a_gradient_exists_retraces():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            loss = F.cross_entropy(state["model"](x), y)
            first = state["model"].layers[0].weight
            return loss * 2 if first.grad is None else loss
        return step, state

    def change(k, state):                       # gradients kept from call 2 on
        if k < 2:
            for p in parameters(state):
                p.grad = None

    def agree(build, change):
        eager_step, eager_state = build()
        step, state = build()
        compiled = codegen.compile(step)
        for k in range(5):
            x, y = batch(k)
            change(k, eager_state)
            expected = eager_step(x, y)
            expected.backward()
            change(k, state)
            assert compiled(x, y).item() == expected.item(), k
            for p, q in zip(parameters(state), parameters(eager_state)):
                assert np.array_equal(p.grad.numpy(), q.grad.numpy()), k
        return compiled

    assert agree(build, change).last == "compiled"


def test_state_too_large_to_check_runs_eagerly():
    state = model_state(batchnorm=False)
    state["words"] = [f"name{i}" for i in range(5000)]
    step = codegen.compile(lambda x, y: F.cross_entropy(state["model"](x), y)
                           + 0 * len(state["words"]))
    step(*batch(0))
    assert step.last == "eager" and "5000 items" in step.explain()


@pytest.mark.parametrize("read", ["item", "bool", "float", "tolist", "numpy"])
def test_a_branch_on_a_tensor_value_runs_eagerly(read):
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            loss = F.cross_entropy(state["model"](x), y)
            big = {"item": lambda: loss.item() > 1.1,
                   "bool": lambda: bool(loss > 1.1),
                   "float": lambda: float(loss) > 1.1,
                   "tolist": lambda: loss.tolist() > 1.1,
                   "numpy": lambda: loss.numpy() > 1.1}[read]()
            return loss * 3 if big else loss
        return step, state

    def inputs(k):              # the loss is above 1.1 for the first calls only
        x, y = batch(k)
        return x * (1.0 if k < 3 else 0.0), y

    compiled, did = agree_with_eager(build, inputs=inputs)
    assert did[-1] == "eager" and "read" in compiled.explain()


def test_a_branch_on_a_tensor_comparison_runs_eagerly():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            if (x.sum() > 0):                           # Tensor.__bool__
                h = h * 2
            return F.cross_entropy(h, y)
        return step, state

    def inputs(k):
        x, y = batch(k)
        return x.abs() * (1 if k < 3 else -1), y

    compiled, did = agree_with_eager(build, inputs=inputs)
    assert did == ["eager"] * 6


# ---------------------------------------------------------------- parameters

def test_a_replaced_parameter_tensor_retraces():
    def build():
        state = model_state(batchnorm=False)
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        if k == 3:
            linear = state["model"].layers[0]
            linear.weight = torch.tensor(np.full((6, 4), 0.3, np.float32), requires_grad=True)

    compiled, did = agree_with_eager(build, change=change)
    assert did[3] == "traced"


def test_a_parameter_given_a_new_array_is_read_anew():
    def build():
        state = model_state(batchnorm=False)
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        if k >= 3:
            weight = state["model"].layers[0].weight
            weight.data = torch.full((6, 4), 0.1 * k)

    compiled, did = agree_with_eager(build, change=change)
    assert did[3:] == ["compiled"] * 3                  # same shape and dtype: same code


def test_a_parameter_given_an_array_of_another_dtype_retraces():
    def build():
        state = model_state(batchnorm=False)
        model = state["model"]
        return (lambda x, y: F.cross_entropy(model(x.to(model.layers[0].weight.dtype)), y)), state

    def change(k, state):
        if k == 3:
            for layer in state["model"].layers[::2]:
                layer.weight.data = layer.weight.data.double()
                layer.bias.data = layer.bias.data.double()

    compiled, did = agree_with_eager(build, change=change)
    assert did[3] == "traced"


def test_requires_grad_toggled_retraces():
    def build():
        state = model_state(batchnorm=False)
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    def change(k, state):
        bias = state["model"].layers[0].bias
        if k in (2, 4):
            bias.requires_grad = k == 4
            bias.grad = None

    def grads_too(k):
        return batch(k)

    compiled, did = agree_with_eager(build, change=change, inputs=grads_too)
    assert did[2] == "traced" and did[4] == "compiled"


def test_a_parameter_passed_as_an_argument_gets_its_own_gradient():
    W = [torch.tensor(np.full((4, 3), 0.1 * k, np.float32), requires_grad=True) for k in range(3)]
    step = codegen.compile(lambda w, x, y: F.cross_entropy(x @ w, y))
    for k in range(6):
        w = W[k % 3]
        x, y = batch(k)
        for v in W:
            v.grad = None
        loss = step(w, x, y)
        expected = F.cross_entropy(x @ w.detach().requires_grad_(), y)
        assert loss.item() == expected.item()
        assert all(v.grad is None for v in W if v is not w)
        reference = w.detach().requires_grad_()
        F.cross_entropy(x @ reference, y).backward()
        assert np.array_equal(w.grad.numpy(), reference.grad.numpy())


def test_an_argument_computed_by_recorded_ops_runs_eagerly():
    w = torch.tensor(np.full((4, 3), 0.2, np.float32), requires_grad=True)
    step = codegen.compile(lambda h, y: F.cross_entropy(h, y))
    for k in range(3):
        x, y = batch(k)
        w.grad = None
        step(x @ w, y)
        reference = w.detach().requires_grad_()
        F.cross_entropy(x @ reference, y).backward()
        assert np.array_equal(w.grad.numpy(), reference.grad.numpy())
    assert step.last == "eager" and "argument" in step.explain()


# ---------------------------------------------------------------- arrays made outside the graph

def test_a_mask_computed_outside_the_graph_is_computed_again():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            mask = (x[:, :3] > 0).to(x.dtype)           # no graph: a comparison
            return F.cross_entropy(state["model"](x) * mask, y)
        return step, state

    def inputs(k):              # the same mask for the first calls, then another
        x, y = batch(k)
        return (x.abs() if k < 3 else x), y

    compiled, did = agree_with_eager(build, inputs=inputs)
    assert did == ["traced"] + ["compiled"] * 5
    assert "np.greater(" in list(compiled.programs.values())[-1].program.source


def test_a_mask_made_from_a_parameter_is_computed_again():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            w = state["model"].layers[0].weight
            keep = (w.detach() > 0).float()             # depends on the parameter's values
            return F.cross_entropy(state["model"](x) + (x @ (w * keep).T).sum(), y)
        return step, state

    def change(k, state):
        with torch.no_grad():
            state["model"].layers[0].weight.data[...] = 0.3 if k < 3 else -0.3

    compiled, did = agree_with_eager(build, change=change)
    assert did == ["traced"] + ["compiled"] * 5


def test_a_value_computed_with_detach_is_computed_again():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            return F.cross_entropy(h - h.detach().mean(), y) + (h * h.detach()).mean()
        return step, state

    compiled, did = agree_with_eager(build, inputs=lambda k: batch(k if k >= 3 else 0))
    assert did == ["traced"] + ["compiled"] * 5


@pytest.mark.parametrize("mask", ["computed", "argument"])
def test_indexing_with_a_boolean_mask_runs_eagerly(mask):
    """How many rows a mask picks sets the shapes the code is written for (and the n of a
    mean): a mask whose values can change cannot be part of the code."""
    def build():
        state = model_state(batchnorm=False)

        def step(x, y, keep):
            keep = y > 0 if mask == "computed" else keep
            return (state["model"](x)[keep] ** 2).mean()
        return step, state

    def inputs(k):
        x, y = batch(k if k >= 3 else 0)
        return x, y, y > 0

    compiled, did = agree_with_eager(build, inputs=inputs)
    assert did == ["eager"] * 6 and "boolean mask" in compiled.explain()


def test_constants_made_from_python_numbers_still_compile():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            weights = torch.tensor([1.0, 2.0, 0.5]).to(h.dtype)
            rows = torch.arange(len(y))
            logp = F.log_softmax(h * weights, 1)
            return -(logp[rows, y] * torch.ones(len(y), dtype=h.dtype)).mean() + 1e-3 * h.sum()
        return step, state

    compiled, did = agree_with_eager(build)
    assert did == ["traced"] + ["compiled"] * 5


def test_a_captured_array_is_read_at_every_call():
    def build():
        state = model_state(batchnorm=False)
        state["mask"] = torch.ones(3)

        def step(x, y):
            return F.cross_entropy(state["model"](x) * state["mask"], y)
        return step, state

    def change(k, state):
        if k == 3:
            state["mask"][1] = 0.0                      # in place: the code reads it anew
        if k == 4:
            state["mask"] = torch.full((3,), 2.0)       # a new tensor: traced again

    compiled, did = agree_with_eager(build, change=change)
    assert did == ["traced", "compiled", "compiled", "compiled", "traced", "compiled"]


# ---------------------------------------------------------------- random numbers

RANDOM = {
    "rand": lambda h: h * (torch.rand(*h.shape) > 0.3).to(h.dtype) / 0.7,
    "randn": lambda h: h + 0.1 * torch.randn(*h.shape).to(h.dtype),
    "randint": lambda h: h[torch.randint(0, h.shape[0], (h.shape[0],))],
    "multinomial": lambda h: h[torch.multinomial(torch.ones(h.shape[0]), h.shape[0],
                                                 replacement=True)],
    "numpy": lambda h: h * torch.tensor(np.random.rand(*h.shape) > 0.3).to(h.dtype),
}


@pytest.mark.parametrize("draw", list(RANDOM))
def test_random_numbers_drawn_in_the_step_run_eagerly(draw):
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            if draw in ("randint", "multinomial"):
                return F.cross_entropy(RANDOM[draw](torch.cat([h, h + 1], 1)).view(-1, 3),
                                       torch.cat([y, y]))
            return F.cross_entropy(RANDOM[draw](h), y)
        return step, state

    def change(k, state):       # the same numbers for the first calls, then others
        torch.manual_seed(k if k >= 3 else 0)
        np.random.seed(k if k >= 3 else 0)

    compiled, did = agree_with_eager(build, change=change)
    assert did == ["eager"] * 6 and "random" in compiled.explain()


# ---------------------------------------------------------------- state the step changes

def test_a_step_that_changes_its_own_state_runs_eagerly():
    class Counting(nn.Module):
        def __init__(self):
            self.inner = nn.Linear(4, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1                   # a warm-up: scaled from the fourth call on
            return self.inner(x) * (1 + 0.1 * max(0, self.calls - 3))

    def build():
        torch.manual_seed(0)
        state = {"model": Counting()}
        return (lambda x, y: F.cross_entropy(state["model"](x), y)), state

    compiled, did = agree_with_eager(build)
    assert did == ["eager"] * 6
    assert "changes what it reads (state['model'].calls changed from 5 to 6)" in compiled.explain()


def test_a_layer_that_keeps_its_output_runs_eagerly():
    class Keeping(nn.Module):
        def __init__(self):
            self.inner = nn.Linear(4, 3)

        def forward(self, x):
            self.out = self.inner(x).tanh()         # as the lecture's layers do, for plots
            return self.out

    torch.manual_seed(0)
    model = Keeping()
    step = codegen.compile(lambda x, y: F.cross_entropy(model(x), y))
    for k in range(3):
        x, y = batch(k)
        step(x, y)
        assert np.array_equal(model.out.numpy(), model.inner(x).tanh().numpy())
    assert step.last == "eager" and "out" in step.explain()


def test_an_update_inside_the_step_runs_eagerly():
    def build():
        state = model_state(batchnorm=False)
        state["offset"], state["step_size"] = torch.zeros(3), 0.0

        def step(x, y):
            state["offset"] += state["step_size"]       # in place, outside the graph
            return F.cross_entropy(state["model"](x) + state["offset"], y)
        return step, state

    def change(k, state):
        state["step_size"] = 0.0 if k < 3 else 0.5

    compiled, did = agree_with_eager(build, change=change)
    assert did[3:] == ["eager"] * 3 and "in place" in compiled.explain()


def test_an_array_made_in_a_way_code_cannot_repeat_runs_eagerly():
    def build():
        state = model_state(batchnorm=False)

        def step(x, y):
            h = state["model"](x)
            best = h.argmax(1)                          # not an op of the table
            return F.cross_entropy(h, y) + h[torch.arange(len(y)), best].mean()
        return step, state

    compiled, did = agree_with_eager(build, inputs=lambda k: batch(k if k >= 3 else 0))
    assert did == ["eager"] * 6 and "cannot repeat" in compiled.explain()


# ---------------------------------------------------------------- eager's checks of values

def lookup_state():
    torch.manual_seed(0)
    return {"emb": nn.Embedding(5, 4), "bn": nn.BatchNorm1d(4), "lin": nn.Linear(4, 5)}


# Steps on (x, i) that check the indices i, and whether eager checks them before its batch
# norm updates the running statistics (then a refused call changes nothing).
CHECKED = {
    "embedding": (lambda s, x, i: (s["lin"](s["bn"](x + s["emb"](i))) ** 2).mean(), True),
    "cross_entropy": (lambda s, x, i: F.cross_entropy(s["lin"](s["bn"](x)), i), False),
    "one_hot": (lambda s, x, i: (F.one_hot(i, 5) * s["lin"](s["bn"](x))).sum(), True),
    # indices cast in the step: the code checks them once computed, after its batch norm
    "embedding of a cast": (lambda s, x, i: ((s["bn"](x) + s["emb"](i.to(torch.int32).long()))
                                             ** 2).mean(), False),
    # no check of eager's own: numpy refuses 7 (and takes -1 from the end, as PyTorch does)
    "indexing": (lambda s, x, i: (s["bn"](x)[:, i] ** 2).mean(), False),
}


def state_arrays(state):
    return [a.copy() for m in state.values() for a in m.state_dict().values()]


def call(step, state, x, i):
    """(loss, gradients) of one call, or the exception it raised, with every parameter's
    .grad set to 0.5 before it (a gradient delivered would change them)."""
    leaves = [p for m in state.values() for p in m.parameters()]
    for p in leaves:
        p.grad = torch.full_like(p, 0.5)
    try:
        loss = step(x, i)
    except Exception as error:
        return error
    return loss.item(), [p.grad.numpy().copy() for p in leaves]


@pytest.mark.parametrize("bad", [[-1, 2, 0, 1, 2, 3, 0, 1], [7, 2, 0, 1, 2, 3, 0, 1]])
@pytest.mark.parametrize("use", CHECKED)
def test_compiled_code_refuses_what_eager_refuses(use, bad):
    """Indices out of range after the step was compiled on valid ones: the compiled call
    raises eager's error, delivers no gradient and leaves the state as eager does (or, if
    eager takes them, gives eager's results)."""
    fn, checked_first = CHECKED[use]
    ours, theirs = lookup_state(), lookup_state()
    step = codegen.compile(lambda x, i: fn(ours, x, i))

    def eager(x, i):
        loss = fn(theirs, x, i)
        loss.backward()
        return loss

    for k in range(4):
        x, i = batch(k, classes=4)
        if k == 3:
            i, before = torch.tensor(bad), state_arrays(ours)
        expected, got = call(eager, theirs, x, i), call(step, ours, x, i)
        assert k == 3 or not isinstance(expected, Exception), expected
        if isinstance(expected, Exception):
            assert type(got) is type(expected) and str(got) == str(expected), (got, expected)
            assert all(np.array_equal(p.grad.numpy(), np.full(p.shape, 0.5, p.dtype))
                       for m in ours.values() for p in m.parameters())
            assert step.last == "eager" and "the generated code raised" in step.explain()
            if checked_first:
                assert all(map(np.array_equal, state_arrays(ours), before))
        else:
            assert got[0] == expected[0] and all(map(np.array_equal, got[1], expected[1]))
            assert step.last == ("traced" if k == 0 else "compiled"), (k, step.explain())
        assert all(map(np.array_equal, state_arrays(ours), state_arrays(theirs)))
    assert use == "indexing" or isinstance(expected, IndexError)


def test_the_code_checks_its_arguments_first_and_standalone_code_does_not():
    emb = nn.Embedding(5, 3)
    step = codegen.compile(lambda i: emb(i).sum())
    i = torch.tensor([1, 2])
    step(i)
    emb.zero_grad()
    lines = step.source(i).splitlines()
    assert lines[2] == "    _index_range(i, 5, 'Embedding', 'indices')"
    assert "index_range" not in codegen.generate(emb(i).sum(), {"i": i}).source


def test_a_one_hot_whose_classes_are_found_from_the_values_runs_eagerly():
    """F.one_hot(y) with no num_classes: its shape comes from the largest index, so the
    code cannot build it again."""
    def build():
        state = model_state(batchnorm=False)
        return (lambda x, y: (F.one_hot(y)[:, -1:] * state["model"](x)).sum()), state

    def inputs(k):
        x, y = batch(k)
        return x, torch.tensor([0, 1] * 4) if k % 2 else y

    compiled, did = agree_with_eager(build, inputs=inputs)
    assert did == ["eager"] * 6 and "cannot repeat" in compiled.explain()


# ---------------------------------------------------------------- modes and the cache

def test_no_grad_and_anomaly_mode_run_eagerly():
    state = model_state()
    step = codegen.compile(lambda x, y: F.cross_entropy(state["model"](x), y))
    for k in range(3):
        step(*batch(k))
    assert step.last == "compiled"
    with torch.no_grad():
        with pytest.raises(RuntimeError):
            step(*batch(3))                         # as eager: no graph to go back through
    with torch.detect_anomaly():
        step(*batch(4))
    assert step.last == "eager" and "anomaly" in step.explain()


def test_the_program_cache_is_bounded_least_recently_used_first():
    state = model_state(batchnorm=False)
    step = codegen.compile(lambda x, y: F.cross_entropy(state["model"](x), y),
                           max_programs=3)
    for n in (2, 3, 4, 5, 2):
        step(*batch(0, n=n))
        step(*batch(1, n=n))
    assert len(step.programs) == 3
    step(*batch(2, n=3))                            # evicted by 5: traced again
    assert step.last == "traced"
    step(*batch(2, n=2))                            # used recently: kept
    assert step.last == "compiled"
    with pytest.raises(ValueError, match="max_programs"):
        codegen.compile(lambda x: x, max_programs=0)



# ---------------------------------------------------------------- docs/codegen.md

DOC = (Path(__file__).parent.parent / "docs" / "codegen.md").read_text()
CHECKS = DOC[DOC.index("## What the compiled step checks"):DOC.index("## Measurements")]


def test_the_example_in_the_docs_prints_what_they_show(capsys):
    code, shown = re.findall(r"```(?:python|text)\n(.*?)```", CHECKS, re.S)[:2]
    namespace = {"torch": torch, "nn": nn, "F": F, "codegen": codegen, "np": np}
    exec(compile(code, "example", "exec"), namespace)
    assert capsys.readouterr().out == shown


def documented(heading):
    """(first column, explain() text) of each row of the table under `heading`."""
    table = CHECKS[CHECKS.index(heading):]
    table = table[table.index("|---"):]
    rows = table[:table.index("\n\n")].splitlines()[1:]
    return [(row.split(" | ")[0].strip("| "), re.search(r"`(ran .*)` \|$", row)[1])
            for row in rows]


def explain_matches(explained, documented_text):
    pattern = re.escape(documented_text).replace(re.escape("..."), ".*")
    assert re.fullmatch(pattern, explained), (explained, documented_text)


def linear_step(**names):
    """A step on a small model, with `names` as globals of its own (for the messages)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    space = {"F": F, "torch": torch, "model": model, **names}
    return model, space


def run_twice(step, model, change=None, calls=2, zero=True, arguments=None):
    for k in range(calls):
        if change is not None and k == calls - 1:
            change()
        if zero:
            model.zero_grad()
        step(*(arguments or batch(0)))
    return step.explain()


def retraced(change):
    """explain() after a change of the documented kind, to a step that compiled."""
    model, space = linear_step(scale=1.0)
    step = codegen.compile(eval("lambda x, y: F.cross_entropy(model(x.to(model.layers[0].weight"
                                ".dtype)) * scale, y)", space))
    if change == "new shapes or dtypes of the arguments":
        step(*batch(0))
        return run_twice(step, model, arguments=batch(1, n=5), calls=1)
    if change == "a program dropped from the cache is needed again":
        for n in [*range(2, 11), 2]:                    # nine shapes, then the first
            model.zero_grad()
            step(*batch(0, n=n))
        return step.explain()
    act = {
        "a number the step reads (closure, global, attribute, default)":
            lambda: space.update(scale=2.5),
        "`model.eval()`, `model.train()`": model.eval,
        "a parameter replaced (`layer.weight = new_tensor`)":
            lambda: setattr(model.layers[0], "weight", torch.randn(6, 4, requires_grad=True)),
        "`requires_grad` turned off (or on)": lambda: model.layers[0].bias.requires_grad_(False),
        "a parameter's array replaced by one of another dtype":
            lambda: [setattr(p, "data", p.data.double()) for p in model.parameters()],
    }.get(change)
    if act is not None:
        return run_twice(step, model, change=act, calls=3)
    assert change.startswith("gradients not zeroed")
    step(*batch(0))
    return run_twice(step, model, zero=False, calls=1)


def ran_eagerly(cause):
    """explain() after a call of a step of the documented kind."""
    model, space = linear_step(calls={"n": 0}, offset=torch.zeros(3),
                               words=["w"] * 5000, np=np, emb=nn.Embedding(3, 3))
    bodies = {
        "a tensor's value": "F.cross_entropy(model(x) * x.sum().item(), y)",
        "random numbers drawn": "F.cross_entropy(model(x) + torch.randn(3), y)",
        "an array the graph reads": "F.cross_entropy(model(x) + model(x)[torch.arange(8), "
                                    "model(x).argmax(1)].view(8, 1), y)",
        "indexing with a boolean mask": "(model(x)[y > 0] ** 2).mean()",
        "the step changes what it reads": "[calls.update(n=calls['n'] + 1), "
                                          "F.cross_entropy(model(x), y)][1]",
        "the step changes an array": "[offset.__iadd__(1.0), F.cross_entropy(model(x) + offset, "
                                     "y)][1]",
        "a check of values": "F.cross_entropy(model(x) + emb([0, 1, 2, 0, 1, 2, 0, 1]), y)",
        "the step reaches a container": "F.cross_entropy(model(x), y) + 0 * len(words)",
        "a tensor that requires grad": "F.cross_entropy(model(x) * torch.ones(3, "
                                       "requires_grad=True), y)",
    }
    for start, body in bodies.items():
        if cause.startswith(start):
            step = codegen.compile(eval(f"lambda x, y: {body}", space))
            return run_twice(step, model, calls=1)
    if cause.startswith("an argument computed"):
        step = codegen.compile(lambda h, y: F.cross_entropy(h, y))
        x, y = batch(0)
        step(model(x), y)
        return step.explain()
    if cause.startswith("what the step reads changes"):
        scale = {"value": 1.0}
        step = codegen.compile(lambda x, y: F.cross_entropy(model(x) * scale["value"], y))
        for k in range(9):
            scale["value"] = float(k + 1)
            model.zero_grad()
            step(*batch(0))
        return step.explain().replace("scale['value']", "scale")
    if cause.startswith("a value eager refuses"):
        step = codegen.compile(lambda x, y: F.cross_entropy(model(x), y))
        run_twice(step, model)
        x, y = batch(1)
        y.data[0] = -1
        model.zero_grad()
        with pytest.raises(IndexError):
            step(x, y)
        return step.explain()
    if cause.startswith("called inside"):
        step = codegen.compile(lambda x, y: F.cross_entropy(model(x), y))
        with torch.detect_anomaly():
            step(*batch(0))
        return step.explain()
    assert cause.startswith("the code's first run disagrees")
    step = codegen.compile(lambda x, y: F.cross_entropy(model(x), y))
    step(*batch(0))
    program = next(iter(step.programs.values())).program
    right = program.function
    program.function = lambda *arrays: [a + 1 for a in right(*arrays)]
    return run_twice(step, model, calls=1)


def refusals():
    """(step body, bad indices, exception name, message) of each row of the table of
    eager's checks."""
    table = CHECKS[CHECKS.index("### Eager's checks and errors"):]
    table = table[table.index("|---"):]
    rows = table[:table.index("\n\n")].splitlines()[1:]
    return [re.fullmatch(r"\| `([^`]*)`.* \| `(\[.*\])` \| `(\w+): (.*)` \|", row).groups()
            for row in rows]


@pytest.mark.parametrize("body, bad, kind, message", refusals())
def test_the_checks_of_values_are_as_documented(body, bad, kind, message):
    torch.manual_seed(0)
    space = {"F": F, "emb": nn.Embedding(5, 3), "W": torch.randn(3, 5, requires_grad=True),
             "C": torch.randn(5, 3, requires_grad=True), "x": torch.randn(2, 3)}
    leaves = [space["emb"].weight, space["W"], space["C"]]
    step = codegen.compile(eval(f"lambda i: {body}", space))
    for _ in range(3):
        for p in leaves:
            p.grad = None
        step(torch.tensor([1, 2]))
    assert step.last == "compiled"
    for p in leaves:
        p.grad = None
    with pytest.raises(Exception) as raised:
        step(torch.tensor(eval(bad)))
    assert type(raised.value).__name__ == kind and str(raised.value) == message
    assert "the generated code raised" in step.explain()
    assert all(p.grad is None for p in leaves)


@pytest.mark.parametrize("change, text", documented("### What traces again"))
def test_what_traces_again_is_as_documented(change, text):
    explain_matches(retraced(change), text)


@pytest.mark.parametrize("cause, text", documented("### What runs eagerly"))
def test_what_runs_eagerly_is_as_documented(cause, text):
    explain_matches(ran_eagerly(cause), text)


def test_the_check_of_the_lecture_step_reaches_what_the_docs_say():
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    from lecture_step import forward, make_params
    import tensorgrad
    P = [torch.tensor(v, requires_grad=True) for v in make_params(27, 10, 3, 200).values()]
    from tensorgrad.codegen.guards import State
    state = State(lambda Xb, Yb: forward(tensorgrad, P, Xb, Yb), batch(0), ["Xb", "Yb"])
    assert "(18 objects)" in CHECKS and len(state.paths) == 18


def test_ignored_targets_after_a_trace_without_any_give_eagers_loss_and_gradients():
    """cross_entropy(ignore_index=-1) takes the fused op alone when no target is ignored:
    code traced on such a batch must not refuse (or misread) a later batch with ignored
    targets, but give eager's loss and gradients."""
    rng = np.random.default_rng(5)
    W = torch.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    compiled = codegen.compile(lambda x, y: F.cross_entropy(x @ W, y, ignore_index=-1))
    x1, y1 = torch.tensor(rng.standard_normal((6, 4))), torch.tensor([0, 1, 2, 3, 4, 0])
    for _ in range(3):
        W.grad = None
        compiled(x1, y1)
    assert compiled.last == "compiled"
    x2, y2 = torch.tensor(rng.standard_normal((6, 4))), torch.tensor([0, -1, 2, -1, 4, 0])
    W.grad = None
    loss = compiled(x2, y2)
    grad = W.grad.numpy().copy()
    W.grad = None
    eager = F.cross_entropy(x2 @ W, y2, ignore_index=-1)
    eager.backward()
    assert loss.item() == eager.item()
    assert np.array_equal(grad, W.grad.numpy())
