"""The picture: each tensor a box, each op an ellipse, arrows following the data (or, in
the backward view, the gradient), with Graphviz; rendering it with the `dot` program.

Building the drawing needs the `graphviz` Python package; rendering it to a picture needs
the `dot` program of Graphviz, a system package (`apt-get install graphviz`, `brew install
graphviz`, ...).
"""
import collections
import functools
import html
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..arrays import stretched_axes
from ..codegen.hooks import derived_constants
from ..graph import sent_shape
from ..tensor import Tensor
from .frames import Group, module_groups
from .texts import (MAX_VALUES, NOT_KEPT, fused_forward, gradient_formulas, input_names,
                    live_names, named_tensors_in, number, op_title, rule_statements,
                    values_text)

FORMATS = ("svg", "png", "pdf", "html")     # html: the SVG in an interactive page
INSTALL_DOT = ("install Graphviz, which provides it: `sudo apt-get install graphviz` "
               "(Debian, Ubuntu), `sudo dnf install graphviz` (Fedora), `brew install "
               "graphviz` (macOS), `conda install -c conda-forge graphviz` (no root "
               "needed), or see https://graphviz.org/download/")

FONT = "Helvetica"
PARAMETER = {"fillcolor": "#d6eaf8", "color": "#2874a6"}        # leaves that require grad
INPUT = {"fillcolor": "#eaecee", "color": "#808b96"}            # values that need no grad
INTERMEDIATE = {"fillcolor": "#ffffff", "color": "#424949"}
ROOT = {"fillcolor": "#fdebd0", "color": "#ca6f1e", "penwidth": "2"}
NONFINITE = {"fillcolor": "#fadbd8", "color": "#c0392b", "penwidth": "3"}
OP = {"shape": "ellipse", "style": "filled", "fillcolor": "#f4f6f7", "color": "#7b7d7d",
      "fontsize": "11", "margin": "0.05,0.02"}
GROUP = {"shape": "box3d", "style": "filled", "fillcolor": "#e8daef", "color": "#76448a"}
UNBROADCAST = {"shape": "box", "style": "dashed,rounded", "color": "#ba4a00",
               "fontcolor": "#ba4a00", "fontsize": "10"}
GRADIENT_EDGE = {"dir": "back", "color": "#ba4a00"}             # arrows point to the inputs
NO_GRADIENT_EDGE = {"color": "#aab7b8"}                         # into inputs that need none
RED, GRAD_COLOR = "#c0392b", "#ba4a00"
GAP = "&#160; "      # spaces that SVG viewers keep (at the end of a run of text, not the start)


class GraphTooLarge(ValueError):
    """The graph has more nodes than `draw(max_nodes=...)` allows."""


class DotNotFound(RuntimeError):
    """The `dot` program of Graphviz, needed to render a drawing, is not installed."""


class RenderError(RuntimeError):
    """`dot` failed, or took longer than the time allowed."""

def _tensor_label(name, array, grad=None, note=None, show_data=True, show_grad=True,
                  meta=None, max_values=MAX_VALUES, made=None, op=None):
    """The HTML label of a tensor box, and whether it holds NaN or Inf. `array` may be None
    (a value the graph did not keep); `meta` is then its (shape, dtype). `op`, the label of
    the op that made it, heads the box in the compact layout."""
    shape, dtype = (array.shape, array.dtype) if array is not None else meta
    title = f"{'scalar' if shape == () else shape} {dtype}"
    if name:
        title = f"<B>{html.escape(name)}{GAP}</B>{title}"
    rows = [f'<TR><TD BGCOLOR="{OP["fillcolor"]}"><FONT POINT-SIZE="10">{op}</FONT></TD></TR>'
            ] if op else []
    rows.append(f"<TR><TD>{title}</TD></TR>")
    data, bad = values_text(array, max_values) if array is not None else ([NOT_KEPT], False)
    if show_data:
        rows += _rows("data: ", data, RED if bad else None)
    if show_grad and grad is not None:
        text, grad_bad = values_text(grad, max_values)
        rows += _rows("grad: ", text, RED if grad_bad else GRAD_COLOR)
        bad = bad or grad_bad
    if show_grad and note:
        rows.append(_row(note, GRAD_COLOR, size=9))
    if made:
        rows.append(_row(made, INPUT["color"], size=9))
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
    return f"<{table}{''.join(rows)}</TABLE>>", bad


