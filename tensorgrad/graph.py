"""The recorded graph and the backward pass over it.

Each op applied to a tensor that requires grad records a `Node`: the op, its attributes,
what its gradient rules read (and the inputs that need no gradient: constants, which
drawings and generated code replay), and the nodes that made its inputs. Leaves that
require grad have a node too, with no op. A Tensor points to its node; nodes point only
backwards, to their parents, so the graph has no cycles and is freed as soon as nothing
refers to its output.

Nodes, not tensors, form the graph so that an in-place change of a tensor (`t += 1`,
`t[i] = v`) can give the tensor a new node while the ops that read the old value keep
pointing at the old one.
"""
import heapq
import itertools
import operator
import sys
import weakref

import numpy as np

from .arrays import unbroadcast
from .grad_mode import _keeping_grads, _keeping_values, check_finite, module_call
from .versions import _changes, check_unchanged

_sequence = itertools.count()


class Node:
    """One recorded op application (or, with `op` None, a leaf that requires grad).

    `parents[i]` is the node of input i, or None when that input needs no gradient.
    `inputs[i]` is input i's array if the node keeps it (a gradient rule reads it, or it is
    a constant), else None; `out` and `extras` likewise. `out_shape` and `out_dtype`
    describe the output; `shapes` and `dtypes` every input.
    `seq` numbers nodes in the order they were made, so a node's number is larger than its
    parents'. `tensor` is a weak reference to the tensor whose `.grad` receives this node's
    gradient: set for leaves and for tensors that called `retain_grad()`. `name` is the name
    of the tensor it made (`Tensor.name`), for drawing. `grad` is the node's gradient from
    the latest backward pass, kept only inside `keep_grads()`. `module_call` is the module
    call that recorded the op (`grad_mode.module_call`), for drawings' frames.
    """

    __slots__ = ("op", "attrs", "plan", "inputs", "out", "extras", "out_shape", "out_dtype",
                 "parents", "tensor", "name", "grad", "used", "released", "made_at", "site",
                 "seq", "module_call")

    def __init__(self, op, attrs, arrays, out, extras, parents):
        self.op, self.attrs, self.parents = op, attrs, parents
        self.plan = plan = kept(op, parents) if op is not None else LEAF
        self.inputs = plan.keep(arrays + (None,))
        self.out = out if plan.out else None
        self.extras = extras if plan.extras else None
        self.out_shape, self.out_dtype = out.shape, out.dtype
        self.tensor = self.name = self.grad = self.site = None   # site: set in anomaly mode
        self.used = self.released = False
        self.made_at, self.module_call = _changes[0], module_call[0]
        self.seq = next(_sequence)                # made after its parents: a larger number

    @property
    def shapes(self):
        """The inputs' shapes: that of each parent's output, or, for an input that needs no
        gradient (no parent), of its array, which the node keeps."""
        return tuple(a.shape if p is None else p.out_shape
                     for a, p in zip(self.inputs, self.parents))

    @property
    def dtypes(self):
        """The inputs' dtypes, in the same way."""
        return tuple(a.dtype if p is None else p.out_dtype
                     for a, p in zip(self.inputs, self.parents))

    def __repr__(self):
        return f"<{self.op.name if self.op else 'leaf'} node>"


def leaf_node(tensor):
    """The node of a leaf tensor that requires grad: its gradient goes to `tensor.grad`."""
    node = Node(None, None, (), tensor._data, None, ())
    node.tensor = weakref.ref(tensor)
    node.name = tensor.name
    return node


# ---------------------------------------------------------------- what a node keeps

