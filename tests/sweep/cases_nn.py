"""nn modules, nn.functional and optimizers, with ordinary and edge inputs, against
torch.nn and torch.optim.

Modules start from the same parameters in both libraries (copied in under no_grad), in
float32, PyTorch's default. Where tensorgrad documents a different convention (batchnorm
normalises with the Bessel-corrected variance and takes (N, L, C) inputs), the reference
is a PyTorch program written with that convention, and the case is marked an extension.
"""
import itertools

import numpy as np

from .harness import Case, backprop

RNG = np.random.default_rng(11)


def F(lib):
    return lib.nn.functional


def fill(lib, tensor, values):
    """Copy `values` into a parameter, outside the graph, in both libraries."""
    with lib.no_grad():
        tensor[...] = lib.tensor(np.asarray(values, dtype=np.float32))


def array(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- Linear

def linear(in_features, out_features, input_shape, bias, dtype="float32"):
    weight, b = array(out_features, in_features), array(out_features)
    x = array(*input_shape, dtype=dtype)

    def run(lib):
        model = lib.nn.Linear(in_features, out_features, bias=bias)
        fill(lib, model.weight, weight)
        if bias:
            fill(lib, model.bias, b)
        xt = lib.tensor(x, requires_grad=x.dtype.kind == "f")
        out = model(xt)
        backprop(lib, out)
        return {"out": out, "weight.grad": model.weight.grad,
                "bias.grad": model.bias.grad if bias else None,
                "x.grad": xt.grad if xt.requires_grad else None}
    return run


def linear_cases():
    found = []
    for (i, o), shape, bias in itertools.product([(3, 2), (1, 4), (5, 1)],
                                                 ["(4, in)", "(in,)", "(2, 3, in)"],
                                                 [True, False]):
        input_shape = {"(4, in)": (4, i), "(in,)": (i,), "(2, 3, in)": (2, 3, i)}[shape]
        found.append(Case(f"nn/Linear({i}, {o}, bias={bias}) on {shape}",
                          linear(i, o, input_shape, bias)))
    found += [
        Case("nn/Linear(3, 2) on (4, 5)", linear(3, 2, (4, 5), True)),
        Case("nn/Linear(3, 2) on float64 input", linear(3, 2, (4, 3), True, "float64")),
        Case("nn/Linear(3, 2) on int64 input", linear(3, 2, (4, 3), True, "int64")),
    ]
    return found


# ---------------------------------------------------------------- Embedding

EMBEDDING = np.arange(15, dtype=np.float32).reshape(5, 3) / 7


def embedding(index):
    def run(lib):
        emb = lib.nn.Embedding(5, 3)
        fill(lib, emb.weight, EMBEDDING)
        out = emb(index(lib))
        backprop(lib, out)
        return {"out": out, "weight.grad": emb.weight.grad}
    return run


EMBEDDING_INDICES = {
    "tensor([0, 2, 2])": lambda lib: lib.tensor([0, 2, 2]),
    "tensor([[0, 4], [4, 1]])": lambda lib: lib.tensor([[0, 4], [4, 1]]),
    "tensor(3) (0-d)": lambda lib: lib.tensor(3),
    "tensor([-1])": lambda lib: lib.tensor([-1]),
    "tensor([0, -5])": lambda lib: lib.tensor([0, -5]),
    "tensor([5])": lambda lib: lib.tensor([5]),
    "tensor([1.0])": lambda lib: lib.tensor([1.0]),
    "empty int64": lambda lib: lib.zeros(0, dtype=lib.int64),
    "int32 tensor([1, 2])": lambda lib: lib.tensor(np.array([1, 2], dtype=np.int32)),
    "bool tensor([True, False, True, False, True])":
        lambda lib: lib.tensor([True, False, True, False, True]),
}


# ---------------------------------------------------------------- BatchNorm1d

BESSEL = ("tensorgrad's BatchNorm1d normalises with the Bessel-corrected batch variance "
          "(divided by n - 1, as the lecture; docs: nn.BatchNorm1d's docstring and "
          "functional.batch_norm); PyTorch divides by n. The reference is PyTorch "
          "computing tensorgrad's documented formula")


def batchnorm(x, train_steps, evaluate, momentum=0.1, column_constant=False):
    """BatchNorm1d(C): `train_steps` forward passes in training mode on x (and 2x), then
    one in eval mode if `evaluate`; the outputs, running statistics and gradients."""
    x = x.copy()
    if column_constant:
        x[:, 0] = 1.5
    weight, bias = array(x.shape[-1]), array(x.shape[-1])

    def run(lib):
        bn = lib.nn.BatchNorm1d(x.shape[-1], momentum=momentum)
        fill(lib, bn.weight, weight)
        fill(lib, bn.bias, bias)
        xt = lib.tensor(x, requires_grad=True)
        outs = []
        for k in range(train_steps):
            out = bn(xt * (k + 1))
            outs.append(out)
        backprop(lib, outs[-1])
        result = {"train": outs, "running_mean": bn.running_mean,
                  "running_var": bn.running_var, "x.grad": xt.grad,
                  "weight.grad": bn.weight.grad, "bias.grad": bn.bias.grad}
        if evaluate:
            bn.eval()
            result["eval"] = bn(xt.detach())
        return result

    def reference(torch):
        """tensorgrad's documented batchnorm, written in PyTorch."""
        w = torch.tensor(weight, requires_grad=True)
        b = torch.tensor(bias, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        running_mean = torch.zeros(x.shape[-1])
        running_var = torch.ones(x.shape[-1])
        outs = []
        for k in range(train_steps):
            h = xt * (k + 1)
            mean = h.mean(0, keepdim=True)
            var = h.var(0, keepdim=True, unbiased=True)
            outs.append((h - mean) / (var + 1e-5).sqrt() * w + b)
            with torch.no_grad():
                running_mean = (1 - momentum) * running_mean + momentum * mean[0]
                running_var = (1 - momentum) * running_var + momentum * var[0]
        backprop(torch, outs[-1])
        result = {"train": outs, "running_mean": running_mean, "running_var": running_var,
                  "x.grad": xt.grad, "weight.grad": w.grad, "bias.grad": b.grad}
        if evaluate:
            result["eval"] = ((xt.detach() - running_mean) / (running_var + 1e-5).sqrt()
                              * w + b)
        return result
    return run, reference


def batchnorm_cases():
    found = []
    for n, steps, evaluate, constant in itertools.product([2, 8], [1, 2], [False, True],
                                                          [False, True]):
        run, reference = batchnorm(array(n, 3), steps, evaluate, column_constant=constant)
        name = (f"nn/BatchNorm1d(3) train x{steps}{' then eval' if evaluate else ''} on "
                f"({n}, 3){' constant column' if constant else ''}")
        found.append(Case(name, run, reference=reference, extension=BESSEL))
    run, reference = batchnorm(array(8, 3), 2, True, momentum=0.5)
    found.append(Case("nn/BatchNorm1d(3, momentum=0.5) train x2 then eval", run,
                      reference=reference, extension=BESSEL))

    x = array(4, 3)

    def eval_only(lib):
        bn = lib.nn.BatchNorm1d(3)
        bn.eval()
        xt = lib.tensor(x, requires_grad=True)
        out = bn(xt)
        backprop(lib, out)
        return {"out": out, "x.grad": xt.grad, "weight.grad": bn.weight.grad}

    def wrong_features(lib):
        return lib.nn.BatchNorm1d(4)(lib.tensor(x[:, :2]))

    def single_row(lib):
        return lib.nn.BatchNorm1d(3)(lib.tensor(x[:1]))

    found += [Case("nn/BatchNorm1d(3) eval at initial statistics", eval_only),
              Case("nn/BatchNorm1d(4) on (4, 2)", wrong_features),
              Case("nn/BatchNorm1d(3) train on one row", single_row)]
    return found


# ---------------------------------------------------------------- functional

def cross_entropy(logits, target, reduction="mean"):
    def run(lib):
        x = lib.tensor(logits, requires_grad=True)
        t = lib.tensor(target) if isinstance(target, np.ndarray) else target
        out = F(lib).cross_entropy(x, t, reduction=reduction)
        backprop(lib, out)
        return {"out": out, "x.grad": x.grad}
    return run


def cross_entropy_cases():
    found = []
    shapes = {"(3, 5)": (array(3, 5, dtype=np.float64), np.array([0, 4, 4])),
              "(1, 1)": (array(1, 1, dtype=np.float64), np.array([0])),
              "(4, 2)": (array(4, 2, dtype=np.float64), np.array([1, 1, 1, 1])),
              "(3, 5) float32": (array(3, 5), np.array([2, 0, 1]))}
    for (name, (logits, target)), reduction in itertools.product(shapes.items(),
                                                                ["mean", "sum", "none"]):
        found.append(Case(f"functional/cross_entropy {name} reduction={reduction}",
                          cross_entropy(logits, target, reduction)))
    logits = array(3, 5, dtype=np.float64)
    found += [
        Case("functional/cross_entropy (5,) logits, 0-d target",
             cross_entropy(logits[0], np.array(2))),
        Case("functional/cross_entropy (2, 5, 3) logits, (2, 3) target",
             cross_entropy(array(2, 5, 3, dtype=np.float64), np.array([[0, 1, 4], [2, 2, 3]]))),
        Case("functional/cross_entropy int32 target",
             cross_entropy(logits, np.array([0, 1, 2], dtype=np.int32))),
        Case("functional/cross_entropy float target (probabilities)",
             cross_entropy(logits, np.full((3, 5), 0.2))),
        Case("functional/cross_entropy target out of range", cross_entropy(logits,
                                                                          np.array([0, 5, 1]))),
        Case("functional/cross_entropy negative target", cross_entropy(logits,
                                                                       np.array([0, -1, 1]))),
        Case("functional/cross_entropy reduction='max'",
             cross_entropy(logits, np.array([0, 1, 2]), "max")),
        Case("functional/cross_entropy list target", cross_entropy(logits, [0, 1, 2])),
    ]
    return found


def one_hot(index, num_classes=-1):
    def run(lib):
        return F(lib).one_hot(index(lib), num_classes=num_classes)
    return run


ONE_HOT = {
    "tensor([0, 2, 1])": (lambda lib: lib.tensor([0, 2, 1]), -1),
    "tensor([0, 2, 1]), 5": (lambda lib: lib.tensor([0, 2, 1]), 5),
    "tensor([[0, 3], [1, 1]])": (lambda lib: lib.tensor([[0, 3], [1, 1]]), -1),
    "tensor(2) (0-d), 4": (lambda lib: lib.tensor(2), 4),
    "empty, 3": (lambda lib: lib.zeros(0, dtype=lib.int64), 3),
    "empty, -1": (lambda lib: lib.zeros(0, dtype=lib.int64), -1),
    "tensor([0, -1])": (lambda lib: lib.tensor([0, -1]), 3),
    "tensor([0, 3]), 2": (lambda lib: lib.tensor([0, 3]), 2),
    "tensor([0.0, 1.0])": (lambda lib: lib.tensor([0.0, 1.0]), 2),
    "int32 tensor([0, 1])": (lambda lib: lib.tensor(np.array([0, 1], dtype=np.int32)), 2),
    "tensor([0, 1]), 0": (lambda lib: lib.tensor([0, 1]), 0),
}


def softmax(name, shape, dim):
    x = array(*shape, dtype=np.float64)

    def run(lib):
        xt = lib.tensor(x, requires_grad=True)
        out = getattr(F(lib), name)(xt, dim=dim)
        backprop(lib, out)
        return {"out": out, "x.grad": xt.grad}
    return run


ELEMENTWISE = {
    "F.relu": lambda lib, x: F(lib).relu(x), "F.tanh": lambda lib, x: F(lib).tanh(x),
    "F.sigmoid": lambda lib, x: F(lib).sigmoid(x), "F.gelu": lambda lib, x: F(lib).gelu(x),
    "F.gelu(tanh)": lambda lib, x: F(lib).gelu(x, approximate="tanh"),
    "F.softplus": lambda lib, x: F(lib).softplus(x),
    "F.log_softmax(dim=-1)": lambda lib, x: F(lib).log_softmax(x, dim=-1),
}


def elementwise(fn, dtype):
    x = (np.linspace(-4, 4, 12).reshape(3, 4) + 0.1).astype(dtype)

    def run(lib):
        xt = lib.tensor(x, requires_grad=True)
        out = fn(lib, xt)
        backprop(lib, out)
        return {"out": out, "x.grad": xt.grad}
    return run


def functional_cases():
    found = cross_entropy_cases()
    found += [Case(f"functional/one_hot({name})", one_hot(*spec))
              for name, spec in ONE_HOT.items()]
    for name, shape, dim in itertools.product(["softmax", "log_softmax"],
                                              [(3, 4), (2, 3, 4)], [0, 1, -1, -2, 2, -3]):
        found.append(Case(f"functional/{name}({'x'.join(map(str, shape))}, dim={dim})",
                          softmax(name, shape, dim)))

    x = array(3, 4)

    def softmax_no_dim(lib):
        return F(lib).softmax(lib.tensor(x))

    found.append(Case("functional/softmax(x) without dim", softmax_no_dim))
    found += [Case(f"functional/{name} {dtype}", elementwise(fn, dtype))
              for (name, fn), dtype in itertools.product(ELEMENTWISE.items(),
                                                         ["float32", "float64"])]
    return found


# ---------------------------------------------------------------- LayerNorm and Dropout

def layer_norm(shape, normalized, affine=True, bias=True):
    dims = normalized if isinstance(normalized, tuple) else (normalized,)
    w, b, x = array(*dims), array(*dims), array(*shape)

    def run(lib):
        model = lib.nn.LayerNorm(normalized, elementwise_affine=affine, bias=bias)
        if affine:
            fill(lib, model.weight, w)
        if affine and bias:
            fill(lib, model.bias, b)
        xt = lib.tensor(x, requires_grad=True)
        out = model(xt)
        backprop(lib, out)
        return {"out": out, "x.grad": xt.grad,
                "weight.grad": model.weight.grad if affine else None,
                "bias.grad": model.bias.grad if affine and bias else None}
    return run


def layer_norm_cases():
    found = [Case(f"nn/LayerNorm({normalized}, affine={affine}, bias={bias}) on {shape}",
                  layer_norm(shape, normalized, affine, bias))
             for shape, normalized, affine, bias in [
                 ((4, 5, 8), 8, True, True), ((4, 5, 8), (5, 8), True, True),
                 ((3, 6), 6, True, False), ((2, 3, 4), 4, False, True), ((7,), 7, True, True),
                 ((2, 1), 1, True, True)]]

    def bad(shape, normalized):
        return lambda lib: lib.nn.LayerNorm(normalized)(lib.tensor(array(*shape)))

    found += [Case("nn/bad LayerNorm(8) on (4, 3, 16)", bad((4, 3, 16), 8)),
              Case("nn/bad LayerNorm((3, 8)) on (4, 8)", bad((4, 8), (3, 8)))]

    def dropout_eval(lib):
        model = lib.nn.Dropout(0.3)
        model.eval()
        xt = lib.tensor(X234, requires_grad=True)
        out = model(xt)
        backprop(lib, out)
        return {"out": out, "x.grad": xt.grad}

    found.append(Case("nn/Dropout(0.3) in eval mode", dropout_eval))
    found += [Case(f"nn/bad Dropout({p})", lambda lib, p=p: lib.nn.Dropout(p))
              for p in (-0.1, 1.5)]
    return found


# ---------------------------------------------------------------- Module API

X53, X234, X43 = array(5, 3), array(2, 3, 4), array(4, 3)


def sequential(lib):
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
    for name, p in model.named_parameters():
        fill(lib, p, np.linspace(-1, 1, p.numel()).reshape(tuple(p.shape)))
    out = model(lib.tensor(X53))
    backprop(lib, out)
    return {"out": out, "grads": [p.grad for p in model.parameters()]}


def parameter_names(lib):
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
    return [name for name, _ in model.named_parameters()]


def state_dict_keys(lib):
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4))
    return sorted(model.state_dict())