def _rows(head, lines, color):
    """`head` and the lines of a value: values in a fixed-width font, so columns align."""
    if len(lines) == 1 and not lines[0].startswith("["):
        return [_row(head + lines[0], color)]
    return [_row(head if i == 0 else "", color, face="Courier", text=line)
            for i, line in enumerate(lines)]


def _row(head, color=None, size=None, face=None, text=None):
    """A left-aligned row of an HTML table: `head`, then `text` in the font `face`, in
    `color` and point `size` if given."""
    font = "".join(f' {k}="{v}"' for k, v in (("COLOR", color), ("POINT-SIZE", size)) if v)
    cell = _spaced(head)
    if text is not None:
        cell += f'<FONT FACE="{face}">{_spaced(text, every=True)}</FONT>'
    return f'<TR><TD ALIGN="LEFT">{f"<FONT{font}>{cell}</FONT>" if font else cell}</TD></TR>'


def _spaced(text, every=False):
    """Text for an HTML label, its spaces kept: SVG viewers drop repeated and leading plain
    spaces. `every` space, for values whose columns must align."""
    text = html.escape(text)
    return text.replace(" ", "&#160;") if every else text.replace("  ", GAP)


def _op_label(node, formulas, names=None):
    """The label of an op's ellipse (HTML, without the outer <>): its name, attributes and
    formula; each input's gradient rule (g is the gradient arriving at the output). A
    fused op shows its derived forward and gradients, a statement a line."""
    op, attrs = node.op, node.attrs
    title = html.escape(op_title(op, attrs, names))
    if not formulas:
        return f"<B>{title}</B>"
    title = f"<B>{title}{GAP}</B>{html.escape(f'out = {op.formula}')}" if op.formula \
        else f"<B>{title}</B>"
    shown = [rule_statements(name, text) for name, text in gradient_formulas(node).items()]
    forward = fused_forward(node)
    if forward:                             # long: one statement a line
        lines = [title] + [html.escape(line) for line in forward + shown]
        return '<BR ALIGN="LEFT"/>'.join(lines) + '<BR ALIGN="LEFT"/>'    # statements align
    return f"{title}<BR/>{(GAP * 2).join(map(html.escape, shown))}" if shown else title


# ---------------------------------------------------------------- the walk

def _roots(tensors):
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _walk(roots, max_nodes, stop_at=(), depth=None):
    """The nodes the roots depend on, parents first, and the ones whose inputs are left out
    (`stop_at`, or `depth` ops away from a root). Iterative, level by level; refuses
    oversized graphs.

    Counts boxes as it goes (a tensor and an op per op node, one per leaf and per input
    that needs no gradient) and stops as soon as there are more than `max_nodes`, so even
    a graph of millions of nodes is refused at once.
    """
    level, cut = dict.fromkeys(roots, 0), set()
    queue, boxes = collections.deque(roots), 0
    while queue:
        node = queue.popleft()
        if node.op is not None and (node in stop_at or (depth is not None and
                                                        level[node] >= depth)):
            cut.add(node)                   # drawn as a tensor; what made it is not
            boxes += 1
            continue
        boxes += 1 + (node.op is not None) + sum(p is None for p in node.parents)
        if max_nodes is not None and boxes > max_nodes:
            raise GraphTooLarge(
                f"draw: the graph has more than max_nodes={max_nodes} nodes (tensors, ops "
                "and inputs); a picture that large is slow to lay out and hard to read. Draw "
                "a part of it (draw() an intermediate tensor, stop_at=[tensors] where to "
                "stop, or depth=n ops), or pass a larger max_nodes (or None) to draw it all")
        for p in node.parents:
            if p is not None and p not in level:
                level[p] = level[node] + 1
                queue.append(p)
    return sorted(level, key=lambda node: node.seq), cut    # made after its parents


