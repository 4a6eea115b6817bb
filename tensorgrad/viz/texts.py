"""What a drawing says about each tensor and op, as plain text: names, values rounded as
PyTorch prints them, op titles and gradient rules. The picture (drawing.py), the text view
(text.py) and the page (page.py) all read them from here."""
import re

import numpy as np

from ..nn import Module
from ..source import gradient_texts
from ..tensor import Tensor, named_tensors


# ---------------------------------------------------------------- names

def name_tensors(namespace, overwrite=False):
    """Name each tensor in `namespace` (a dict such as `locals()`) after its key.

    Modules name their parameters with dotted names ("model.hidden.weight"). A tensor that
    already has a name keeps it unless `overwrite`. Returns how many tensors were named.
    Inputs that need no gradient (`x`, `Xb`, targets) are named too: a drawing labels
    them where an op reads them, and an index array where it picks (`index[Xb]`).
    """
    count = 0
    for name, tensor in named_tensors_in(namespace):
        if tensor.name is None or overwrite:
            tensor.name = name
            count += 1
    return count


def live_names(extra):
    """({graph node: the array of a named tensor that it made}, {id(array): name}): the
    live tensors that have a name (`Tensor.name`, `name_tensors`), and `extra`, tensors
    given to draw. A graph keeps only what its gradients read and, of an input that needs
    no gradient, only the array: drawings take values and names from these tensors."""
    values, names = {}, {}
    for t in list(named_tensors) + list(extra):
        if t.name:
            names.setdefault(id(t._data), t.name)
        if t._node is not None:
            values[t._node] = t._data
    return values, names


def named_tensors_in(namespace):
    for key, value in dict(namespace).items():
        if isinstance(value, Tensor):
            yield key, value
        elif isinstance(value, Module):
            yield from ((f"{key}.{name}", p) for name, p in value.named_parameters())


# ---------------------------------------------------------------- formulas and labels

def gradient_formulas(node):
    """The gradient rule of each input of `node` that needs one, as {input: source}: the op
    table's own rule, written out (`source.gradient_texts`): `g * (1 - out * out)`. Rules
    that write into arrays (an index's scatter-add, max's routing) and fused ops (their
    sympy-derived kernels) show the statements generated code runs for them; an op defined
    by a formula (tensorgrad.symbolic) shows its derived derivative."""
    texts = gradient_texts(node)
    derived = getattr(node.op, "derivative", {})
    for name, parent in zip(node.op.inputs, node.parents):
        if parent is not None and name not in texts and name in derived:
            texts[name] = f"g * ({derived[name]})"
    names = input_names(node.op, len(node.parents))
    missing = [i for i, p in enumerate(node.parents) if p is not None and names[i] not in texts]
    if missing:
        texts.update(_generated_rules(node, names, missing))
    return {name: texts[name] for name in names if name in texts}      # in input order


def fused_forward(node):
    """The statements of a fused op's derived forward, as generated code writes them (the
    names its gradient rules read: `logprobs`, `bnraw`), or [] for other ops."""
    if not hasattr(node.op, "fused"):
        return []
    from ..codegen.emitter import Emitter
    from ..codegen.rules import forward_source
    e = Emitter({}, standalone=True)
    try:
        result = forward_source(e, node, input_names(node.op, len(node.parents)))
    except Exception:                       # noqa: BLE001 (a drawing never fails on a formula)
        return []
    return e.lines + [f"out = {result}"]


def _generated_rules(node, names, which):
    """{input name: source} of the gradient rules generated code writes for inputs `which`
    (codegen's form: its statements, then the gradient's expression, joined by '; ')."""
    from ..codegen.emitter import Emitter
    from ..codegen.rules import forward_source, grad_source
    e, texts = Emitter({}, standalone=True), {}
    try:
        if hasattr(node.op, "fused"):       # its rules read what its forward computed
            forward_source(e, node, names)
        for i in which:
            e.lines.clear()
            result = e.rewrite(grad_source(e, node, i, "g", "out", names))
            texts[names[i]] = "; ".join([line.split("  #")[0].rstrip() for line in e.lines]
                                        + [result])
    except Exception:                       # noqa: BLE001 (a drawing never fails on a formula)
        pass
    return texts


