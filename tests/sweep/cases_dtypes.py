"""dtypes: every binary op and comparison over every pair of operand kinds, in-place ops
across dtypes, cat/stack of mixed dtypes, reductions and elementwise functions of integer
and bool tensors, matmul of mixed dtypes.

Operand kinds: tensors of bool, int32, int64, float32, float64, each 1-D and 0-d (PyTorch
promotes 0-d tensors like Python numbers within a category: float32 (3,) + float64 () is
float32), and the Python numbers True, 2 and 1.5. Float tensors require grad, so each case
also compares the gradients that reach them, and their dtypes.
"""
import itertools
import operator

import numpy as np

from .harness import Case, backprop, leaves, with_grads

VALUES = {"bool": [True, False, True], "int32": [1, 2, 3], "int64": [3, 1, 2],
          "float32": [0.5, 1.5, 2.5], "float64": [1.25, 0.75, 2.0]}
DTYPES = list(VALUES)


def operand(dtype, zero_d):
    values = VALUES[dtype][:1] if zero_d else VALUES[dtype]
    array = np.array(values, dtype=dtype)
    return array.reshape(()) if zero_d else array


OPERANDS = {f"{d}{'[]' if z else '[3]'}": operand(d, z)
            for d in DTYPES for z in (False, True)}
OPERANDS |= {"True": True, "2": 2, "1.5": 1.5}
TENSORS = [k for k, v in OPERANDS.items() if isinstance(v, np.ndarray)]

BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
          "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
          "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


# Where PyTorch fails on a well-defined power, the reference writes it another way.
BOOL_BASE = ("PyTorch fails an internal assertion on a Python bool base; True ** x is "
             "1 ** x")
BOOL_EXPONENT = ("PyTorch's pow backward subtracts 1 from a bool exponent and refuses; "
                 "x ** True is x ** 1 (the reference casts the exponent to int64)")


def binary_cases(full):
    """Every op over every pair of operand kinds; of the comparisons, == and < only unless
    `full` (all six share one code path in tensorgrad)."""
    found = []
    for (op, fn), left, right in itertools.product(BINARY.items(), OPERANDS, OPERANDS):
        if left not in TENSORS and right not in TENSORS:
            continue                            # two Python numbers: not a tensor op
        if not full and op in ("!=", "<=", ">", ">="):
            continue
        code = f"{left} {op} {right}"
        reference, note = None, None
        if op == "**" and left == "True" and right.startswith("float"):
            reference, note = with_grads(lambda lib, a, b: 1 ** b, True,
                                         OPERANDS[right]), BOOL_BASE
        elif op == "**" and left.startswith("float") and right.startswith("bool"):
            reference, note = with_grads(lambda lib, a, b: a ** b.long(), OPERANDS[left],
                                         OPERANDS[right]), BOOL_EXPONENT
        found.append(Case(f"dtypes/{code}", with_grads(
            lambda lib, a, b, fn=fn: fn(a, b), OPERANDS[left], OPERANDS[right]), code,
            reference=reference, note=note))
    return found


INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul,
           "/=": operator.itruediv}


def inplace(fn, target, other, target_grad):
    """`a = <target> (in the graph when float and target_grad); a <op>= other`; returns a,
    its dtype, and the gradients of the leaves."""
    def run(lib):
        (source,) = leaves(lib, [OPERANDS[target]], grad=target_grad)
        (b,) = leaves(lib, [OPERANDS[other]])
        a = source * 1 if target_grad and source.requires_grad else source
        a = fn(a, b)                                      # a <op>= b
        backprop(lib, a)
        return {"a": a, "a.dtype": a.dtype, "grads": [source.grad, getattr(b, "grad", None)]}
    return run


def inplace_cases():
    found = []
    for (op, fn), target, other in itertools.product(INPLACE.items(), TENSORS, OPERANDS):
        if target.endswith("[]"):
            continue
        for graph in (True, False):
            if graph and not target.startswith("float"):
                continue
            where = "in graph" if graph else "outside graph"
            code = f"a = {target} ({where}); a {op} {other}"
            found.append(Case(f"inplace-dtypes/{code}", inplace(fn, target, other, graph),
                              code))
    return found


def joined(fn, arrays):
    """A case program: `fn(lib, [leaves])` (cat or stack), backpropagated."""
    def run(lib):
        xs = leaves(lib, arrays)
        out = fn(lib, xs)
        backprop(lib, out)
        return {"out": out, "grads": [x.grad for x in xs]}
    return run