def _group(outputs, inputs):
    """The op nodes computing `outputs` from `inputs`: walk back, stop at inputs and leaves."""
    stop = {t.grad_fn for t in _roots(inputs)}
    members, stack = set(), [t.grad_fn for t in _roots(outputs) if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node in members or node in stop or node.op is None:
            continue
        members.add(node)
        stack.extend(p for p in node.parents if p is not None)
    return members


# ---------------------------------------------------------------- drawing

def draw(tensors, *, names=None, rankdir="TB", show_data=True, show_grad=True,
         formulas=True, backward=False, compact=False, modules=None, open=(),
         clusters=None, collapse=None, stop_at=None, depth=None, max_nodes=1000,
         max_values=MAX_VALUES):
    """A `graphviz.Digraph` of everything `tensors` (a tensor, or a list) depends on.

    names      {name: tensor or module}, e.g. `locals()`: labels for this drawing only
               (`Tensor.name` and `name_tensors` name tensors for good)
    rankdir    "TB" (top to bottom) or "LR" (left to right)
    show_data, show_grad
               values and gradients (shown once backward() has run: for leaves, retained
               tensors, and every node inside `autograd.keep_grads()`)
    max_values tensors of at most this many elements show every value, rounded as PyTorch
               prints them; larger ones mean, std, min and max (0: statistics for all
               but scalars)
    formulas   each op's forward formula and gradient rules
    backward   draw the backward pass: arrows point from the output back to the inputs,
               and a dashed box shows each sum that undoes broadcasting (unbroadcast)
    compact    each op written at the head of the box of the tensor it made, not in an
               ellipse of its own: half the rows, for long chains such as the lecture's
    stop_at    tensors where the drawing stops: drawn, but not what they were made from
    depth      draw at most this many ops back from `tensors`
    modules    a Module (the model): frame the ops each call of it, and of each module
               inside it, recorded in its forward, frames nested as the calls were
    open       with `modules`: the dotted names of the modules to draw op by op ("hidden",
               "blocks.0.sa"), or True for all; the others are drawn as one node each,
               their parameters inside it (the model itself is always open)
    clusters   {label: (outputs, inputs)}: frame the ops computing outputs from inputs
    collapse   {label: (outputs, inputs)}: draw those ops as a single node
    max_nodes  refuse (GraphTooLarge) a graph with more nodes than this; None: no limit

    In a notebook the drawing shows itself; without Graphviz's `dot` program it shows the
    text view (`viz.text`) instead, after a one-line note.
    """
    import graphviz

    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw: rankdir must be 'TB' or 'LR' (or 'BT', 'RL'), got {rankdir!r}")
    state = select(tensors, "draw", names=names, show_data=show_data, show_grad=show_grad,
                   formulas=formulas, backward=backward, stop_at=stop_at, depth=depth,
                   max_nodes=max_nodes, max_values=max_values)
    state.compact = compact
    state.add_modules(modules, open)
    state.add_groups(collapse, collapsed=True)
    state.add_groups(clusters, collapsed=False)
    graph = _drawing_class()(graph_attr={"rankdir": rankdir, "nodesep": "0.25",
                                         "ranksep": "0.3"},
                             node_attr={"fontname": FONT, "fontsize": "11"},
                             edge_attr={"fontname": FONT, "fontsize": "10",
                                        "fontcolor": "#566573", "arrowsize": "0.7"})
    graph.state = state
    for i, t in enumerate(state.leaf_roots):                    # leaves: no graph
        grad = t.grad._data if t.grad is not None else None
        label, bad = _tensor_label(state.value_names.get(id(t)) or t.name, t._data, grad,
                                   show_data=show_data, show_grad=show_grad,
                                   max_values=max_values)
        graph.node(f"leaf{i}", label, shape="box", style="rounded,filled",
                   **(NONFINITE if bad else ROOT))
    state.build(graph)
    return graph


def select(tensors, caller, *, names=None, show_data=True, show_grad=True, formulas=True,
           backward=False, stop_at=None, depth=None, max_nodes=1000, max_values=MAX_VALUES):
    """The part of the graph a drawing (or the text view) shows, with its names, values and
    gradients: a `Selection`. `caller` names the function in errors."""
    roots = _roots(tensors)
    if not all(isinstance(t, Tensor) for t in roots):
        raise TypeError(f"{caller}: expected a Tensor or a list of Tensors")
    stops = _roots(stop_at) if stop_at is not None else []
    if not all(isinstance(t, Tensor) for t in stops):
        raise TypeError(f"{caller}: stop_at must be a Tensor or a list of Tensors")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"{caller}: depth must be a whole number of ops (0 or more), "
                         f"got {depth!r}")
    node_names, value_names = {}, {}    # graph node -> name; id of a leaf or array -> name
    for name, t in named_tensors_in(names or {}):
        if t.grad_fn is not None:
            node_names.setdefault(t.grad_fn, name)
        value_names.setdefault(id(t), name)
        value_names.setdefault(id(t._data), name)
    root_nodes = [t.grad_fn for t in roots if t.grad_fn is not None]
    order, cut = _walk(root_nodes, max_nodes, {t.grad_fn for t in stops}, depth)
    named = [t for _, t in named_tensors_in(names or {})] + list(roots)
    values, array_names = live_names(named)
    value_names = array_names | value_names             # names given to draw come first
    state = Selection(order, root_nodes, cut, (node_names, value_names), show_data,
                      show_grad, formulas, backward, values, max_values)
    state.leaf_roots = [t for t in roots if t.grad_fn is None]
    return state


