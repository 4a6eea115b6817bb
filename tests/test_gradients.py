"""Gradient tests: every op's backward pass against references that tensorgrad did not compute.

Each case below is a small program `fn(lib, *inputs)` written once against the PyTorch API,
so it runs unchanged with `lib = tensorgrad` and with `lib = torch`. Every case is checked

1. against central finite differences in float64 (the definition of the derivative),
2. against PyTorch autograd in float64 and float32, forward values and input gradients
   (skipped when torch is not installed),
3. for dtype: float32 inputs keep every value and every gradient of the graph in float32.

Hypothesis then draws random broadcastable shape pairs and reduction dims on top.

Why the upstream gradient is random: backpropagating from `out.sum()` sends a gradient of
all ones, and with all ones many wrong rules give the right answer: a missing transpose in
matmul (ones @ b.T and ones @ b agree in every row sum), a gradient summed over the wrong
broadcast axis, a permute undone with the wrong inverse. So every test backpropagates a
random G (`out.backward(G)`, the gradient of `(out * G).sum()`), which tells them apart.
"""
import subprocess
import sys
import zlib
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tensorgrad
from tensorgrad import autograd, ops

# ---------------------------------------------------------------- cases
# A case: an id, a program fn(lib, *inputs), the input shapes, and what values each input
# takes ("any": normal; "positive": in [0.5, 2] for log, sqrt and pow bases; "nonzero":
# |x| in [0.5, 2], away from the kinks of abs and relu and the pole of 1/x; "distinct":
# values 0.3 apart, so max/min have no ties within a finite-difference step).

Case = namedtuple("Case", "id fn shapes kinds in_torch")


def case(id, fn, *shapes, kinds="any", in_torch=True):
    """A Case; `kinds` is one kind for all inputs or a tuple, one per input."""
    kinds = (kinds,) * len(shapes) if isinstance(kinds, str) else tuple(kinds)
    return Case(id, fn, shapes, kinds, in_torch)


def name(shape):
    """A shape in a test id: () -> 'scalar', (3, 4) -> '3x4'."""
    return "x".join(map(str, shape)) if shape else "scalar"


def F(lib):
    """The nn.functional module of tensorgrad or torch."""
    return lib.nn.functional


SHAPES = [(), (4,), (3, 4), (1, 4), (3, 1)]       # every pair of these broadcasts
SHAPE_PAIRS = [(a, b) for a in SHAPES for b in SHAPES] + [((2, 3, 4), (3, 1)),
                                                          ((3, 1), (2, 3, 4))]
BINARY = {
    "add": (lambda lib, a, b: a + b, ("any", "any")),
    "sub": (lambda lib, a, b: a - b, ("any", "any")),
    "mul": (lambda lib, a, b: a * b, ("any", "any")),
    "div": (lambda lib, a, b: a / b, ("any", "nonzero")),
    "pow": (lambda lib, a, b: a ** b, ("positive", "any")),   # d/db a**b = a**b log(a)
    "remainder": (lambda lib, a, b: a % b, ("any", "nonzero")),  # d/db = -floor(a / b)
}
BINARY_CASES = [case(f"{op}[{name(a)},{name(b)}]", fn, a, b, kinds=kinds)
                for op, (fn, kinds) in BINARY.items() for a, b in SHAPE_PAIRS]

UNARY = {
    "neg": (lambda lib, x: -x, "any"),
    "exp": (lambda lib, x: x.exp(), "any"),
    "log": (lambda lib, x: x.log(), "positive"),
    "tanh": (lambda lib, x: x.tanh(), "any"),
    "sqrt": (lambda lib, x: x.sqrt(), "positive"),
    "abs": (lambda lib, x: x.abs(), "nonzero"),
    "sigmoid": (lambda lib, x: x.sigmoid(), "any"),
    "relu": (lambda lib, x: x.relu(), "nonzero"),
}
UNARY_CASES = [case(f"{op}[{name(s)}]", fn, s, kinds=kind)
               for op, (fn, kind) in UNARY.items() for s in [(), (4,), (3, 4), (2, 3, 4)]]

NUMBER_OPERAND = {                    # a Python number on one side; pow by a fixed exponent
    "pow-2": (lambda lib, x: x ** 2, "any"),
    "pow-3": (lambda lib, x: x ** 3, "any"),
    "pow-0.5": (lambda lib, x: x ** 0.5, "positive"),
    "pow-minus1.5": (lambda lib, x: x.pow(-1.5), "positive"),
    "rpow": (lambda lib, x: 2.0 ** x, "any"),
    "radd": (lambda lib, x: 2 + x, "any"),
    "rsub": (lambda lib, x: 1.5 - x, "any"),
    "rmul": (lambda lib, x: 0.5 * x, "any"),
    "rdiv": (lambda lib, x: 3.0 / x, "nonzero"),
    "square": (lambda lib, x: x.square(), "any"),
    "mod": (lambda lib, x: x % 0.7, "any"),
    "lib.remainder": (lambda lib, x: lib.remainder(x, -1.3), "any"),
}
NUMBER_CASES = [case(f"{op}[{name(s)}]", fn, s, kinds=kind)
                for op, (fn, kind) in NUMBER_OPERAND.items() for s in [(), (3, 4)]]