def rule_statements(name, text):
    """A gradient rule as statements that end by setting `d<name>`: `dx = g * out`. A rule
    that fills an array it made (`dx_scatter = np.zeros(...); np.add.at(dx_scatter, ...)`)
    fills `d<name>` itself."""
    *before, result = text.split("; ")
    target = f"d{name}"
    if result.isidentifier() and any(s.startswith(f"{result} = ") for s in before):
        word = re.compile(rf"\b{re.escape(result)}\b")
        return "; ".join(word.sub(target, s) for s in before)
    return "; ".join(before + [f"{target} = {result}"])


def input_names(op, count):
    """The names of an op's inputs ("a", "b" for `grad_a`, `grad_b`; "xs[0]", "xs[1]" for
    cat's list `xs`), or their positions."""
    if op.variadic:
        return [f"{op.inputs[0]}[{k}]" for k in range(count)]
    names = list(op.inputs)
    return names if len(names) == count else [str(i) for i in range(count)]


def number(value, digits=3):
    return format(float(value), f".{digits}g")


def _attr_text(value, names=None):
    """An op attribute (dims, shape, index, dtype ...) as short text; an array that is a
    named tensor's (in `names`, {id(array): name}) by its name."""
    if names and id(value) in names:
        return names[id(value)]
    if isinstance(value, np.ndarray):
        return number(value.item(), 4) if value.ndim == 0 else f"{value.dtype} {value.shape}"
    if isinstance(value, slice):
        start, stop = ("" if v is None else str(v) for v in (value.start, value.stop))
        return f"{start}:{stop}" + ("" if value.step is None else f":{value.step}")
    if value is Ellipsis:
        return "..."
    if isinstance(value, tuple):
        inside = ", ".join(_attr_text(v, names) for v in value)
        return f"({inside},)" if len(value) == 1 else f"({inside})"
    if isinstance(value, list):
        return "[" + ", ".join(_attr_text(v, names) for v in value) + "]"
    return str(value)


def op_title(op, attrs, names=None):
    """'sum(dims=(1,), keepdim=True)', 'index[int64 (32,), Yb]', 'tanh' ... (arrays that
    are named tensors' by their names, `names` {id(array): name})."""
    attrs = dict(attrs or {})
    if "index" in attrs:
        index = attrs.pop("index")
        items = index if isinstance(index, tuple) else (index,)
        return f"{op.name}[{', '.join(_attr_text(i, names) for i in items)}]"
    shown = [str(v) if k == "call" else f"{k}={_attr_text(v, names)}"    # a fused op's numbers
             for k, v in attrs.items() if v is not None and v is not False and k != "saved"]
    shown = [text for text in shown if text]
    return f"{op.name}({', '.join(shown)})" if shown else op.name


MAX_VALUES = 16     # tensors up to this size show their values; larger ones, statistics


def values_text(array, max_values=MAX_VALUES):
    """An array as text lines, and whether it holds NaN or Inf: its values, rounded as
    PyTorch prints them (`[ 0.1235, -1.5000]`, `[1., 2.]`, `1.0000e-05`), when it has at most
    `max_values` elements (a scalar always), else mean, std, min and max over its finite
    values, after how many are NaN or Inf."""
    a = np.asarray(array)
    if a.size == 0:
        return ["empty"], False
    finite = np.isfinite(a) if a.dtype.kind in "fc" else np.ones(a.shape, bool)
    bad = a.size - int(finite.sum())
    if a.size <= max(max_values, 1):
        integral = a.dtype.kind == "f" and not bad and bool(np.all(a == np.round(a)))
        text = np.array2string(a, separator=", ", precision=4, max_line_width=80,
                               floatmode="maxprec" if integral else "fixed")
        return text.splitlines(), bad > 0
    if a.dtype.kind not in "fc":
        a = a.astype(np.float64)
    parts = []
    if bad:
        nans = int(np.isnan(a).sum())
        parts.append(", ".join(f"{n} {kind}" for n, kind in ((nans, "NaN"), (bad - nans, "Inf"))
                               if n) + f" (of {a.size})")
        a = a[finite]
    if a.size:
        parts.append(f"mean {number(a.mean(dtype=np.float64))}  "
                     f"std {number(a.std(dtype=np.float64))}  "
                     f"min {number(a.min())}  max {number(a.max())}")
    return ["  ".join(parts)], bad > 0


NOT_KEPT = "not kept (run the forward inside autograd.keep_grads() to see it)"
