"""In-place ops on tensors that have views, and the version counter's refusals.

Views: a tensor `b` (in the graph, `x * 1`; or plain data), a view `v` of it made by one of
PyTorch's view ops (or a copy, for contrast), then an in-place op on `b` or on `v`, then
both read, and the gradients of x (and of the operand) compared. In PyTorch the view and
its base share memory: a change through one shows in the other, in values and in the graph.

Versions: arrays a gradient reads (saved inputs and outputs, index tensors, masks,
parameters) changed between forward and backward, by in-place ops, optimizers,
`load_state_dict` or writes through `.numpy()`: PyTorch refuses at backward (or at
`.numpy()`), and so must tensorgrad, or compute the gradient of what the forward computed.
"""
import itertools

import numpy as np

from .harness import Case, backprop, upstream

X = np.arange(12.0).reshape(3, 4) / 4 - 1

VIEWS = {
    "b.view(12)": lambda b: b.view(12), "b.reshape(4, 3)": lambda b: b.reshape(4, 3),
    "b[1]": lambda b: b[1], "b[:, 1:3]": lambda b: b[:, 1:3], "b[::2]": lambda b: b[::2],
    "b.T": lambda b: b.T, "b.transpose(0, 1)": lambda b: b.transpose(0, 1),
    "b.detach()": lambda b: b.detach(), "b.unsqueeze(0)": lambda b: b.unsqueeze(0),
    "b.flatten()": lambda b: b.flatten(), "b[None]": lambda b: b[None],
    "b[...]": lambda b: b[...], "b.permute(1, 0)": lambda b: b.permute(1, 0),
    "b.expand(2, 3, 4)": lambda b: b.expand(2, 3, 4),
    "b[[0, 2]] (a copy)": lambda b: b[[0, 2]],
}
INPLACE = {
    "+= 1": lambda t, w: t.__iadd__(1), "*= 2": lambda t, w: t.__imul__(2),
    "/= 2": lambda t, w: t.__itruediv__(2), "-= w": lambda t, w: t.__isub__(w),
    "[0] = 5": lambda t, w: t.__setitem__(0, 5.0), "[0] = w": lambda t, w: t.__setitem__(0, w),
    ".zero_()": lambda t, w: t.zero_(),
}


def view_program(view, op, target, mode):
    """b = x * 1 ('graph'), or plain data ('plain'), or x * 1 changed under no_grad
    ('no_grad'); v = view(b); op on b or v; read both, backpropagate through both."""
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        w = lib.tensor(0.75, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(X) if mode == "plain" else x * 1
        v = VIEWS[view](b)
        if mode == "no_grad":
            with lib.no_grad():
                INPLACE[op](b if target == "base" else v, w)
        else:
            INPLACE[op](b if target == "base" else v, w)
        out = {"b": b.clone(), "v": v.clone()}
        if b.requires_grad or v.requires_grad:
            loss = ((b * lib.tensor(upstream(tuple(b.shape), "float64"))).sum()
                    + (v * lib.tensor(upstream(tuple(v.shape), "float64"))).sum())
            loss.backward()
        out |= {"x.grad": x.grad, "w.grad": w.grad}
        return out
    return run


def view_cases():
    found = []
    for view, op, target, mode in itertools.product(VIEWS, INPLACE, ["base", "view"],
                                                    ["graph", "plain", "no_grad"]):
        if mode == "no_grad" and op.endswith("w"):
            continue                    # w's gradient is not recorded under no_grad anyway
        name = "b" if target == "base" else "v"
        change = ("with no_grad(): " if mode == "no_grad" else "") + (
            f"{name}{op}" if op[0] in "[." else f"{name} {op}")
        source = "tensor(X)" if mode == "plain" else "x * 1"
        found.append(Case(f"views/{mode}: v = {view}; {change}",
                          view_program(view, op, target, mode),
                          f"b = {source}; v = {view}; {change}"))
    return found


# ---------------------------------------------------------------- versions

def grads_of(*tensors):
    return [t.grad for t in tensors]


def index_changed(lib):
    C = lib.tensor(np.arange(10.0).reshape(5, 2), requires_grad=True)
    idx = lib.tensor([0, 1])
    loss = (C[idx] * lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)).sum()
    idx[0] = 3
    loss.backward()
    return grads_of(C)


def index_changed_2d(lib):
    C = lib.tensor(np.arange(10.0).reshape(5, 2), requires_grad=True)
    idx = lib.tensor([[0, 1], [2, 2]])
    loss = (C[idx] ** 2).sum()
    idx[1, 0] = 4
    loss.backward()
    return grads_of(C)


def range_index_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    rows, cols = lib.tensor([0, 1, 2]), lib.tensor([3, 0, 1])
    loss = x[rows, cols].sum()
    cols[0] = 2
    loss.backward()
    return grads_of(x)


def mask_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    mask = lib.tensor([True, False, True])
    loss = (x[mask] * 2).sum()
    mask[0] = False
    loss.backward()
    return grads_of(x)