FUNCTIONS = [                         # the same ops called as functions
    case("lib.exp", lambda lib, x: lib.exp(x), (3, 4)),
    case("lib.log", lambda lib, x: lib.log(x), (3, 4), kinds="positive"),
    case("lib.tanh", lambda lib, x: lib.tanh(x), (3, 4)),
    case("lib.sqrt", lambda lib, x: lib.sqrt(x), (3, 4), kinds="positive"),
    case("lib.sigmoid", lambda lib, x: lib.sigmoid(x), (3, 4)),
    case("lib.relu", lambda lib, x: lib.relu(x), (3, 4), kinds="nonzero"),
    case("F.relu", lambda lib, x: F(lib).relu(x), (3, 4), kinds="nonzero"),
    case("F.tanh", lambda lib, x: F(lib).tanh(x), (3, 4)),
    case("F.sigmoid", lambda lib, x: F(lib).sigmoid(x), (3, 4)),
    case("clone", lambda lib, x: x.clone(), (3, 4)),
    case("clone-reused", lambda lib, x: x.clone() * x, (3, 4)),
]


def reduction_cases():
    cases = []
    dims = [None, 0, 1, -1, (0, 2), (-1, -3), (0, 1, 2)]
    for op in ["sum", "mean"]:
        for dim in dims:
            for keepdim in [False, True]:
                cases.append(case(f"{op}[2x3x4,dim={dim},keepdim={keepdim}]",
                                  lambda lib, x, op=op, dim=dim, keepdim=keepdim:
                                  getattr(x, op)(dim=dim, keepdim=keepdim), (2, 3, 4)))
        for shape in [(), (4,), (3, 1)]:
            cases.append(case(f"{op}[{name(shape)}]", lambda lib, x, op=op: getattr(x, op)(),
                              shape))
    cases.append(case("sum[4,dim=0]", lambda lib, x: x.sum(0), (4,)))
    cases.append(case("sum[keepdims-alias]", lambda lib, x: x.sum(1, keepdims=True), (3, 4)))

    variants = {"default": {}, "unbiased=True": {"unbiased": True},
                "unbiased=False": {"unbiased": False}, "correction=0": {"correction": 0},
                "correction=2": {"correction": 2}}
    for dim in [None, 1, -1, (0, 2)]:
        for keepdim in [False, True]:
            for label, kw in variants.items():
                cases.append(case(f"var[2x3x4,dim={dim},keepdim={keepdim},{label}]",
                                  lambda lib, x, dim=dim, keepdim=keepdim, kw=kw:
                                  x.var(dim=dim, keepdim=keepdim, **kw), (2, 3, 4)))
    cases += [
        case("var[3x4,positional]", lambda lib, x: x.var(1, False, True), (3, 4)),
        case("std[3x4]", lambda lib, x: x.std(), (3, 4)),
        case("std[2x3x4,dim=1]", lambda lib, x: x.std(dim=1), (2, 3, 4)),
        case("std[2x3x4,dim=-1,keepdim,unbiased=False]",
             lambda lib, x: x.std(dim=-1, keepdim=True, unbiased=False), (2, 3, 4)),
        case("std[2x3x4,dim=(0,2),correction=0]",
             lambda lib, x: x.std(dim=(0, 2), correction=0), (2, 3, 4)),
    ]

    for op in ["max", "min"]:
        for shape in [(4,), (3, 4), (2, 3, 4)]:
            cases.append(case(f"{op}[{name(shape)}]", lambda lib, x, op=op: getattr(x, op)(),
                              shape, kinds="distinct"))
        for dim in [0, 1, -1]:
            for keepdim in [False, True]:
                cases.append(case(f"{op}[2x3x4,dim={dim},keepdim={keepdim}]",
                                  lambda lib, x, op=op, dim=dim, keepdim=keepdim:
                                  getattr(x, op)(dim=dim, keepdim=keepdim).values,
                                  (2, 3, 4), kinds="distinct"))
        cases.append(case(f"{op}[4,dim=0]", lambda lib, x, op=op: getattr(x, op)(0).values,
                          (4,), kinds="distinct"))
        cases.append(case(f"{op}[3x4,positional-dim]",
                          lambda lib, x, op=op: getattr(x, op)(1, True)[0], (3, 4),
                          kinds="distinct"))

    for dim in [0, -1, (0, 2), (0, 1, 2)]:
        for keepdim in [False, True]:
            cases.append(case(f"logsumexp[2x3x4,dim={dim},keepdim={keepdim}]",
                              lambda lib, x, dim=dim, keepdim=keepdim:
                              x.logsumexp(dim, keepdim=keepdim), (2, 3, 4)))
    cases.append(case("logsumexp[4,dim=0]", lambda lib, x: x.logsumexp(0), (4,)))
    return cases


