"""Bad input to tensor methods, creation functions and layers: PyTorch refuses each (or, for
a few, answers), and tensorgrad must refuse with one clear line naming the op and the
argument, not a numpy or Python traceback from inside, and never compute something
silently. (Random results are compared by dtype and shape only.)
"""
import numpy as np

from .harness import Case

X = np.arange(12.0).reshape(3, 4) / 4


def x(lib):
    return lib.tensor(X, requires_grad=True)


BAD = {   # code: program
    "zeros(-1)": lambda lib: lib.zeros(-1),
    "zeros(2.5)": lambda lib: lib.zeros(2.5),
    "ones((2, -3))": lambda lib: lib.ones((2, -3)),
    "randn(-2)": lambda lib: lib.randn(-2),
    "full((2,), 'a')": lambda lib: lib.full((2,), "a"),
    "arange(0, 10, 0)": lambda lib: lib.arange(0, 10, 0),
    "arange(5, 0)": lambda lib: lib.arange(5, 0),
    "tensor([[1, 2], [3]])": lambda lib: lib.tensor([[1, 2], [3]]),
    "tensor(None)": lambda lib: lib.tensor(None),
    "tensor([1, 2], dtype='float16x')": lambda lib: lib.tensor([1, 2], dtype="float16x"),
    "randint(5, (2, 2), dtype=float64).dtype": lambda lib: lib.randint(
        5, (2, 2), dtype=lib.float64).dtype,
    "randint(0, 5, (2.5,))": lambda lib: lib.randint(0, 5, (2.5,)),
    "multinomial(tensor([[0., 0.]]), 1)": lambda lib: lib.multinomial(
        lib.tensor([[0.0, 0.0]]), 1),
    "multinomial(tensor([1., 2.]), 0)": lambda lib: lib.multinomial(lib.tensor([1.0, 2.0]), 0),
    "x.sum(dim=5)": lambda lib: x(lib).sum(dim=5),
    "x.sum(dim=1.5)": lambda lib: x(lib).sum(dim=1.5),
    "x.mean(dim=(0, 0))": lambda lib: x(lib).mean(dim=(0, 0)),
    "x.view(-1, -1)": lambda lib: x(lib).view(-1, -1),
    "x.view(5, -1)": lambda lib: x(lib).view(5, -1),
    "x.reshape(2.0, 6)": lambda lib: x(lib).reshape(2.0, 6),
    "x.permute(0)": lambda lib: x(lib).permute(0),
    "x.permute(0, 0)": lambda lib: x(lib).permute(0, 0),
    "x.transpose(0, 5)": lambda lib: x(lib).transpose(0, 5),
    "x.expand(5)": lambda lib: x(lib).expand(5),
    "x.expand(3, 5)": lambda lib: x(lib).expand(3, 5),
    "x.squeeze(5)": lambda lib: x(lib).squeeze(5),
    "x.unsqueeze(-5)": lambda lib: x(lib).unsqueeze(-5),
    "x.flatten(3)": lambda lib: x(lib).flatten(3),
    "x.flatten(1, 0)": lambda lib: x(lib).flatten(1, 0),
    "x.max(dim=5)": lambda lib: x(lib).max(dim=5),
    "x.argmax(dim=5)": lambda lib: x(lib).argmax(dim=5),
    "x.logsumexp(5)": lambda lib: x(lib).logsumexp(5),
    "x.var(dim=5)": lambda lib: x(lib).var(dim=5),
    "x.std(correction=-1)": lambda lib: x(lib).std(correction=-1),
    "x.var(unbiased=True, correction=1)": lambda lib: x(lib).var(unbiased=True, correction=1),
    "x @ 'a'": lambda lib: x(lib) @ "a",
    "x + [1, 2]": lambda lib: x(lib) + [1, 2],
    "x + None": lambda lib: x(lib) + None,
    "x[1.5]": lambda lib: x(lib)[1.5],
    "x[None, None, None, 5]": lambda lib: x(lib)[None, None, None, 5],
    "x['a']": lambda lib: x(lib)["a"],
    "x[0, 0, 0]": lambda lib: x(lib)[0, 0, 0],
    "x.item()": lambda lib: x(lib).item(),
    "len(tensor(1.0))": lambda lib: len(lib.tensor(1.0)),
    "cat([x, 'a'])": lambda lib: lib.cat([x(lib), "a"]),
    "cat([])": lambda lib: lib.cat([]),
    "stack([])": lambda lib: lib.stack([]),
    "cat([x, x], dim=2)": lambda lib: lib.cat([x(lib), x(lib)], dim=2),
    "stack([x, x], dim=3)": lambda lib: lib.stack([x(lib), x(lib)], dim=3),
    "x.backward(gradient=ones(4, 3))": lambda lib: (x(lib) * 2).backward(
        gradient=lib.ones(4, 3, dtype=lib.float64)),
    "x.to('cpu')": lambda lib: x(lib).to("cpu"),
    "x.to(int)": lambda lib: x(lib).to(int),
    "x.requires_grad_(True) on int": lambda lib: lib.tensor([1, 2]).requires_grad_(True),
    "F.softmax(x, dim=1.5)": lambda lib: lib.nn.functional.softmax(x(lib), dim=1.5),
    "F.one_hot(tensor([1, 2]), num_classes=1.5)": lambda lib: lib.nn.functional.one_hot(
        lib.tensor([1, 2]), num_classes=1.5),
    "nn.Linear(0, 2)(ones(3, 0))": lambda lib: lib.nn.Linear(0, 2)(lib.ones(3, 0)),
    "nn.Linear(-1, 2)": lambda lib: lib.nn.Linear(-1, 2),
    "nn.Embedding(-5, 3)": lambda lib: lib.nn.Embedding(-5, 3),
    "nn.BatchNorm1d(0)": lambda lib: lib.nn.BatchNorm1d(0),
    "nn.Linear(3, 2)(ones(3)).shape": lambda lib: lib.nn.Linear(3, 2)(lib.ones(3)).shape,
    "nn.Sequential(ReLU-less 'a')(x)": lambda lib: lib.nn.Sequential("a")(x(lib)),
    "manual_seed('a')": lambda lib: lib.manual_seed("a"),
    "x.retain_grad() on a constant": lambda lib: lib.tensor([1.0]).retain_grad(),
}


def cases():
    return [Case(f"bad-input/{code}", program, code) for code, program in BAD.items()]