def mask_2d_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    mask = x.detach() > 0
    loss = (x[mask] ** 2).sum()
    mask[...] = True
    loss.backward()
    return grads_of(x)


def setitem_index_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    v = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    idx = lib.tensor([0, 2])
    y = x * 1
    y[idx, 1] = v
    loss = (y * y).sum()
    idx[0] = 1
    loss.backward()
    return grads_of(x, v)


def list_index_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    rows = [0, 2]
    loss = (x[rows] ** 2).sum()
    rows[0] = 1                          # a Python list: copied when indexing, safe
    loss.backward()
    return grads_of(x)


def from_numpy_index_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    array = np.array([0, 2])
    loss = (x[lib.from_numpy(array)] ** 2).sum()
    array[0] = 1                         # a numpy write: no version counter sees it
    loss.backward()
    return grads_of(x)


def embedding_index_changed(lib):
    emb = lib.nn.Embedding(5, 2)
    with lib.no_grad():
        emb.weight[...] = lib.tensor(np.arange(10.0).reshape(5, 2), dtype=lib.float32)
    idx = lib.tensor([1, 1, 4])
    loss = (emb(idx) ** 2).sum()
    idx[0] = 0
    loss.backward()
    return grads_of(emb.weight)


def cross_entropy_target_changed(lib):
    logits = lib.tensor(X, requires_grad=True)
    target = lib.tensor([0, 1, 3])
    loss = lib.nn.functional.cross_entropy(logits, target)
    target[0] = 2
    loss.backward()
    return [loss, logits.grad]


def cross_entropy_target_unchanged(torch):
    logits = torch.tensor(X, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3]))
    loss.backward()
    return [loss, logits.grad]


def optimizer_step(name, **kwargs):
    def run(lib):
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        opt = getattr(lib.optim, name)([w], lr=0.5, **kwargs)
        loss = (w * w).sum()
        w.grad = lib.ones(3, dtype=lib.float64)
        opt.step()
        opt.zero_grad()
        loss.backward()
        return grads_of(w)
    return run


def load_state_dict_between(decay):
    """Linear's forward, then load_state_dict, then backward. With `decay`, the loss also
    has (weight * weight).sum(), whose backward reads the weight."""
    def run(lib):
        model = lib.nn.Linear(3, 2)
        with lib.no_grad():
            model.weight[...] = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3),
                                           dtype=lib.float32)
            model.bias[...] = lib.tensor([0.5, -0.5], dtype=lib.float32)
        x = lib.tensor(np.arange(12.0).reshape(4, 3) / 6, dtype=lib.float32)
        loss = (model(x) ** 2).sum()
        if decay:
            loss = loss + (model.weight * model.weight).sum()
        model.load_state_dict({k: v * 0 + 1 for k, v in model.state_dict().items()})
        loss.backward()
        return grads_of(model.weight, model.bias)
    return run


def numpy_written(lib):
    """A write through .numpy() of a tensor that requires grad must not reach its gradient:
    PyTorch refuses .numpy(), tensorgrad's read-only view refuses the write."""
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    loss = (w * w).sum()
    try:
        w.numpy()[0] = 5.0
    except (RuntimeError, ValueError):
        return "refused"
    loss.backward()
    return grads_of(w)


def numpy_of_result(lib):
    """tensorgrad's .numpy() of a tensor that requires grad: its values, read-only."""
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    array = w.exp().numpy()
    return array, array.flags.writeable


def numpy_of_result_reference(torch):
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    return w.exp().detach().numpy(), False


def detach_numpy_written(lib):
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    loss = (w * w).sum()
    w.detach().numpy()[0] = 5.0          # outside every version counter, in both
    loss.backward()
    return [w, w.grad]


def data_written(lib):
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    loss = (w * w).sum()
    w.data[0] = 5.0                      # `.data` is untracked, on purpose, in both
    loss.backward()
    return [w, w.grad]


def leaf_changed_under_no_grad(lib):
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    loss = (w * w).sum()
    with lib.no_grad():
        w -= 0.1
    loss.backward()
    return grads_of(w)