MOVEMENT_CASES = [
    case("reshape[4,6]", lambda lib, x: x.reshape(4, 6), (2, 3, 4)),
    case("reshape[tuple,-1]", lambda lib, x: x.reshape((6, -1)), (2, 3, 4)),
    case("reshape[-1]", lambda lib, x: x.reshape(-1), (2, 3, 4)),
    case("reshape[scalar-to-1x1]", lambda lib, x: x.reshape(1, 1), ()),
    case("view[3,8]", lambda lib, x: x.view(3, 8), (2, 3, 4)),
    case("view[-1,4]", lambda lib, x: x.view(-1, 4), (2, 3, 4)),
    case("flatten", lambda lib, x: x.flatten(), (2, 3, 4)),
    case("flatten[1]", lambda lib, x: x.flatten(1), (2, 3, 4)),
    case("flatten[0,1]", lambda lib, x: x.flatten(0, 1), (2, 3, 4)),
    case("lib.flatten[1]", lambda lib, x: lib.flatten(x, 1), (2, 3, 4)),
    case("unsqueeze[0]", lambda lib, x: x.unsqueeze(0), (3, 4)),
    case("unsqueeze[1]", lambda lib, x: x.unsqueeze(1), (3, 4)),
    case("unsqueeze[-1]", lambda lib, x: x.unsqueeze(-1), (3, 4)),
    case("squeeze", lambda lib, x: x.squeeze(), (3, 1, 4)),
    case("squeeze[1]", lambda lib, x: x.squeeze(1), (3, 1, 4)),
    case("squeeze[-3]", lambda lib, x: x.squeeze(-3), (1, 3, 4)),
    case("expand[3x1->3x4]", lambda lib, x: x.expand(3, 4), (3, 1)),
    case("expand[3x1->2x3x4]", lambda lib, x: x.expand(2, 3, 4), (3, 1)),
    case("expand[1x4,-1]", lambda lib, x: x.expand(3, -1), (1, 4)),
    case("expand[tuple]", lambda lib, x: x.expand((2, 3, 4)), (1, 4)),
    case("expand[scalar]", lambda lib, x: x.expand(2, 3), ()),
    case("permute[2,0,1]", lambda lib, x: x.permute(2, 0, 1), (2, 3, 4)),
    case("permute[tuple]", lambda lib, x: x.permute((1, 2, 0)), (2, 3, 4)),
    case("permute[negative]", lambda lib, x: x.permute(-1, 0, 1), (2, 3, 4)),
    case("transpose[0,2]", lambda lib, x: x.transpose(0, 2), (2, 3, 4)),
    case("transpose[-1,-2]", lambda lib, x: x.transpose(-1, -2), (2, 3, 4)),
    case(".T", lambda lib, x: x.T, (3, 4)),
    case(".T-then-matmul", lambda lib, x: x.T @ x, (3, 4)),
]

CAT_CASES = [
    case("cat[dim=0]", lambda lib, a, b, c: lib.cat([a, b, c], dim=0), (2, 3), (4, 3), (1, 3)),
    case("cat[dim=1]", lambda lib, a, b, c: lib.cat([a, b, c], dim=1), (3, 2), (3, 1), (3, 4)),
    case("cat[dim=-1]", lambda lib, a, b: lib.cat([a, b], dim=-1), (2, 3, 1), (2, 3, 4)),
    case("cat[3d,dim=1]", lambda lib, a, b, c: lib.cat((a, b, c), 1),
         (2, 1, 4), (2, 3, 4), (2, 2, 4)),
    case("cat[1d]", lambda lib, a, b: lib.cat([a, b]), (3,), (4,)),
    case("cat[same-input-twice]", lambda lib, a: lib.cat([a, a * 2], 0), (2, 3)),
    case("stack[dim=0]", lambda lib, a, b, c: lib.stack([a, b, c]), (3, 4), (3, 4), (3, 4)),
    case("stack[dim=1]", lambda lib, a, b, c: lib.stack([a, b, c], 1), (3, 4), (3, 4), (3, 4)),
    case("stack[dim=2]", lambda lib, a, b, c: lib.stack([a, b, c], dim=2),
         (3, 4), (3, 4), (3, 4)),
    case("stack[dim=-2]", lambda lib, a, b, c: lib.stack([a, b, c], dim=-2),
         (3, 4), (3, 4), (3, 4)),
    case("stack[1d,dim=-1]", lambda lib, a, b: lib.stack([a, b], -1), (4,), (4,)),
    case("stack[scalars]", lambda lib, a, b: lib.stack([a, b]), (), ()),
]

XB = np.array([[0, 2, 2], [4, 0, 2]])                  # an embedding lookup, repeats included
MASK = np.array([[True, False, True, True], [False, False, True, False],
                 [True, True, False, False]])
ROWS = np.array([True, False, True])

