"""Indexing: every index form, alone and combined, for getitem (values and gradients) and
setitem (`y[index] = v` on a tensor in the graph, values and gradients of y's source and v).

Index atoms (ints, negative ints, slices with steps, None, Ellipsis, lists, int tensors,
boolean masks, 0-d and Python bools, out-of-range and float indices) are combined: every
atom alone, every pair from a smaller set, and seeded random triples. PyTorch decides what
each combination means, including where it differs from numpy: an int next to an advanced
index is a basic index in PyTorch (`x[0, :, [0, 1]]` has shape (4, 2)), an advanced one in
numpy (shape (2, 4)).
"""
import itertools

import numpy as np

from .harness import Case, backprop, seed_of

SHAPE = (3, 4, 5)
X = np.random.default_rng(7).standard_normal(SHAPE)


class Atom:
    """One item of an index: its text, how to make it for a library, and how many of the
    indexed tensor's dims it consumes (None and 0-d bools: 0; Ellipsis: the rest)."""

    def __init__(self, text, make, dims=1, repeats=False):
        self.text, self.make, self.dims, self.repeats = text, make, dims, repeats

    def __repr__(self):
        return self.text


def constant(value, text=None):
    return Atom(text or repr(value), lambda lib, size: value)


def tensor_atom(values, text=None, dims=1, repeats=False):
    return Atom(text or f"tensor({values})", lambda lib, size: lib.tensor(values), dims,
                repeats)


def mask_atom():
    """A boolean mask as long as the dim it lands on: T, F, T, F, ..."""
    def make(lib, size):
        return lib.tensor([i % 2 == 0 for i in range(size)])
    return Atom("mask", make)


ELLIPSIS = Atom("...", lambda lib, size: Ellipsis, dims=None)
NONE = Atom("None", lambda lib, size: None, dims=0)

ATOMS = [
    constant(0), constant(1), constant(-1), constant(2),
    constant(slice(None), ":"), constant(slice(1, None), "1:"), constant(slice(None, 2), ":2"),
    constant(slice(None, None, 2), "::2"), constant(slice(1, None, 2), "1::2"),
    constant(slice(-2, None), "-2:"), constant(slice(0, 0), "0:0"),
    constant(slice(1, 100), "1:100"),
    NONE, ELLIPSIS,
    constant([0, 1], "[0,1]"), Atom("[1,1,0]", lambda lib, size: [1, 1, 0], repeats=True),
    constant([-1, 0], "[-1,0]"),
    tensor_atom([0, 2]), tensor_atom([[0], [1]], "tensor([[0],[1]])"),
    tensor_atom(1, "tensor(1)"), tensor_atom([1, 1], repeats=True),
    mask_atom(), tensor_atom(True, "tensor(True)", dims=0),
    tensor_atom(False, "tensor(False)", dims=0),
    Atom("True", lambda lib, size: True, dims=0), Atom("False", lambda lib, size: False, dims=0),
    constant(7), constant([0, 9], "[0,9]"), tensor_atom([-9]),
    constant(1.0), tensor_atom([0.5]),
]
PAIR_ATOMS = [a for a in ATOMS if a.text in (
    "0", "-1", ":", "1::2", "0:0", "None", "...", "[0,1]", "[1,1,0]", "tensor([0, 2])",
    "tensor([[0],[1]])", "tensor(1)", "mask", "tensor(True)", "False", "7")]
RANDOM_ATOMS = [a for a in ATOMS if a.text not in ("1.0", "tensor([0.5])", "7", "[0,9]",
                                                   "tensor([-9])")]


def build(lib, atoms, shape=SHAPE):
    """The index for `lib`: the atoms' objects, masks sized to the dims they land on."""
    sizes = []
    dim = 0
    for k, a in enumerate(atoms):
        if a.dims is None:                      # Ellipsis: skip to the dims the rest need
            rest = sum(b.dims or 0 for b in atoms[k + 1:])
            dim = max(dim, len(shape) - rest)
            sizes.append(0)
            continue
        sizes.append(shape[dim] if dim < len(shape) else 3)
        dim += a.dims
    items = [a.make(lib, n) for a, n in zip(atoms, sizes)]
    return items[0] if len(items) == 1 and not isinstance(atoms, tuple) else tuple(items)


def text(atoms):
    return ",".join(a.text for a in atoms)


MIXED_ATOMS = [a for a in ATOMS if a.text in (
    "0", "tensor(1)", ":", "1:", "[0,1]", "tensor([0, 2])", "mask")]


def combinations(random_count):
    """(atoms, as a tuple or a single atom) for every case: singles, pairs, every triple of
    ints, slices and advanced indices (where PyTorch and numpy order dims differently), and
    seeded random triples of any atoms."""
    found = [[a] for a in ATOMS]                                   # x[atom]
    found += [tuple(p) for p in itertools.product(PAIR_ATOMS, repeat=2)]
    found += [tuple(p) for p in itertools.product(MIXED_ATOMS, repeat=3)]
    rng = np.random.default_rng(seed_of("index triples"))
    seen = {text(atoms) for atoms in found}
    for _ in range(random_count):
        atoms = tuple(RANDOM_ATOMS[i] for i in rng.choice(len(RANDOM_ATOMS), 3))
        while text(atoms) in seen:
            atoms = tuple(RANDOM_ATOMS[i] for i in rng.choice(len(RANDOM_ATOMS), 3))
        seen.add(text(atoms))
        found.append(atoms)
    return found