@functools.lru_cache(maxsize=None)
def _drawing_class():
    """graphviz.Digraph, shown in a notebook as the text view when `dot` is missing (made
    on first use: graphviz is imported only when something is drawn)."""
    import graphviz

    class Drawing(graphviz.Digraph):
        """A drawing (a graphviz.Digraph) that knows the graph it shows."""

        state = None

        def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
            if dot_available():
                try:
                    return super()._repr_mimebundle_(include, exclude, **kwargs)
                except graphviz.ExecutableNotFound:
                    pass
            from .text import text_of
            return {"text/plain": f"{NO_DOT_NOTE}\n{text_of(self.state)}"}

    return Drawing


NO_DOT_NOTE = ("(Graphviz's `dot` program is not installed, so here is the graph as text; "
               "see docs/viz.md to install it)")


class Selection:
    """The part of the graph one drawing shows: its nodes (parents first), the ones whose
    inputs are left out (`cut`), and each node's name, value and gradient. `build` draws
    it into a graphviz graph."""

    def __init__(self, order, roots, cut, names, show_data, show_grad, formulas,
                 backward, named_values, max_values):
        self.graph, self.order, self.roots, self.cut = None, order, set(roots), cut
        self.compact = False
        self.max_values = max_values
        self.named_values = named_values
        self.node_names, self.value_names = names
        self.show_data, self.show_grad = show_data, show_grad
        self.formulas, self.backward = formulas, backward
        self.ids = {node: str(i) for i, node in enumerate(order)}
        self.consumers = {node: [] for node in order}
        for node in order:
            if node not in cut:
                for p in node.parents:
                    if p is not None:
                        self.consumers[p].append(node)
        self.value = self._values()
        self.group_of, self.groups = {}, []          # node -> group index; Groups
        self.backward_ran = any(n.used or self._grad(n) is not None for n in order)
        self.edges = set()

    def _values(self):
        """Each node's array: its op's output, or for a leaf its tensor's (or a user's) copy."""
        value = {}
        for node in self.order:
            out = node.out if node.out is not None else self.named_values.get(node)
            if out is not None:
                value[node] = out
            elif node.tensor is not None and node.tensor() is not None:
                value[node] = node.tensor()._data
            for p, x in zip(node.parents, node.inputs):
                if p is not None and x is not None:
                    value.setdefault(p, x)
        return value

    def _name(self, node):
        """A name given to draw(), else the tensor's own (`Tensor.name`, kept by its node)."""
        if node in self.node_names:
            return self.node_names[node]
        tensor = node.tensor() if node.tensor is not None else None      # leaves
        return (tensor is not None and self.value_names.get(id(tensor))) or node.name

    def _grad(self, node):
        if node.grad is not None:
            return node.grad
        tensor = node.tensor() if node.tensor is not None else None
        return tensor.grad._data if tensor is not None and tensor.grad is not None else None

    def add_groups(self, groups, collapsed):
        """Frame (or collapse) the ops of each {label: (outputs, inputs)} of `groups`."""
        for label, (outputs, inputs) in (groups or {}).items():
            members = [n for n in _group(outputs, inputs) if n in self.ids
                       and n not in self.group_of]
            if not members:
                raise ValueError(f"draw: group {label!r} has no ops in the graph (check its "
                                 "outputs and inputs)")
            for node in members:
                self.group_of[node] = len(self.groups)
            self.groups.append(Group(label, collapsed, None, None))
        self._take_parameters()

    def add_modules(self, model, opened):
        """A group per module call of `model` (frames.module_groups)."""
        group_of, groups = module_groups(self.order, model, opened, first=len(self.groups))
        self.group_of.update(group_of)
        self.groups += groups
        self._take_parameters()

    def _take_parameters(self):
        """Put each leaf used only inside one collapsed group into it: drawn as part of it."""
        for node in self.order:
            if node.op is None and self.consumers[node] and node not in self.group_of:
                groups = {self.group_of.get(c) for c in self.consumers[node]}
                g = groups.pop() if len(groups) == 1 else None
                if g is not None and self.groups[g].collapsed:
                    self.group_of[node] = g

    def _collapsed(self, node):
        g = self.group_of.get(node)
        return g is not None and self.groups[g].collapsed

    def _visible(self, node):
        """Whether the node's tensor gets a box: not hidden inside a collapsed group.

        A collapsed group still shows the tensors used outside it (and the roots).
        """
        if not self._collapsed(node):
            return True
        g = self.group_of[node]
        return node in self.roots or any(self.group_of.get(c) != g for c in self.consumers[node])

    # the boxes -----------------------------------------------------------------------

    def build(self, graph):
        """Add the selection's boxes, ellipses and arrows to `graph`."""
        import graphviz

        self.graph = graph
        self.frames = frames = [graphviz.Digraph(name=f"cluster_{i}", graph_attr={
            "label": group.label, "style": "rounded,dashed", "color": GROUP["color"],
            "fontcolor": GROUP["color"], "fontname": FONT}) for i, group in
            enumerate(self.groups)]
        for i, group in enumerate(self.groups):
            if group.collapsed:
                self._frame(group.parent).node(f"g{i}", f"<{self._group_label(i)}>", **GROUP)
        for node in self.order:
            where = self._where(node)
            if self._visible(node):
                self._tensor(node, where)
            if node.op is not None and not self._collapsed(node) and node not in self.cut:
                self._op(node, where)
        for node in self.order:
            self._edges(node)
        for i in reversed(range(len(self.groups))):     # frames inside frames: inner first
            if not self.groups[i].collapsed:
                self._frame(self.groups[i].parent).subgraph(frames[i])

    def _group_label(self, i):
        """A collapsed group's label (HTML): its name, its ops, a module's parameters."""
        group = self.groups[i]
        ops = [n.op.name for n, g in self.group_of.items() if g == i and n.op is not None]
        label = (f"<B>{html.escape(group.label)}</B><BR/>{len(ops)} op{'s' * (len(ops) != 1)}"
                 f": {html.escape(', '.join(sorted(set(ops))))}")
        if group.module is not None:
            shapes = [f"{name} {tuple(p.shape)}" for name, p in group.module.named_parameters()]
            label += f"<BR/>{html.escape(', '.join(shapes))}" if shapes else ""
        return label

    def _frame(self, g):
        """Where the boxes of group `g` go: its frame; for a collapsed group (its single
        node, the tensors it passes on) the frame around it; the graph itself for None."""
        while g is not None and self.groups[g].collapsed:
            g = self.groups[g].parent
        return self.frames[g] if g is not None else self.graph

    def _where(self, node):
        """The frame a node's boxes go in (boxed groups), else the graph itself."""
        g = self.group_of.get(node)
        if g is None and node.op is None and self.consumers[node]:
            groups = {self.group_of.get(c) for c in self.consumers[node]}
            g = groups.pop() if len(groups) == 1 else None     # a parameter used only inside
        return self._frame(g)

    def _tensor(self, node, where):
        grad, note = self._grad(node), None
        if grad is None and self.backward and node.op is not None:
            note = ("grad not kept: retain_grad(), or backward() inside "
                    "autograd.keep_grads()") if self.backward_ran else "backward() not run"
        elif grad is not None and self.backward and len(self.consumers[node]) > 1:
            note = f"grad: the sum of the gradients of its {len(self.consumers[node])} uses"
        name = self._name(node)
        label, bad = _tensor_label(name, self.value.get(node), grad, note, self.show_data,
                                   self.show_grad, meta=(node.out_shape, node.out_dtype),
                                   max_values=self.max_values, made=self.made_note(node),
                                   op=self._inline_op(node))
        style = (NONFINITE if bad else ROOT if node in self.roots
                 else PARAMETER if node.op is None else INTERMEDIATE)
        where.node("t" + self.ids[node], label, shape="box", **style,
                   style="rounded,filled" + (",dashed" if node in self.cut else ""))

    def _inline_op(self, node):
        """In the compact layout, the label of the op that made the node's tensor."""
        if not self.compact or node.op is None or node in self.cut or self._collapsed(node):
            return None
        return _op_label(node, self.formulas, self.value_names)

    def made_note(self, node):
        """For a tensor whose inputs are left out: what made it."""
        if node not in self.cut:
            return None
        count = sum(p is not None for p in node.parents)
        return f"made by {node.op.name} from {count} input{'s' * (count != 1)} not shown"

    def _op(self, node, where):
        if not self.compact:
            where.node("o" + self.ids[node],
                       f"<{_op_label(node, self.formulas, self.value_names)}>", **OP)
        for i, (p, x) in enumerate(zip(node.parents, node.inputs)):
            if p is None:                            # an input that needs no gradient
                name = self._constant_name(x)
                if name is None and x.size == 1:     # a constant: just its value
                    text, bad = number(x.item(), 5), bool(not np.isfinite(x).all())
                    label = f"<{html.escape(text)}>"
                else:
                    label, bad = _tensor_label(name, x, show_data=self.show_data,
                                               max_values=self.max_values)
                where.node(f"c{self.ids[node]}_{i}", label, shape="box",
                           style="rounded,filled", **(NONFINITE if bad else INPUT))

    def _constant_name(self, array):
        """The name of a named tensor's array, or, for an array computed from one outside
        the graph (cross_entropy's one-hot of the targets), `one_hot(targets)`."""
        name = self.value_names.get(id(array))
        if name is None and id(array) in derived_constants:
            ref, kind, sources = derived_constants[id(array)]
            names = [self.value_names.get(id(source)) for source in sources]
            if ref() is array and all(names):
                name = f"{kind}({', '.join(names)})"
        return name

    # the arrows ----------------------------------------------------------------------

    def _edges(self, node):
        """The arrows from each input into the node's op, and from the op to its tensor."""
        if node.op is None or node in self.cut:
            return
        op, collapsed = self._op_id(node), self._collapsed(node)
        arrow = GRADIENT_EDGE if self.backward else {}
        names = input_names(node.op, len(node.parents))
        for i, p in enumerate(node.parents):
            label = {"label": names[i]} if len(names) > 1 and not collapsed else {}
            if p is None:
                if not collapsed:                    # a collapsed group hides its constants
                    self._edge(f"c{self.ids[node]}_{i}", op, **label,
                               **(NO_GRADIENT_EDGE if self.backward else {}))
            elif not (collapsed and self.group_of.get(p) == self.group_of[node]):
                source = "t" + self.ids[p]
                if self.backward and not collapsed:
                    source = self._unbroadcast(node, i, source)
                weight = "1" if p.op is None else "3"       # keep the chain of ops straight
                self._edge(source, op, weight=weight, **label, **arrow)
        if self._visible(node) and (collapsed or not self.compact):
            self._edge(op, "t" + self.ids[node], weight="6", **arrow)

    def _edge(self, source, target, **attrs):
        if target.startswith("g"):                   # a collapsed group may use an input twice
            if (source, target) in self.edges:
                return
            self.edges.add((source, target))
        self.graph.edge(source, target, **attrs)

    def _op_id(self, node):
        """The node arrows into an op go to: its ellipse, its tensor's box (compact), or
        the node of the collapsed group it is in."""
        if self._collapsed(node):
            return f"g{self.group_of[node]}"
        return ("t" if self.compact else "o") + self.ids[node]

    def _unbroadcast(self, node, i, source):
        """A box for the sum that undoes broadcasting on input i's gradient, if any.

        Asks the op's rule for the shape of the gradient it sends to input i and compares it
        with the input's, exactly as the backward pass does before `unbroadcast`.
        """
        sent, shape = sent_shape(node, i), node.shapes[i]
        axes = stretched_axes(sent, shape) if sent != shape else ()
        if not axes:                        # nothing to sum (at most size-1 axes dropped)
            return source
        dims = axes[0] if len(axes) == 1 else axes
        box = f"u{self.ids[node]}_{i}"         # inside the frame of the op it belongs to
        label = f"<unbroadcast: sum over dim {dims}<BR/>{sent} → {shape}>"
        self._where(node).node(box, label, **UNBROADCAST)
        self._edge(source, box, **GRADIENT_EDGE)
        return box