GETITEM_CASES = [
    case("getitem[int]", lambda lib, x: x[1], (3, 4)),
    case("getitem[negative-int]", lambda lib, x: x[-1], (3, 4)),
    case("getitem[int,int]", lambda lib, x: x[1, 2], (3, 4)),
    case("getitem[chained]", lambda lib, x: x[0][3], (3, 4)),
    case("getitem[slice]", lambda lib, x: x[:, 1:3], (3, 4)),
    case("getitem[step]", lambda lib, x: x[::2, 1::2], (3, 4)),
    case("getitem[negative-step]", lambda lib, x: x[::-1], (3, 4), in_torch=False),
    case("getitem[int,negative-step]", lambda lib, x: x[1, ::-2], (3, 4), in_torch=False),
    case("getitem[None]", lambda lib, x: x[None], (3, 4)),
    case("getitem[slice,None,slice]", lambda lib, x: x[:, None, 1:3], (3, 4)),
    case("getitem[ellipsis,int]", lambda lib, x: x[..., 1], (2, 3, 4)),
    case("getitem[int,ellipsis,None]", lambda lib, x: x[1, ..., None], (2, 3, 4)),
    case("getitem[embedding-C[Xb]]", lambda lib, C: C[lib.tensor(XB)], (5, 3)),
    case("getitem[list-repeated]", lambda lib, x: x[[0, 0, 2]], (3, 4)),
    case("getitem[range,y]", lambda lib, x: x[range(3), lib.tensor([1, 1, 3])], (3, 4)),
    case("getitem[arange,y-repeated-rows]",
         lambda lib, x: x[lib.tensor([0, 2, 0, 0]), lib.tensor([3, 1, 3, 3])], (3, 4)),
    case("getitem[slice,list]", lambda lib, x: x[1:, [0, 0, 3]], (3, 4)),
    case("getitem[bool-mask]", lambda lib, x: x[lib.tensor(MASK)], (3, 4)),
    case("getitem[bool-rows]", lambda lib, x: x[lib.tensor(ROWS)], (3, 4)),
    case("getitem[range,y-then-log]",
         lambda lib, x: x[range(3), lib.tensor([0, 3, 3])].log(), (3, 4), kinds="positive"),
]


def set_then_return(index):
    """`y = x * 1; y[index] = v`: the in-place write is recorded in the graph."""
    def fn(lib, x, v):
        y = x * 1
        y[index(lib)] = v
        return y
    return fn


def set_reuse(lib, x, v):
    y = x * 1
    y[0] = v
    return y * x                              # x reaches the output along two paths


def set_twice(lib, x, v, w):
    y = x * 1
    y[0] = v
    y[:, 1] = w                               # overwrites v[1]: its gradient must be 0
    return y


SETITEM_CASES = [
    case("setitem[int]", set_then_return(lambda lib: 1), (3, 4), (4,)),
    case("setitem[one-element]", set_then_return(lambda lib: (1, 2)), (3, 4), ()),
    case("setitem[slice]", set_then_return(lambda lib: (slice(None), slice(1, 3))),
         (3, 4), (3, 2)),
    case("setitem[broadcast-scalar]", set_then_return(lambda lib: (slice(None), 0)),
         (3, 4), ()),
    case("setitem[broadcast-row]", set_then_return(lambda lib: [0, 2]), (3, 4), (4,)),
    case("setitem[fancy]", set_then_return(lambda lib: lib.tensor([2, 0])), (3, 4), (2, 4)),
    case("setitem[bool-mask]", set_then_return(lambda lib: lib.tensor(MASK)),
         (3, 4), (int(MASK.sum()),)),
    case("setitem[reused]", set_reuse, (3, 4), (4,)),
    case("setitem[twice]", set_twice, (3, 4), (4,), (3,)),
]

MATMUL_CASES = [
    case(f"matmul[{name(a)}@{name(b)}]", lambda lib, a, b: a @ b, a, b) for a, b in [
        ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((3, 4), (4, 5)),
        ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
        ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2)),
        ((2, 3, 2, 4), (4, 5))]
] + [case("lib.matmul[3x4@4x5]", lambda lib, a, b: lib.matmul(a, b), (3, 4), (4, 5)),
     case("matmul-method[3x4@4]", lambda lib, a, b: a.matmul(b), (3, 4), (4,))] + [
    case(f"linear[{name(x)}]", lambda lib, x, w, b: F(lib).linear(x, w, b), x, (5, 4), (5,))
    for x in [(4,), (3, 4), (2, 3, 4)]] + [
    case("linear[no-bias]", lambda lib, x, w: F(lib).linear(x, w), (3, 4), (5, 4)),
    case("linear[1-d-weight]", lambda lib, x, w: F(lib).linear(x, w), (3, 4), (4,)),
    case("linear[bias-1x5]", lambda lib, x, w, b: F(lib).linear(x, w, b), (3, 4), (5, 4), (1, 5))]

TARGET = np.array([0, 3, 3, 1, 0])

SOFTMAX_CASES = [
    case("softmax[3x4,dim=-1]", lambda lib, x: F(lib).softmax(x, dim=-1), (3, 4)),
    case("softmax[3x4,dim=0]", lambda lib, x: F(lib).softmax(x, dim=0), (3, 4)),
    case("softmax[2x3x4,dim=1]", lambda lib, x: F(lib).softmax(x, 1), (2, 3, 4)),
    case("log_softmax[3x4,dim=1]", lambda lib, x: F(lib).log_softmax(x, dim=1), (3, 4)),
    case("log_softmax[3x4,dim=0]", lambda lib, x: F(lib).log_softmax(x, 0), (3, 4)),
    case("log_softmax[2x3x4,dim=-1]", lambda lib, x: F(lib).log_softmax(x, -1), (2, 3, 4)),
    case("manual-softmax", lambda lib, x: x.exp() / x.exp().sum(1, keepdim=True), (3, 4)),
] + [case(f"cross_entropy[{r}]",
          lambda lib, x, r=r: F(lib).cross_entropy(x, lib.tensor(TARGET), reduction=r), (5, 4))
     for r in ["mean", "sum", "none"]] + [
    case("cross_entropy[default]",
         lambda lib, x: F(lib).cross_entropy(x * 3, lib.tensor(TARGET)), (5, 4)),
]

