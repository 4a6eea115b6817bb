"""`generate`: the graph ending in a loss, as the source of one Python function."""
import builtins
import inspect
import re

import numpy as np

from ..graph import topological_order
from .hooks import traced_effects
from ..graph import sent_shape
from ..tensor import Tensor
from .emitter import Emitter, compute_once, free_early, identifier
from .rules import (CodegenError, forward_source, grad_source, unbroadcast_source,
                    unstretched)


class Program:
    """Generated source and the function made from it.

    `function(*arrays)` takes the leaves' arrays (`leaves`, the tensors that require grad)
    then the constant inputs (`args`) and returns the loss followed by one gradient per
    leaf. `source` is the text; `globals` what it needs besides numpy (empty for
    standalone code).
    """

    def __init__(self, source, fname, leaves, leaf_names, args, globals_):
        self.source, self.fname = source, fname
        self.leaves, self.leaf_names, self.args, self.globals = leaves, leaf_names, args, globals_
        namespace = {"np": np, **globals_}
        exec(builtins.compile(source, f"<tensorgrad.codegen {fname}>", "exec"), namespace)
        self.function = namespace[fname]

    def __str__(self):
        return self.source

    def __call__(self, *arrays):
        return self.function(*arrays)


def generate(loss, inputs=None, fname="forward_backward", standalone=True, constants=None,
             checks=()):
    """The forward and backward pass of the graph ending in `loss`, as a Program.

    `loss` is a tensor with a recorded graph (a single element: its gradient starts at 1).
    `inputs` names the constant arrays the graph reads, such as the batch's indices:
    `{"Xb": Xb, "Yb": Yb}` (tensors or arrays, matched by identity); others become
    arguments named `const`, `index`, ... Tensors are named by their `.name`
    (`tensorgrad.viz.name_tensors(locals())` names them all), unnamed ones `t1`, `t2`.
    With `standalone` (the default) the code needs only numpy, and an op with no source
    form raises CodegenError naming it; otherwise such ops are called through the op table.
    `constants` decides which other arrays may be written into the code (`Emitter.const`).
    `checks` are the calls of value checks made while the graph was recorded, as
    (function, {parameter: argument}): code run again on new values makes them again
    (`Emitter.repeat_check`); standalone code leaves them out.
    """
    root = loss._node
    if root is None or root.op is None:
        raise ValueError("generate: the loss has no recorded graph (does anything it is "
                         "computed from require grad?)")
    e = Emitter(inputs or {}, standalone, constants)
    order = topological_order(root)
    var = {}
    leaves = []                             # in the order the forward first reads them
    for node in order:
        leaves += [p for p in node.parents if p is not None and p.op is None and p not in leaves]
    leaves += [n for n in order if n.op is None and n not in leaves]
    leaf_names = [e.fresh(identifier(n.name, f"p{k}")) for k, n in enumerate(leaves, 1)]
    var.update(zip(leaves, leaf_names))
    for node, name in zip(leaves, leaf_names):
        if node.tensor is not None and node.tensor() is not None:
            e.values[id(node.tensor()._data)] = name

    e.line("# forward pass")
    count = 0
    for node in order:
        if node.op is None:
            continue
        count += 1
        base = identifier(node.name, f"t{count}") if node.name else f"t{count}"
        inputs_src = [var[p] if p is not None else e.const(a)
                      for p, a in zip(node.parents, node.inputs)]
        expr = forward_source(e, node, inputs_src)
        if expr is not None and re.fullmatch(r"\w+", expr) and e.lines[-1].startswith(
                f"{expr} = "):                  # a fused op's last statement made it
            name = var[node] = expr
            e.lines[-1] = f"{e.lines[-1]:<48s}  # {node.out_shape}"
        elif expr is not None:
            name = var[node] = e.fresh(base)
            e.line(f"{name} = {expr}", node.out_shape)
        else:                                   # setitem: a copy, then the assignment
            name = var[node] = e.fresh(base)
            e.line(f"{name} = {inputs_src[0]}.copy()", node.out_shape)
            e.line(f"{name}[{e.index(node.attrs['index'])}] = {inputs_src[1]}")
        if node.out is not None:
            e.values[id(node.out)] = name           # for an op outside the graph that reads it

        for function, array, arguments in traced_effects:
            if array is node.out:
                _effect(e, function, node, arguments)

    if not e.standalone:
        for check, arguments in checks:
            e.repeat_check(check, arguments)
    e.line("")
    e.line("# backward pass")
    dname, borrowed = {}, set()
    rootg = e.fresh("d" + var[root])
    e.line(f"{rootg} = np.ones({root.out_shape}, np.{root.out_dtype})", root.out_shape)
    dname[root] = rootg
    for node in reversed(order):
        if node.op is None or node not in dname:
            continue
        g = dname[node]
        inputs_src = [var[p] if p is not None else e.const(a)
                      for p, a in zip(node.parents, node.inputs)]
        for i, parent in enumerate(node.parents):
            if parent is None:
                continue
            expr = grad_source(e, node, i, g, var[node], inputs_src)
            expr = unbroadcast_source(expr, sent_shape(node, i), node.shapes[i])
            shape = node.shapes[i]
            if parent in borrowed:              # its own name, before adding to it
                borrowed.discard(parent)
                own = e.fresh("d" + var[parent])
                e.line(f"{own} = {dname[parent]} + {expr}", shape)
                dname[parent] = own
            elif parent in dname:
                e.line(f"{dname[parent]} = {dname[parent]} + {unstretched(expr, shape)}", shape)
            elif expr in dname.values() and parent.name is None:
                dname[parent] = expr            # an unnamed intermediate passes g on as is
                borrowed.add(parent)
            else:
                dname[parent] = e.fresh("d" + var[parent])
                e.line(f"{dname[parent]} = {expr}", shape)

    returned = [var[root]] + [dname.get(n, f"np.zeros_like({var[n]})") for n in leaves]
    e.line(f"return {', '.join(returned)}")
    e.lines = e.prologue + e.lines
    if not e.standalone:
        e.lines = free_early(compute_once(e.lines, e.used))
    params = leaf_names + [a for a, _ in e.args]
    doc = ('    """The forward pass and the gradient of each leaf, as the engine computes '
           'them."""\n')
    source = (f"def {fname}({', '.join(params)}):\n" + doc
              + "\n".join(("    " + ln) if ln else "" for ln in e.lines) + "\n")
    if e.helpers:
        source = "\n\n".join([*(inspect.getsource(f) for f in e.helpers.values()), source])
    leaf_tensors = [n.tensor() if n.tensor is not None else None for n in leaves]
    program = Program(source, fname, leaf_tensors, leaf_names, e.args, e.globals)
    program.effects = e.effects
    return program


def _effect(e, function, node, arguments):
    """A call that updates state outside the graph from what a fused op's forward computed
    (batchnorm's running statistics from the batch mean and variance), as the forward did."""
    if e.standalone or node not in e.saved:
        raise CodegenError(f"codegen: '{function.__name__}' updates state outside the graph; "
                           "standalone code cannot do that yet (compile() can)")
    call = e.globals_name(function, function.__name__)
    steps = e.steps_of.get(node)                # the op's steps, once for all its updates
    if steps is None:
        steps = e.steps_of[node] = e.fresh(f"{e.values.get(id(node.out), 't')}_steps")
        e.line(f"{steps} = dict({', '.join(f'{k}={v}' for k, v in e.saved[node].items())})")
    args = ", ".join(e.globals_name(a, "state") if isinstance(a, Tensor) else repr(a)
                     for a in arguments)
    e.line(f"{call}({steps}, {args})")
    e.effects.extend(a for a in arguments if isinstance(a, Tensor))