def custom_module_names(lib):
    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.nn.Linear(2, 2)
            self.norm = lib.nn.BatchNorm1d(2)

    return [name for name, _ in Block().named_parameters()]


def flatten_module(lib):
    x = lib.tensor(X234, requires_grad=True)
    out = lib.nn.Flatten()(x)
    backprop(lib, out)
    return {"out": out, "x.grad": x.grad}


def train_eval_flags(lib):
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4))
    model.eval()
    flags = [model.training, model[1].training]
    model.train()
    return flags + [model.training, model[1].training]


def zero_grad_none(lib):
    model = lib.nn.Linear(3, 2)
    model(lib.tensor(X43)).sum().backward()
    model.zero_grad()
    return [model.weight.grad, model.bias.grad]


MODULE_API = {
    "Sequential(Linear, Tanh, Linear) forward and backward": sequential,
    "Sequential named_parameters": parameter_names,
    "Sequential(Linear, BatchNorm1d) state_dict keys": state_dict_keys,
    "custom Module named_parameters": custom_module_names,
    "Flatten": flatten_module,
    "train/eval flags": train_eval_flags,
    "zero_grad sets None": zero_grad_none,
}


# ---------------------------------------------------------------- optimizers

def optimizer(name, steps=3, **kwargs):
    """`steps` steps of `name` on a quadratic of two float64 parameters; the parameters."""
    def run(lib):
        a = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([[1.0, -0.5], [0.25, 3.0]], dtype=lib.float64, requires_grad=True)
        opt = getattr(lib.optim, name)([a, b], **kwargs)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((a - 1) ** 2).sum() * 3 + (b * b * a[:2]).sum()
            loss.backward()
            opt.step()
        return [a, b]
    return run