# PyTorch has no gradient for a number % tensor; tensorgrad's is -floor(a / b), as for two
# tensors, checked against finite differences
RMOD_CASES = [case("rmod[3x4]", lambda lib, x: 2.5 % x, (3, 4), kinds="nonzero",
                   in_torch=False)]


def causal(x, lib):
    """A (.., T, T) tensor with -inf above the diagonal: attention's causal mask."""
    T = x.shape[-1]
    return x.masked_fill(lib.tril(lib.ones(T, T)) == 0, float("-inf"))


GATHER = np.array([[0, 0, 3], [1, 2, 1], [3, 3, 3]])
TARGET_IGNORED = np.array([0, -1, 3, -1, 1])

SELECTION_CASES = [
    case("tril", lambda lib, x: lib.tril(x), (3, 4)),
    case("tril[diagonal=1,batch]", lambda lib, x: x.tril(diagonal=1), (2, 3, 4)),
    case("triu[diagonal=-1]", lambda lib, x: lib.triu(x, diagonal=-1), (2, 4, 4)),
    case("triu[method]", lambda lib, x: x.triu(), (4, 3)),
    case("masked_fill[number]", lambda lib, x: x.masked_fill(lib.tensor(MASK), 2.5), (3, 4)),
    case("masked_fill[broadcast-mask]",
         lambda lib, x: x.masked_fill(lib.tensor(ROWS)[:, None], 0.0), (2, 3, 4)),
    case("masked_fill[mask-grows-the-tensor]",
         lambda lib, x: x.masked_fill(lib.tensor(MASK), -1.0), (4,)),
    case("masked_fill[0-d-value]", lambda lib, x, v: x.masked_fill(lib.tensor(MASK), v),
         (3, 4), ()),
    case("masked_fill_[in-graph]",
         lambda lib, x: (x * 1).masked_fill_(lib.tensor(MASK), 0.5) * x, (3, 4)),
    case("causal-softmax", lambda lib, x: causal(x, lib).softmax(dim=-1), (2, 4, 4)),
    case("causal-F.softmax", lambda lib, x: F(lib).softmax(causal(x, lib), dim=-1), (4, 4)),
    case("causal-log_softmax",        # the -inf entries zeroed again, as a loss would skip them
         lambda lib, x: causal(x, lib).log_softmax(-1).masked_fill(
             lib.tril(lib.ones(4, 4)) == 0, 0.0), (2, 4, 4)),
    case("softmax[method]", lambda lib, x: x.softmax(dim=1), (2, 3, 4)),
    case("log_softmax[method]", lambda lib, x: x.log_softmax(-1), (3, 4)),
    case("where", lambda lib, a, b: lib.where(lib.tensor(MASK), a, b), (3, 4), (3, 4)),
    case("where[broadcast]", lambda lib, a, b: lib.where(lib.tensor(MASK), a, b), (3, 1), (4,)),
    case("where[number]", lambda lib, a: lib.where(lib.tensor(MASK), a, 0.0), (3, 4)),
    case("where[method]", lambda lib, a, b: a.where(lib.tensor(ROWS)[:, None], b), (3, 4), ()),
    case("roll[1,dim=1]", lambda lib, x: lib.roll(x, 1, 1), (3, 4)),
    case("roll[tuple]", lambda lib, x: x.roll((1, -2), (0, 2)), (2, 3, 4)),
    case("roll[flattened]", lambda lib, x: lib.roll(x, 5), (3, 4)),
    case("split[int]", lambda lib, x: x.split(3, dim=1)[1] * x.split(3, dim=1)[0][:, :1],
         (2, 5)),
    case("split[sizes]", lambda lib, x: lib.cat(x.split([1, 3], -1)[::-1], -1), (2, 3, 4)),
    case("lib.split", lambda lib, x: lib.split(x, 2)[1], (5, 2)),
    case("chunk", lambda lib, x: x.chunk(3, dim=0)[2] * x.chunk(3)[0][:1], (7, 2)),
    case("gather", lambda lib, x: x.gather(1, lib.tensor(GATHER)), (3, 4)),
    case("lib.gather[dim=0]", lambda lib, x: lib.gather(x, 0, lib.tensor(GATHER[:2] % 3)), (3, 4)),
    case("topk", lambda lib, x: lib.topk(x, 2).values, (3, 4), kinds="distinct"),
    case("topk[dim=0,smallest]", lambda lib, x: x.topk(2, dim=0, largest=False)[0], (3, 4),
         kinds="distinct"),
] + [case(f"cross_entropy[ignore_index,{r}]",
          lambda lib, x, r=r: F(lib).cross_entropy(x, lib.tensor(TARGET_IGNORED),
                                                   ignore_index=-1, reduction=r), (5, 4))
     for r in ["mean", "sum", "none"]]