def saved_changed_under_no_grad(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x.tanh()
    loss = (y * y).sum()
    with lib.no_grad():
        y += 1
    loss.backward()
    return grads_of(x)


def view_of_saved_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x * 1
    loss = (y * y).sum()
    with lib.no_grad():
        y[0] += 1
    loss.backward()
    return grads_of(x)


def detached_saved_changed(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x * 2
    loss = (y * y).sum()
    y.detach().zero_()
    loss.backward()
    return grads_of(x)


def output_changed_in_graph(unary):
    """`y = x.<unary>(); y += 1; loss(y)`: the op saved its output, then the graph changed
    it. PyTorch refuses; tensorgrad gives the changed tensor a new node and the op keeps
    the value it made (docs/engine.md, section 2), which is the gradient of the program."""
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        y = getattr(x, unary)()
        y += 1
        backprop(lib, y)
        return [y, x.grad]

    def reference(torch):
        x = torch.tensor(X, requires_grad=True)
        y = getattr(x, unary)() + 1
        backprop(torch, y)
        return [y, x.grad]
    return run, reference


def input_changed_in_graph(lib):
    x = lib.tensor(X, requires_grad=True)
    y = x * 2
    z = y * y
    y *= 3
    out = z + y
    backprop(lib, out)
    return [out, x.grad]


def input_changed_in_graph_reference(torch):
    x = torch.tensor(X, requires_grad=True)
    y = x * 2
    out = y * y + y * 3
    backprop(torch, out)
    return [out, x.grad]


def twice_after_step(lib):
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    loss = (w ** 3).sum()
    loss.backward(retain_graph=True)
    opt.step()
    loss.backward()
    return grads_of(w)


def numpy_shares(lib):
    t = lib.tensor([1.0, 2.0, 3.0])
    a = t.numpy()
    a[0] = 9.0
    return t


def from_numpy_shares(lib):
    a = np.array([1.0, 2.0, 3.0])
    t = lib.from_numpy(a)
    a[1] = 7.0
    return t


def tensor_copies(lib):
    a = np.array([1.0, 2.0, 3.0])
    t = lib.tensor(a)
    a[1] = 7.0
    return t


EXTENSION = ("an in-place op on a tensor in the graph gives it a new node; ops that read "
             "the old value keep it (docs/engine.md, section 2), so the gradient is the "
             "program's; PyTorch refuses")


def version_cases():
    found = [
        Case("versions/C[idx]; idx[0] = 3; backward", index_changed),
        Case("versions/C[idx 2-D]; idx[1, 0] = 4; backward", index_changed_2d),
        Case("versions/x[rows, cols]; cols[0] = 2; backward", range_index_changed),
        Case("versions/x[mask]; mask[0] = False; backward", mask_changed),
        Case("versions/x[x > 0]; mask[...] = True; backward", mask_2d_changed),
        Case("versions/y[idx, 1] = v; idx[0] = 1; backward", setitem_index_changed),
        Case("versions/x[list]; list[0] = 1; backward", list_index_changed),
        Case("versions/x[from_numpy(a)]; a[0] = 1; backward", from_numpy_index_changed),
        Case("versions/Embedding(idx); idx[0] = 0; backward", embedding_index_changed),
        Case("versions/cross_entropy(logits, y); y[0] = 2; backward",
             cross_entropy_target_changed, reference=cross_entropy_target_unchanged,
             note="tensorgrad copies the targets into a one-hot at forward, so a later "
                  "change cannot reach the gradient: the gradient of the loss computed is "
                  "right; PyTorch refuses instead, which is also safe"),
        Case("versions/SGD.step() between forward and backward", optimizer_step("SGD")),
        Case("versions/SGD(momentum).step() between forward and backward",
             optimizer_step("SGD", momentum=0.9)),
        Case("versions/Adam.step() between forward and backward", optimizer_step("Adam")),
        Case("versions/load_state_dict between forward and backward",
             load_state_dict_between(decay=False)),
        Case("versions/load_state_dict between forward and backward (weight read)",
             load_state_dict_between(decay=True)),
        Case("versions/w.numpy()[0] = 5 (w requires grad); backward", numpy_written),
        Case("versions/y.numpy() (y requires grad)", numpy_of_result,
             reference=numpy_of_result_reference,
             extension="docs/engine.md: .numpy() of a tensor that requires grad is a "
                       "read-only view, where PyTorch refuses"),
        Case("versions/w.detach().numpy()[0] = 5; backward", detach_numpy_written),
        Case("versions/w.data[0] = 5; backward", data_written),
        Case("versions/with no_grad(): w -= 0.1; backward", leaf_changed_under_no_grad),
        Case("versions/with no_grad(): y += 1 (y saved by mul); backward",
             saved_changed_under_no_grad),
        Case("versions/with no_grad(): y[0] += 1 (y saved); backward", view_of_saved_changed),
        Case("versions/y.detach().zero_() (y saved); backward", detached_saved_changed),
        Case("versions/backward twice around SGD.step()", twice_after_step),
        Case("versions/t.numpy() shares memory", numpy_shares),
        Case("versions/from_numpy shares memory", from_numpy_shares),
        Case("versions/tensor(array) copies", tensor_copies),
        Case("versions/y = x * 2; z = y * y; y *= 3 (in graph)", input_changed_in_graph,
             reference=input_changed_in_graph_reference, extension=EXTENSION),
    ]
    for unary in ["exp", "tanh", "sigmoid", "sqrt", "relu"]:
        run, reference = output_changed_in_graph(unary)
        found.append(Case(f"versions/y = x.{unary}(); y += 1 (in graph)", run,
                          reference=reference, extension=EXTENSION))
    return found


def cases():
    return view_cases() + version_cases()