def graph_size(graph):
    """(nodes, edges) of a drawing, counted in its DOT source."""
    nodes = edges = 0
    for line in graph.source.splitlines():
        words = line.split(maxsplit=2)
        if len(words) > 1 and words[1] == "->":
            edges += 1
        elif len(words) > 1 and words[1].startswith("[") and words[0] not in ("graph", "node",
                                                                                 "edge"):
            nodes += 1
    return nodes, edges


# ---------------------------------------------------------------- rendering

def dot_available():
    """Whether the `dot` program of Graphviz is on the PATH (needed to render, not to draw)."""
    return shutil.which("dot") is not None


def render(graph, path, *, format=None, timeout=60, **options):
    """Render a drawing to `path` (.svg, .png, .pdf or .html) with Graphviz's `dot`; returns
    the path.

    `graph` is a Digraph from `draw`, or tensors to draw first with `options` (the keyword
    arguments of `draw`). An .html file is one self-contained page (the SVG and a small
    script; viz/page.py): pan, zoom, and tooltips with each box's full values, gradient and
    formula. Without `dot` installed, the DOT source is saved next to `path` (as .gv) and
    DotNotFound says how to install it; `graph.save("x.gv")` also always works.
    """
    if not hasattr(graph, "source"):
        graph = draw(graph, **options)
    elif options:
        raise TypeError(f"render: drawing options {sorted(options)} need tensors, not a graph")
    path = Path(path)
    fmt = format or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"render: cannot tell the format of {str(path)!r}; name it .svg, "
                         ".png, .pdf or .html, or pass format=")
    dot, to = shutil.which("dot"), "svg" if fmt == "html" else fmt      # dot's -T format
    if dot is None:
        source = _save_source(graph, path)
        raise DotNotFound(f"render: the `dot` program of Graphviz, which turns the drawing "
                          f"into {fmt.upper()}, is not installed; {INSTALL_DOT}. The DOT "
                          f"source was saved to {source}: render it later with `dot -T{to} "
                          f"{source} -o {path}`, or paste it into an online Graphviz viewer")
    partial = path.with_name(path.name + ".tmp")
    try:
        result = subprocess.run([dot, f"-T{to}", "-o", str(partial)],
                                input=graph.source.encode("utf-8"), capture_output=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        partial.unlink(missing_ok=True)
        source = _save_source(graph, path)
        raise RenderError(f"render: dot did not finish within {timeout} s; draw a smaller part "
                          f"of the graph or allow more time (timeout=); the DOT source was "
                          f"saved to {source}") from None
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RenderError(f"render: dot failed: {result.stderr.decode(errors='replace')}")
    if fmt == "html":
        from .page import details, page
        svg = partial.read_text(encoding="utf-8")
        shown = details(graph.state) if getattr(graph, "state", None) is not None else {}
        partial.write_text(page(svg, shown, path.stem), encoding="utf-8")
    os.replace(partial, path)
    return path


def _save_source(graph, path):
    source = path.with_suffix(".gv")
    source.write_text(graph.source, encoding="utf-8")
    return source