ALL_CASES = (BINARY_CASES + UNARY_CASES + NUMBER_CASES + FUNCTIONS + reduction_cases()
             + MOVEMENT_CASES + CAT_CASES + GETITEM_CASES + SETITEM_CASES + MATMUL_CASES
             + SOFTMAX_CASES + RMOD_CASES + SELECTION_CASES)
TORCH_CASES = [c for c in ALL_CASES if c.in_torch]   # torch has no negative-step slices


def params(cases):
    """The cases as pytest params, each with its own test id."""
    return [pytest.param(c, id=c.id) for c in cases]


# ---------------------------------------------------------------- running a case

def make_array(rng, shape, kind, dtype=np.float64):
    """Random values of one kind (see the cases banner)."""
    if kind == "positive":
        x = rng.uniform(0.5, 2.0, shape)
    elif kind == "nonzero":
        x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif kind == "distinct":
        n = int(np.prod(shape))
        x = (rng.permutation(n) - n / 2).reshape(shape) * 0.3 + rng.uniform(0, 0.1)
    else:
        x = rng.standard_normal(shape)
    return np.asarray(x, dtype)


def make_inputs(c, dtype=np.float64):
    """The case's input arrays, and a generator for G; both seeded by the case's id."""
    rng = np.random.default_rng(zlib.crc32(c.id.encode()))
    return [make_array(rng, s, k, dtype) for s, k in zip(c.shapes, c.kinds)], rng


def run(lib, fn, arrays, G=None, rng=None):
    """Run `fn` on leaves made from `arrays` and backpropagate G (random if not given).

    Returns the output, G and the gradient of every input, all as numpy arrays. An input
    the output does not depend on has gradient None; it counts as zeros.
    """
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *leaves)
    value = np.asarray(out.detach())
    if G is None:
        G = rng.standard_normal(value.shape).astype(value.dtype)   # never all ones
    out.backward(lib.tensor(G))
    grads = [np.zeros_like(a) if t.grad is None else np.asarray(t.grad)
             for t, a in zip(leaves, arrays)]
    return value, G, grads


def finite_differences(fn, arrays, G, eps=1e-6):
    """The gradient of sum(fn(*arrays) * G) with respect to each array, element by element,
    by central differences (f(x + eps) - f(x - eps)) / 2 eps, computed in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def objective():
        with tensorgrad.no_grad():
            out = fn(tensorgrad, *(tensorgrad.tensor(a) for a in arrays))
        return np.sum(np.asarray(out, dtype=np.float64) * G)

    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            saved = a[i]
            a[i] = saved + eps
            plus = objective()
            a[i] = saved - eps
            minus = objective()
            a[i] = saved
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def check_gradients(fn, arrays, rng):
    """Assert that tensorgrad's gradients of `fn` at float64 `arrays` match finite differences.

    The finite differences are exact to ~1e-10 of the objective's size (rounding divided by
    eps), so the absolute tolerance scales with sum |out * G|.
    """
    out, G, grads = run(tensorgrad, fn, arrays, rng=rng)
    numeric = finite_differences(fn, arrays, G)
    atol = 1e-8 * (1 + np.sum(np.abs(out * G)))
    for i, (a, analytic, expected) in enumerate(zip(arrays, grads, numeric)):
        assert analytic.shape == a.shape, f"input {i}: gradient shape {analytic.shape}"
        assert analytic.dtype == np.float64, f"input {i}: gradient dtype {analytic.dtype}"
        np.testing.assert_allclose(analytic, expected, rtol=1e-6, atol=atol,
                                   err_msg=f"gradient of input {i}")


def torch_or_none():
    """torch if installed (for the checks that also run without it), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


@pytest.fixture
def edge_dtypes(monkeypatch):
    """The dtype of every gradient the backward pass sends along an edge of the graph.

    Checking `.grad` alone is not enough: the engine casts a leaf's gradient to the leaf's
    dtype, which would hide an upcast inside. Every edge's gradient comes from one of its
    op's grad functions, so wrappers around those see them all.
    """
    seen = []

    def recording(fn):
        def wrapper(*args):
            grad = fn(*args)
            seen.append(np.asarray(grad).dtype)
            return grad
        return wrapper

    pending = list(ops.Op.__subclasses__())
    while pending:
        op = pending.pop()
        if "grads" in vars(op):
            monkeypatch.setattr(op, "grads", tuple(recording(f) for f in op.grads))
            monkeypatch.setattr(op, "_kept", {})    # plans made from now on call the wrappers
        pending += op.__subclasses__()
    return seen


# ---------------------------------------------------------------- 1. finite differences

@pytest.mark.parametrize("c", params(ALL_CASES))
def test_gradient_matches_finite_differences(c):
    """The backward pass agrees with the derivative's definition, in float64."""
    arrays, rng = make_inputs(c)
    check_gradients(c.fn, arrays, rng)


# ---------------------------------------------------------------- 2. PyTorch autograd

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def assert_close(actual, expected, dtype, what):
    """allclose with the dtype's tolerance; atol scales with the size of the values."""
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale,
                               err_msg=what)