def selects_twice(atoms):
    """Whether the index picks some element more than once (setitem is then ill-defined:
    which write wins is unspecified in PyTorch)."""
    if any(a.repeats for a in atoms):
        return True
    try:
        picked = np.arange(X.size).reshape(SHAPE)[build(NumpyLib, atoms)]
    except (IndexError, TypeError, ValueError):
        return False
    return np.unique(picked).size != np.size(picked)


class NumpyLib:
    """Enough of a library for `build` to make numpy indices."""
    tensor = staticmethod(np.array)


# ---------------------------------------------------------------- programs

def getitem(atoms):
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        out = x[build(lib, atoms)]
        backprop(lib, out)
        return {"out": out, "x.grad": x.grad}
    return run


def setitem(atoms, value):
    """`y = x * 1; y[index] = v`. value: 'number' (2.5), 'scalar' (a 0-d tensor requiring
    grad), 'shaped' (a tensor of the selection's shape requiring grad), or 'fresh' (y a
    new tensor of zeros outside the graph, v shaped)."""
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        w = lib.tensor(np.linspace(-2, 3, 400), requires_grad=True)
        index = build(lib, atoms)
        y = lib.zeros(*SHAPE, dtype=lib.float64) if value == "fresh" else x * 1
        if value == "number":
            v = 2.5
        elif value == "scalar":
            v = w[7]
        else:
            shape = tuple(y[index].shape)
            v = w[:int(np.prod(shape))].reshape(shape)
        y[index] = v
        backprop(lib, y)
        return {"y": y, "x.grad": x.grad, "w.grad": w.grad}
    return run


def single_or_tuple(atoms):
    return list(atoms)[0] if isinstance(atoms, list) else atoms


def cases(random_count=200, full=False):
    """The indexing cases: getitem for every combination, setitem for most (values of
    every kind for single atoms, and for pairs too when `full`)."""
    found = []
    for atoms in combinations(random_count):
        code = f"x[{text(atoms)}]"
        found.append(Case(f"index/{code}", getitem(atoms), f"x = {SHAPE} float64; {code}"))
        if selects_twice(atoms):
            continue
        values = ["shaped"]
        if isinstance(atoms, list) or (full and atoms in PAIR_SET):
            values += ["scalar", "fresh"]
        if isinstance(atoms, list):
            values += ["number"]
        for v in values:
            setcode = f"y[{text(atoms)}] = {v}"
            found.append(Case(f"setitem/{setcode}", setitem(atoms, v),
                              f"x = {SHAPE} float64; y = x * 1; {setcode}"))
    found += special_cases()
    return found


PAIR_SET = set(itertools.product(PAIR_ATOMS, repeat=2))


def special_cases():
    """Forms named in the brief of the sweep, and the nested-list index PyTorch reads as a
    tuple today (with a deprecation warning) and as a tensor index in the future."""
    found = []
    brief = {
        "x[0,:,[0,1]]": (0, slice(None), [0, 1]),
        "x[[0,1],:,[1,2]]": ([0, 1], slice(None), [1, 2]),
        "x[:,idx] idx=[2,0,2,2]": (slice(None), "idx"),
        "x[idx,1:,idx] idx=[2,0,2,2]": ("idx", slice(1, None), "idx"),
        "x[None,0,...,[1,1]]": (None, 0, Ellipsis, [1, 1]),
    }
    for name, index in brief.items():
        def run(lib, index=index):
            x = lib.tensor(X, requires_grad=True)
            idx = lib.tensor([2, 0, 2, 2])
            out = x[tuple(idx if i == "idx" else i for i in index)]
            backprop(lib, out)
            return {"out": out, "x.grad": x.grad}
        found.append(Case(f"index/brief {name}", run, name))

    def nested(lib):
        x = lib.tensor(X, requires_grad=True)
        out = x[[[0, 1], [1, 0]]]
        backprop(lib, out)
        return {"out": out, "x.grad": x.grad}

    def nested_reference(torch):
        x = torch.tensor(X, requires_grad=True)
        out = x[torch.tensor([[0, 1], [1, 0]])]
        backprop(torch, out)
        return {"out": out, "x.grad": x.grad}

    found.append(Case("index/x[[[0,1],[1,0]]] nested list", nested, "x[[[0, 1], [1, 0]]]",
                      reference=nested_reference,
                      note="PyTorch 2.x reads a lone nested list as a tuple of indices "
                                "with a deprecation warning and will read it as one tensor "
                                "index, as numpy and tensorgrad do; the future meaning is "
                                "the reference"))
    return found