class Plan:
    """What a node of one op keeps, for one pattern of which inputs need a gradient (`need`):
    `inputs` (a flag per input; `keep`, a function that picks those), `out`, `extras` (all
    of an op's extras, which are values its rules read); `releases`, whether that is
    more than the constants (the inputs that need no gradient, which `constants` picks).
    With `everything`, it keeps every input and output (keep_grads, codegen's tracing).

    And how input i's gradient rule is called on a node, written out once: `sources[i]`,
    `"lambda node, g: rule(g, node.inputs[1])"` for `Mul.grad_a`, is the source of
    `calls[i]`; `fetch[i](node)` gives the same arguments as a list."""

    def __init__(self, op, need, everything=False):
        reads = set()
        for i, needed in enumerate(need):
            if needed:
                reads.update(op.reads[0 if op.variadic else i])
        names = op.inputs if not op.variadic else ()
        self.inputs = tuple(not needed or (k < len(names) and names[k] in reads)
                            for k, needed in enumerate(need))
        self.out = everything or "out" in reads
        self.extras = any(everything or e in reads for e in op.extras)
        if self.extras or everything:   # (a recorded backward pass computes the extras again
            self.inputs = (True,) * len(need)                              # from the inputs)
        self.releases = everything or self.out or self.extras or any(
            k and needed for k, needed in zip(self.inputs, need))
        self.keep = _picker(self.inputs)
        self.constants = _picker([not needed for needed in need])
        arguments = [", ".join(argument_sources(op, i, need)) for i in range(len(need))]
        self.sources = [f"lambda node, g: rule(g, {a})" for a in arguments]
        self.calls = [eval(source, {"rule": op.grads[0 if op.variadic else i]})
                      for i, source in enumerate(self.sources)]
        self.fetch = [eval(f"lambda node: [{a}]", {}) for a in arguments]


def _picker(flags):
    """A function of `arrays + (None,)` that gives `arrays` with None where `flags` is
    false: the kept inputs picked by position, the None at the end for the others, in one
    C call whatever the pattern (for one input, a slice, so that it too gives a tuple)."""
    n = len(flags)
    picks = [k if flag else n for k, flag in enumerate(flags)]
    if n == 1:
        return operator.itemgetter(slice(picks[0], picks[0] + 1))
    return operator.itemgetter(*picks)


class _Leaf:
    """The plan of a leaf's node: it keeps nothing (its tensor holds the value)."""
    out = extras = releases = False

    def keep(self, arrays):
        return ()


LEAF = _Leaf()


def kept(op, parents):
    """The Plan of a node of `op` whose inputs have these `parents`: what their gradient
    rules read, and the inputs that need none. Worked out once per op and pattern."""
    need = tuple(map(bool, parents))            # a node is true, None false
    if _keeping_values[-1]:                     # keep_grads(), or codegen tracing: keep
        return _everything(op, need)            # everything, to draw or write every value
    plan = op._kept.get(need)
    if plan is None:
        plan = op._kept[need] = Plan(op, need)
    return plan


def _everything(op, need):
    """The Plan that keeps every input and output (for keep_grads and codegen's tracing)."""
    plan = op._kept.get(("all",) + need)
    if plan is None:
        plan = op._kept[("all",) + need] = Plan(op, need, everything=True)
    return plan


def rule_arguments(node, i, inputs=None, out=None, extras=None):
    """The arguments of the gradient rule of input `i` of `node`, besides `g`, by the names
    of its parameters (ops.py says what each name means): the node's own values, or the
    `inputs`, `out` and `extras` given in their place (stand-ins, to write the rule out)."""
    if inputs is not None or out is not None or extras is not None:
        node = _Substituted(node, inputs, out, extras)
    return node.plan.fetch[i](node)


class _Substituted:
    """A node's look-alike with some of its values replaced."""

    def __init__(self, node, inputs, out, extras):
        self.plan, self.attrs, self.parents = node.plan, node.attrs, node.parents
        self.shapes, self.dtypes = node.shapes, node.dtypes
        self.inputs = node.inputs if inputs is None else inputs
        self.out = node.out if out is None else out
        self.extras = node.extras if extras is None else extras


def argument_sources(op, i, need):
    """The expression that fetches each argument of input i's gradient rule from a node
    (`node`), by the parameter's name: worked out once per op, input and pattern of inputs
    that need a gradient (`need`: the shape or dtype of such an input is its parent's
    output's)."""
    names, sources = op.inputs, []
    for name in op.reads[0 if op.variadic else i]:
        meta = name.endswith(("_shape", "_dtype")) and name[:-6] in names
        what = name[-5:]                                        # shape or dtype
        k = names.index(name[:-6]) if meta and not op.variadic else None
        if name == "out":
            sources.append("node.out")
        elif name == "i" and op.variadic:
            sources.append(str(i))
        elif name in names:
            sources.append(f"node.inputs[{names.index(name)}]")
        elif meta and op.variadic:
            sources.append(f"node.{what}s")
        elif meta and need[k]:
            sources.append(f"node.parents[{k}].out_{what}")
        elif meta:
            sources.append(f"node.{what}s[{k}]")
        elif name in op.extras:
            sources.append(f"node.extras[{name!r}]")
        else:
            sources.append(f"node.attrs[{name!r}]")
    return sources