def compare_with_torch(fn, arrays, rng, dtype):
    """Run `fn` in tensorgrad and torch on the same inputs and G; compare values and grads."""
    torch = pytest.importorskip("torch")
    out, G, grads = run(tensorgrad, fn, arrays, rng=rng)
    expected_out, _, expected_grads = run(torch, fn, arrays, G=G)
    assert_close(out, expected_out, dtype, "forward value")
    for i, (grad, expected) in enumerate(zip(grads, expected_grads)):
        assert_close(grad, expected, dtype, f"gradient of input {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("c", params(TORCH_CASES))
def test_matches_torch(c, dtype):
    """Forward values and every input gradient agree with PyTorch on the same inputs and G."""
    arrays, rng = make_inputs(c, dtype)
    compare_with_torch(c.fn, arrays, rng, dtype)


TIES = np.array([[1.0, 3.0, 3.0, 0.0],
                 [2.0, 2.0, 2.0, -1.0],
                 [5.0, 0.0, 5.0, 5.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("program", [
    pytest.param(lambda lib, x: x.max(), id="max-all"),
    pytest.param(lambda lib, x: x.min(), id="min-all"),
    pytest.param(lambda lib, x: x.max(dim=1).values, id="max-dim1"),
    pytest.param(lambda lib, x: x.max(dim=0, keepdim=True).values, id="max-dim0-keepdim"),
    pytest.param(lambda lib, x: x.min(dim=-1).values, id="min-dim-1"),
    pytest.param(lambda lib, x: x.reshape(3, 2, 2).max(1).values, id="max-3d-dim1"),
    pytest.param(lambda lib, x: x.max(dim=1).indices * 1.0 + x.max(dim=1).values,
                 id="max-indices"),
])
def test_max_min_ties_match_torch(program, dtype):
    """With ties PyTorch routes the gradient like this, and tensorgrad must agree:
    along a dim, all of it goes to the first extremal element (the one `.indices` names);
    over the whole tensor it is split equally between the tied elements."""
    compare_with_torch(program, [TIES.astype(dtype)], np.random.default_rng(1), dtype)


def test_max_ties_follow_the_documented_rule():
    """The same rule, checked without torch: the first maximum per row, or an equal split."""
    G = np.array([0.7, -1.3, 2.1])
    _, _, (grad,) = run(tensorgrad, lambda lib, x: x.max(dim=1).values, [TIES], G=G)
    expected = np.zeros_like(TIES)
    for row in range(3):
        first = [j for j in range(4) if TIES[row, j] == TIES[row].max()][0]
        expected[row, first] = G[row]
    np.testing.assert_array_equal(grad, expected)

    _, _, (grad,) = run(tensorgrad, lambda lib, x: x.max(), [TIES], G=np.array(0.9))
    np.testing.assert_allclose(grad, np.where(TIES == 5.0, 0.9 / 3, 0.0))


@pytest.mark.parametrize("source, target", [(np.float64, np.float32),
                                            (np.float32, np.float64)],
                         ids=["float64-to-float32", "float32-to-float64"])
@pytest.mark.parametrize("method", ["to", "shortcut"])
def test_cast_gradient(source, target, method, edge_dtypes):
    """A cast's Jacobian is the identity, so x gets G times the other factor, back in x's dtype.

    (Finite differences cannot check this: through float32, a step of 1e-6 is lost to
    rounding.)"""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 4)).astype(source), rng.standard_normal(4).astype(target)
    G = rng.standard_normal((3, 4)).astype(target)

    def fn(lib, x, w):
        if method == "to":
            y = x.to(lib.float32 if target == np.float32 else lib.float64)
        else:
            y = x.float() if target == np.float32 else x.double()
        assert np.asarray(y.detach()).dtype == target
        return y * w

    out, _, (gx, gw) = run(tensorgrad, fn, [x, w], G=G)
    assert out.dtype == target and gx.dtype == source and gw.dtype == target
    # mul sends two gradients in the target dtype; the cast sends x's back in its own
    assert sorted(d.name for d in edge_dtypes) == sorted(np.dtype(d).name
                                                         for d in [target, target, source])
    np.testing.assert_allclose(gx, (G * w).astype(source), rtol=1e-6)
    np.testing.assert_allclose(gw, (G * x.astype(target)).sum(0), rtol=1e-5)
    if (torch := torch_or_none()) is not None:
        expected_out, _, expected_grads = run(torch, fn, [x, w], G=G)
        np.testing.assert_allclose(out, expected_out, rtol=1e-6)
        for grad, expected in zip([gx, gw], expected_grads):
            assert grad.dtype == expected.dtype
            np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_importing_tensorgrad_does_not_import_torch():
    """torch is only a test reference: `import tensorgrad` must neither need nor load it."""
    code = "import sys, tensorgrad, tensorgrad.nn.functional; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("num_classes", [5, -1])
def test_one_hot(num_classes):
    """one_hot is an int64 tensor outside the graph: a row of the identity per index."""
    index = np.array([[0, 2], [2, 4]])
    out = tensorgrad.nn.functional.one_hot(tensorgrad.tensor(index), num_classes=num_classes)
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.eye(5, dtype=np.int64)[index])
    if (torch := torch_or_none()) is not None:
        expected = torch.nn.functional.one_hot(torch.tensor(index), num_classes=num_classes)
        np.testing.assert_array_equal(out.numpy(), expected.numpy())


# ---------------------------------------------------------------- 3. property tests

BINARY_FD = {op: BINARY[op] for op in ["add", "sub", "mul", "div", "pow"]}
FINITE = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)
ANY_VALUE = st.floats(-3, 3, **FINITE)
AWAY_FROM_ZERO = st.one_of(st.floats(-3, -0.5, **FINITE), st.floats(0.5, 3, **FINITE))
POSITIVE = st.floats(0.5, 3, **FINITE)
VALUES = {"any": ANY_VALUE, "nonzero": AWAY_FROM_ZERO, "positive": POSITIVE}