def optimizer_cases():
    found = []
    for lr, momentum in itertools.product([0.1, 0.02], [0.0, 0.9]):
        found.append(Case(f"optim/SGD(lr={lr}, momentum={momentum}) x3",
                          optimizer("SGD", lr=lr, momentum=momentum)))
    for lr, betas, eps in itertools.product([1e-3, 0.1], [(0.9, 0.999), (0.5, 0.9)],
                                            [1e-8, 1e-3]):
        found.append(Case(f"optim/Adam(lr={lr}, betas={betas}, eps={eps}) x3",
                          optimizer("Adam", lr=lr, betas=betas, eps=eps)))
    found += [Case(f"optim/Adam(lr=0.05) x{n}", optimizer("Adam", steps=n, lr=0.05))
              for n in (1, 10)]
    for lr, weight_decay in itertools.product([1e-3, 0.1], [0.0, 0.01, 0.5]):
        found.append(Case(f"optim/AdamW(lr={lr}, weight_decay={weight_decay}) x3",
                          optimizer("AdamW", lr=lr, weight_decay=weight_decay)))

    def bad(name, params, **kwargs):
        def run(lib):
            w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
            opt = getattr(lib.optim, name)(params(lib, w), **kwargs)
            (w * w).sum().backward()
            opt.step()
            return w
        return run

    listed = lambda lib, w: [w]                                     # noqa: E731
    bad_cases = {
        "SGD(lr=-0.1)": bad("SGD", listed, lr=-0.1),
        "SGD(momentum=-0.5)": bad("SGD", listed, lr=0.1, momentum=-0.5),
        "SGD(lr='0.1')": bad("SGD", listed, lr="0.1"),
        "Adam(lr=-1e-3)": bad("Adam", listed, lr=-1e-3),
        "Adam(betas=(1.0, 0.999))": bad("Adam", listed, betas=(1.0, 0.999)),
        "Adam(betas=(0.9, 1.5))": bad("Adam", listed, betas=(0.9, 1.5)),
        "Adam(betas=(-0.1, 0.999))": bad("Adam", listed, betas=(-0.1, 0.999)),
        "Adam(eps=-1e-8)": bad("Adam", listed, eps=-1e-8),
        "AdamW(betas=(1.0, 0.999))": bad("AdamW", listed, betas=(1.0, 0.999)),
        "AdamW(weight_decay=-0.1)": bad("AdamW", listed, weight_decay=-0.1),
        "SGD([w, w])": bad("SGD", lambda lib, w: [w, w], lr=0.1),
        "Adam([w, w])": bad("Adam", lambda lib, w: [w, w], lr=0.1),
        "SGD([w * 2]) (not a leaf)": bad("SGD", lambda lib, w: [w * 2], lr=0.1),
        "SGD(w) (a tensor, not a list)": bad("SGD", lambda lib, w: w, lr=0.1),
        "SGD([])": bad("SGD", lambda lib, w: [], lr=0.1),
        "SGD([int tensor])": bad("SGD", lambda lib, w: [w, lib.tensor([1, 2])], lr=0.1),
    }
    found += [Case(f"optim/bad {name}", fn) for name, fn in bad_cases.items()]
    return found


def cases():
    global RNG
    RNG = np.random.default_rng(11)        # the same arrays however often cases() is called
    found = linear_cases()
    found += [Case(f"nn/Embedding(5, 3)({name})", embedding(index))
              for name, index in EMBEDDING_INDICES.items()]
    found += batchnorm_cases()
    found += layer_norm_cases()
    found += functional_cases()
    found += [Case(f"nn/{name}", fn) for name, fn in MODULE_API.items()]
    found += optimizer_cases()
    return found