def placeholder(shape, dtype):
    """An array of zeros of `shape` and `dtype` that takes no memory (one value, broadcast):
    a stand-in where only the shape and dtype matter."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def sent_shape(node, i):
    """The shape of what input i's gradient rule returns (the output's, for an op that
    broadcasts): found by running the rule on placeholders of the right shapes, as it does
    not depend on the values. Drawings and generated code use it to show the sums that
    undo broadcasting."""
    inputs = [placeholder(s, d) for s, d in zip(node.shapes, node.dtypes)]
    g = out = placeholder(node.out_shape, node.out_dtype)
    rule = node.op.grads[0 if node.op.variadic else i]
    with np.errstate(all="ignore"):
        extras = node.extras
        if extras is None and node.op.extras:     # let go by backward: the forward on the
            _, *side = node.op.forward(*inputs, **node.attrs)    # placeholders shapes them
            extras = dict(zip(node.op.extras, side))
        extras = {k: _placeholders(v) for k, v in (extras or {}).items()}
        return np.shape(rule(g, *rule_arguments(node, i, inputs, out, extras)))


def _placeholders(value):
    """Placeholders for every array in `value` (an array, or a dict of arrays)."""
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    return placeholder(np.shape(value), getattr(value, "dtype", np.float64))


# ---------------------------------------------------------------- order and backward

def topological_order(root):
    """Every node `root` depends on, each after all of its parents: in the order they were
    made (`seq`), which is the order the backward pass visits them in, reversed.

    Found with an explicit stack instead of recursion: a chain of 100,000 ops is as easy
    as ten.
    """
    seen, stack = {root}, [root]
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=operator.attrgetter("seq"))


def backpropagate(roots, retain_graph=False, only=None, rule=None, store=None):
    """Backpropagate from `roots`, a dict {node: the gradient of some result with respect
    to that node's output} (one root for `loss.backward()`).

    A node's gradient is complete once every node that used it has been visited. Every such
    user was made after it, so taking the waiting nodes latest-made first (a heap on `seq`)
    is an order that guarantees this, without sorting the whole graph. For each node, ask
    its op for each input's gradient, sum that down to the input's shape (unbroadcast), and
    add it to what the input has received so far.

    Finished gradients go to the `.grad` of leaves and retained tensors (`store`, by
    default `deliver`). With `only` (a set of nodes), they go nowhere: the pass visits
    only the nodes that lead to those, and returns {node: gradient} for them
    (`autograd.grad`). `rule(node, i, g)`, when given, computes an input's gradient in
    place of the op's rule (higher.py passes one that records the backward pass in the
    graph).
    """
    store = store or deliver
    grads, keep = dict(roots), _keeping_grads[-1]
    leads = _leading_to(roots, only) if only is not None else None
    got = {}
    waiting = [(-root.seq, root) for root in grads]
    heapq.heapify(waiting)
    while waiting:
        node = heapq.heappop(waiting)[1]
        g = grads.pop(node)
        if keep:
            node.grad = g
        if only is not None:
            if node in only:
                got[node] = g
        elif node.tensor is not None:
            store(node.tensor(), g)
        if node.op is None:
            continue
        if node.released or _changes[0] != node.made_at:
            check_usable(node)
        for i, parent in enumerate(node.parents):
            if parent is None or (leads is not None and parent not in leads):
                continue
            pg = node.plan.calls[i](node, g) if rule is None else rule(node, i, g)
            pg = unbroadcast(pg, parent.out_shape)
            if node.site is not None:
                check_finite(node.op.name, f"backward (input {i})", [g], pg, node.site)
            if parent in grads:
                grads[parent] = add_gradients(grads[parent], pg)
            else:
                grads[parent] = pg
                heapq.heappush(waiting, (-parent.seq, parent))
            pg = None           # held by `grads` alone, as deliver's reference count expects
        node.used = True
        if node.plan.releases and not (retain_graph or keep):
            release(node)
    return got


def add_gradients(total, g):
    """`total + g`: the gradients of one node from two of its uses, added up.

    Written into `total` when nothing but the backward pass holds that array: its memory is
    its own (`_owns_memory`) and its reference count is that of the dict of gradients, this
    argument and getrefcount's own (the test `deliver` makes; numpy makes it before reusing
    a temporary).
    The sum is the same; what is saved is a new array for each use after the first, which
    for the large step's hidden layer (4096 x 1024, three uses) is two 16 MB arrays.
    """
    if (type(total) is np.ndarray and type(g) is np.ndarray and total.dtype == g.dtype
            and total.shape == g.shape and total.flags.writeable
            and sys.getrefcount(total) <= 3 and _owns_memory(total)):
        return np.add(total, g, out=total)
    return total + g


def _owns_memory(array):
    """Whether `array`'s memory is its own: it owns it, or it is a C-contiguous view of all
    of an array that does and that nothing else holds (`array.base`, `base` here and
    getrefcount's own), as the reshaped sum of unbroadcast is. With the reference count of
    `array` itself, the test `add_gradients` and `deliver` make before reusing an array."""
    base = array.base
    if base is None:
        return True
    return (type(base) is np.ndarray and base.flags.owndata and array.flags.c_contiguous
            and array.nbytes == base.nbytes and sys.getrefcount(base) <= 3)


def _leading_to(roots, targets):
    """The nodes from which some node of `targets` can be reached (itself included): the
    only ones a backward pass to `targets` needs to visit."""
    order = set()
    for root in roots:
        order.update(topological_order(root))
    leads = set()
    for node in sorted(order, key=operator.attrgetter("seq")):
        if node in targets or any(p in leads for p in node.parents if p is not None):
            leads.add(node)
    return leads


def check_usable(node):
    """Refuse a node whose kept arrays an earlier backward let go of, or that were changed in
    place since it was made."""
    if node.released:
        raise RuntimeError(
            f"backward: the graph through '{node.op.name}' was already used by an earlier "
            "backward(), which let go of the values it kept; call backward(retain_graph=True) "
            "the first time to go through it again, or run the forward pass anew")
    if _changes[0] != node.made_at:
        check_unchanged(node)


def release(node):
    """Let go of what the backward pass read, as PyTorch frees its saved tensors, so that a
    loss kept after backward holds little memory. The constants stay (drawings and
    generated code replay them). Called only for a node that kept more than constants
    (`plan.releases`); one that kept nothing else can be used again."""
    node.released = True
    node.inputs = node.plan.constants(node.inputs + (None,))
    node.out = node.extras = None


def deliver(tensor, g):
    """Add a finished gradient to `tensor.grad`, as an array of its own.

    Gradients may alias each other (an add passes the same array to both inputs), so `g`
    is copied, unless nothing but the backward pass holds its memory: the test numpy makes
    before reusing a temporary array, on reference counts. `g` itself is held by the
    caller's variable, this function's argument and getrefcount's own; its memory must be
    its own (`_owns_memory`).
    """
    if tensor is None:
        return
    dtype = tensor._data.dtype
    if type(g) is not np.ndarray or g.dtype != dtype:
        g = np.array(g, dtype=dtype)
    elif sys.getrefcount(g) > 3 or not _owns_memory(g):
        g = g.copy()
    if g.shape != tensor._data.shape:
        raise RuntimeError(f"backward: a gradient of shape {g.shape} for a tensor of shape "
                           f"{tensor._data.shape}: its values were replaced (.data = ...) "
                           "after the graph was recorded")
    old, g = tensor.grad, type(tensor)._wrap(g, None)
    if old is not None and old._node is not None:
        g = old + g             # a gradient recorded in the graph (create_graph) stays in it
    elif old is not None:
        g._data = old._data + g._data
    tensor.grad = g