@pytest.mark.parametrize("op", list(BINARY_FD))
@settings(max_examples=30, deadline=None)
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0,
                                                                 max_dims=3, max_side=3))
def test_binary_broadcasting_property(op, shapes, data):
    """Any two broadcastable shapes: each input's gradient is summed back to its own shape."""
    fn, kinds = BINARY_FD[op]
    a_shape, b_shape = shapes.input_shapes
    a = data.draw(hnp.arrays(np.float64, a_shape, elements=VALUES[kinds[0]]), label="a")
    b = data.draw(hnp.arrays(np.float64, b_shape, elements=VALUES[kinds[1]]), label="b")
    check_gradients(fn, [a, b], np.random.default_rng(0))


@st.composite
def reduction_dims(draw, ndim):
    """A dim argument as users write it: an int or a tuple of ints, some negative."""
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    return axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), op=st.sampled_from(["sum", "mean", "var", "logsumexp", "max"]),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       keepdim=st.booleans())
def test_reduction_property(op, shape, keepdim, data):
    """Reductions over any dims (int or tuple, negative or not), keepdim or not."""
    if op == "max":             # one dim; values on a 0.1 grid so no two are close to tied
        dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
        x = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-200, 200),
                                 unique=True), label="x") * 0.1

        def fn(lib, x):
            return x.max(dim, keepdim=keepdim).values
    else:
        dim = data.draw(reduction_dims(len(shape)), label="dim")
        x = data.draw(hnp.arrays(np.float64, shape, elements=ANY_VALUE), label="x")
        kw = {"keepdim": keepdim}
        if op == "var":
            axes = (dim,) if isinstance(dim, int) else dim
            n = int(np.prod([shape[a] for a in axes]))
            kw["correction"] = data.draw(st.integers(0, n - 1), label="correction")

        def fn(lib, x):
            return getattr(x, op)(dim, **kw)
    check_gradients(fn, [x], np.random.default_rng(0))


# ---------------------------------------------------------------- 4. dtypes

@pytest.mark.parametrize("c", params(ALL_CASES))
def test_float32_stays_float32(c, edge_dtypes):
    """No op silently computes in float64: every value in the graph and every gradient sent
    along an edge of it stays float32."""
    arrays, rng = make_inputs(c, np.float32)
    leaves = [tensorgrad.tensor(a, requires_grad=True) for a in arrays]
    out = c.fn(tensorgrad, *leaves)
    assert out.dtype == np.float32
    value_dtypes = {node.op.name: node.out_dtype
                    for node in autograd.topological_order(out.grad_fn) if node.op is not None}
    assert set(value_dtypes.values()) == {np.dtype(np.float32)}, value_dtypes
    out.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert edge_dtypes and set(edge_dtypes) == {np.dtype(np.float32)}, edge_dtypes
    for leaf in leaves:
        assert leaf.grad is None or leaf.grad.dtype == np.float32


@pytest.mark.parametrize("program, dtype", [
    pytest.param(lambda lib, i, x: i * x, np.float32, id="int64*float32"),
    pytest.param(lambda lib, i, x: x * i, np.float32, id="float32*int64"),
    pytest.param(lambda lib, i, x: i + x, np.float32, id="int64+float32"),
    pytest.param(lambda lib, i, x: x / i, np.float32, id="float32/int64"),
    pytest.param(lambda lib, i, x: i / 2 + x, np.float32, id="int64/number"),
    pytest.param(lambda lib, i, x: x * 0.1, np.float32, id="float32*python-float"),
    pytest.param(lambda lib, i, x: (i * x.double()), np.float64, id="int64*float64"),
])
def test_dtype_promotion_follows_torch(program, dtype):
    """Mixed dtypes give PyTorch's result dtype (numpy would make int64 * float32 a float64),
    and the float input's gradient keeps its dtype."""
    index = np.array([1, 2, 3])
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3).astype(np.float32)
    leaf = tensorgrad.tensor(x, requires_grad=True)
    out = program(tensorgrad, tensorgrad.tensor(index), leaf)
    assert out.dtype == dtype
    out.backward(rng.standard_normal(3).astype(dtype))
    assert leaf.grad.dtype == np.float32
    if (torch := torch_or_none()) is not None:
        expected = program(torch, torch.tensor(index), torch.tensor(x))
        assert out.numpy().dtype == expected.numpy().dtype
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
