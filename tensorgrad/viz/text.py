"""The graph as text: an indented tree of tensors and ops, for a terminal, a notebook
without Graphviz, or a test.

    print(viz.text(loss))

    loss  scalar float32  data: 0.0809  grad: 1.
    └── mean(dims=(0,))  out = ...
        │ dx = np.broadcast_to(np.expand_dims(g / 2, 0), (2,))
        └── (2,) float32  data: [0.0003, 0.1615]  grad: [0.5000, 0.5000]
            └── pow  out = a**b
                ...

Each tensor line gives its name, shape, dtype, values and gradient (as in the drawing); the
op that made it is the line below, then that op's inputs, each after the name the op's
rules give it (`a:`, `b:`). A tensor used twice is written out once; later it says
"(above)". Needs nothing but numpy: no Graphviz.
"""
from .drawing import select
from .texts import MAX_VALUES, fused_forward, gradient_formulas, input_names, number
from .texts import op_title, rule_statements, values_text


def text(tensors, *, names=None, show_data=True, show_grad=True, formulas=True,
         stop_at=None, depth=None, max_nodes=1000, max_values=MAX_VALUES):
    """The graph that `tensors` (a tensor, or a list) were computed from, as an indented tree
    of tensors and ops: names, shapes, values, gradients and each op's gradient rules. The
    options are `draw`'s (`stop_at`, `depth` to show a part)."""
    return text_of(select(tensors, "text", names=names, show_data=show_data,
                          show_grad=show_grad, formulas=formulas, stop_at=stop_at,
                          depth=depth, max_nodes=max_nodes, max_values=max_values))


def text_of(state):
    """The text view of a `drawing.Selection`."""
    lines, shown = [], set()
    stack = [(("leaf", t), "", None) for t in reversed(state.leaf_roots)]
    stack += [(("tensor", node), "", None) for node in reversed(
        [n for n in state.order if n in state.roots])]
    while stack:
        entry, prefix, connector = stack.pop()
        head, more, children = _describe(state, entry, shown)
        lines.append(prefix + (connector or "") + head)
        inner = prefix + ("" if connector is None else
                          "    " if connector.startswith("└") else "│   ")
        lines.extend(inner + ("│ " if children else "  ") + line for line in more)
        for k, child in reversed(list(enumerate(children))):
            stack.append((child, inner, "└── " if k == len(children) - 1 else "├── "))
    return "\n".join(lines)


def _describe(state, entry, shown):
    """(the line of an entry, its further lines, its children), for the tree."""
    kind, item = entry[0], entry[1]
    edge = f"{entry[2]}: " if len(entry) > 2 and entry[2] else ""
    if kind == "leaf":                                  # a tensor drawn with no graph
        grad = item.grad._data if item.grad is not None else None
        head, more = _tensor_text(state, item.name, item._data, grad, item.shape, item.dtype)
        return head, more, []
    if kind == "const":
        name = state._constant_name(item)
        if name is None and item.size == 1:
            return edge + number(item.item(), 5), [], []
        head, more = _tensor_text(state, name, item, None, item.shape, item.dtype)
        return f"{edge}{head}  (input)", more, []
    node = item
    if kind == "op":
        head = op_title(node.op, node.attrs, state.value_names)
        more = []
        if state.formulas:
            if node.op.formula:
                head += f"  out = {node.op.formula}"
            more = fused_forward(node) + [rule_statements(name, rule) for name, rule
                                          in gradient_formulas(node).items()]
        names = input_names(node.op, len(node.parents))
        children = [("tensor", p, names[i]) if p is not None else ("const", x, names[i])
                    for i, (p, x) in enumerate(zip(node.parents, node.inputs))]
        return head, more, children
    head, more = _tensor_text(state, state._name(node), state.value.get(node),
                              state._grad(node), node.out_shape, node.out_dtype)
    head = edge + head + ("  (parameter)" if node.op is None else "")
    if node in shown:
        return head.split("  data:")[0] + "  (above)", [], []
    shown.add(node)
    made = state.made_note(node)
    if made:
        return head + f"  ({made})", more, []
    return head, more, [("op", node)] if node.op is not None else []


def _tensor_text(state, name, array, grad, shape, dtype):
    """A tensor's line (name, shape, dtype, one-line values and gradient) and the lines of
    values too long for it."""
    head = f"{name + '  ' if name else ''}{'scalar' if shape == () else shape} {dtype}"
    more = []
    shown = [("data", array)] if state.show_data else []
    if state.show_grad and grad is not None:
        shown.append(("grad", grad))
    for what, values in shown:
        if values is None:
            head += f"  {what}: not kept"
            continue
        text, bad = values_text(values, state.max_values)
        text = [line + ("  (NaN or Inf!)" if bad and k == len(text) - 1 else "")
                for k, line in enumerate(text)]
        if len(text) == 1 and not more:
            head += f"  {what}: {text[0]}"
        else:
            more += [f"{what}: {text[0]}"] + [" " * len(f"{what}: ") + line for line in text[1:]]
    return head, more