def cat_cases():
    cat = lambda lib, xs: lib.cat(xs)                                   # noqa: E731
    stack = lambda lib, xs: lib.stack(xs)                               # noqa: E731
    found = []
    for a, b in itertools.product(DTYPES, repeat=2):
        pair = [OPERANDS[f"{a}[3]"], OPERANDS[f"{b}[3]"]]
        rows = [np.tile(x, (2, 1)) for x in pair]                       # (2, 3) each
        found += [
            Case(f"cat-stack/cat([{a}, {b}])", joined(cat, pair)),
            Case(f"cat-stack/stack([{a}, {b}])", joined(stack, pair)),
            Case(f"cat-stack/stack([{a}, {b}], dim=-1)",
                 joined(lambda lib, xs: lib.stack(xs, dim=-1), pair)),
            Case(f"cat-stack/cat([{a} 2x3, {b} 2x3], dim=1)",
                 joined(lambda lib, xs: lib.cat(xs, dim=1), rows)),
        ]
    for a in DTYPES:
        scalars = [OPERANDS[f"{a}[]"]] * 2
        found += [Case(f"cat-stack/cat([{a}[], {a}[]])", joined(cat, scalars)),
                  Case(f"cat-stack/stack([{a}[], {a}[]])", joined(stack, scalars))]
    for names in itertools.permutations(["int64", "float32", "float64"]):
        found.append(Case(f"cat-stack/cat([{', '.join(names)}])",
                          joined(cat, [OPERANDS[f"{n}[3]"] for n in names])))
    return found


MATRIX = {d: np.array([VALUES[d], VALUES[d][::-1]], dtype=d) for d in DTYPES}


def reduction_cases():
    found = []
    reductions = {
        "sum": lambda x, dim, keep: x.sum() if dim is None else x.sum(dim, keepdim=keep),
        "mean": lambda x, dim, keep: x.mean() if dim is None else x.mean(dim, keepdim=keep),
        "var": lambda x, dim, keep: x.var() if dim is None else x.var(dim, keepdim=keep),
        "std": lambda x, dim, keep: x.std() if dim is None else x.std(dim, keepdim=keep),
        "max": lambda x, dim, keep: x.max() if dim is None else x.max(dim, keepdim=keep),
        "min": lambda x, dim, keep: x.min() if dim is None else x.min(dim, keepdim=keep),
        "argmax": lambda x, dim, keep: x.argmax() if dim is None else x.argmax(dim,
                                                                               keepdim=keep),
        "argmin": lambda x, dim, keep: x.argmin() if dim is None else x.argmin(dim,
                                                                               keepdim=keep),
    }
    for (name, fn), dtype, dim, keep in itertools.product(reductions.items(), DTYPES,
                                                          [None, 0, -1], [False, True]):
        if dim is None and keep:
            continue
        code = f"{dtype} 2x3 .{name}({'' if dim is None else f'{dim}, keepdim={keep}'})"
        found.append(Case(f"reductions/{code}", with_grads(
            lambda lib, x, fn=fn, dim=dim, keep=keep: fn(x, dim, keep), MATRIX[dtype]), code))
    for dtype, keep in itertools.product(DTYPES, [False, True]):
        code = f"{dtype} 2x3 .logsumexp(1, keepdim={keep})"
        found.append(Case(f"reductions/{code}", with_grads(
            lambda lib, x, keep=keep: x.logsumexp(1, keepdim=keep), MATRIX[dtype]), code))
    for dtype, name in itertools.product(DTYPES, ["all", "any"]):
        code = f"{dtype} 2x3 .{name}()"
        found.append(Case(f"reductions/{code}", with_grads(
            lambda lib, x, name=name: getattr(x, name)(), MATRIX[dtype]), code))
    return found


UNARY = {
    "-x": lambda lib, x: -x, "x.abs()": lambda lib, x: x.abs(), "x.exp()": lambda lib, x: x.exp(),
    "x.log()": lambda lib, x: x.log(), "x.sqrt()": lambda lib, x: x.sqrt(),
    "x.tanh()": lambda lib, x: x.tanh(), "x.sigmoid()": lambda lib, x: x.sigmoid(),
    "x.relu()": lambda lib, x: x.relu(), "x.square()": lambda lib, x: x.square(),
    "lib.exp(x)": lambda lib, x: lib.exp(x), "F.softmax(x, -1)":
        lambda lib, x: lib.nn.functional.softmax(x, -1),
    "x.float()": lambda lib, x: x.float(), "x.double()": lambda lib, x: x.double(),
    "x.long()": lambda lib, x: x.long(), "x.to(lib.float64)": lambda lib, x: x.to(lib.float64),
    "x.to(lib.int64)": lambda lib, x: x.to(lib.int64), "x.pow(2)": lambda lib, x: x.pow(2),
    "x @ x": lambda lib, x: x @ x,
}


def unary_cases():
    return [Case(f"unary-dtypes/{code} [{d}]", with_grads(fn, OPERANDS[f"{d}[3]"]), code)
            for (code, fn), d in itertools.product(UNARY.items(), DTYPES)]


def matmul_cases():
    found = []
    for a, b in itertools.product(DTYPES, repeat=2):
        code = f"{a} 2x3 @ {b} [3]"
        found.append(Case(f"dtypes/{code}", with_grads(
            lambda lib, x, y: x @ y, MATRIX[a], OPERANDS[f"{b}[3]"]), code))
    return found


def cases(full=False):
    """Every dtype case (`full`: all six comparisons)."""
    return (binary_cases(full) + inplace_cases() + cat_cases() + reduction_cases()
            + unary_cases() + matmul_cases())
