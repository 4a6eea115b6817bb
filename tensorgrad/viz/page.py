"""The interactive page: a drawing as one self-contained HTML file.

`viz.render(loss, "graph.html")` renders the drawing to SVG with `dot` and writes it into
a page with a small inline script and no network access: drag to pan, scroll to zoom,
hover over a box for its full values, gradient and formula, with its inputs and consumers
highlighted; a click pins the box (and puts its name in the address, `graph.html#logits`,
so a link can open the page on it).
"""
import html
import json

import numpy as np

from .texts import fused_forward, gradient_formulas, op_title, rule_statements, values_text

FULL_VALUES = 1000      # the tooltip shows every value up to this many, statistics above


def page(svg, details, title):
    """The HTML of the page: `svg` (from dot), `details` {DOT node id: {"name", "lines"}}."""
    svg = svg[svg.index("<svg"):]                   # drop the XML prolog and doctype
    data = json.dumps(details).replace("</", "<\\/")       # safe inside <script>
    return PAGE.format(title=html.escape(title), svg=svg, data=data, script=SCRIPT,
                       style=STYLE)


def details(state):
    """{DOT node id: {"name": ..., "lines": [...]}}: what the page's tooltip shows for each
    box of a drawing made by `draw` (a `drawing.Selection`)."""
    found = {}
    for i, t in enumerate(state.leaf_roots):
        grad = t.grad._data if t.grad is not None else None
        found[f"leaf{i}"] = _tensor(t.name, t._data, grad, t.shape, t.dtype)
    for node in state.order:
        key = state.ids[node]
        tensor = _tensor(state._name(node), state.value.get(node), state._grad(node),
                         node.out_shape, node.out_dtype)
        if node.op is None or node in state.cut:
            found["t" + key] = tensor
            continue
        op = _op(node, state.value_names)
        if state.compact:
            found["t" + key] = {"name": tensor["name"], "lines": op + [""] + tensor["lines"]}
        else:
            found["t" + key], found["o" + key] = tensor, {"name": None, "lines": op}
        for i, (p, x) in enumerate(zip(node.parents, node.inputs)):
            if p is None:
                found[f"c{key}_{i}"] = _tensor(state._constant_name(x), x, None, x.shape,
                                               x.dtype)
    return found


def _tensor(name, array, grad, shape, dtype):
    lines = [f"{name + '  ' if name else ''}{'scalar' if shape == () else shape} {dtype}"]
    for what, values in (("data", array), ("grad", grad)):
        if values is None:
            lines.append(f"{what}: not kept" if what == "data" else "")
            continue
        shown = values_text(values, FULL_VALUES)[0]
        head = f"{what}: "
        if np.size(values) > 16:            # statistics, then the values below them
            shown = values_text(values, 0)[0] + shown
        lines += [head + shown[0]] + [" " * len(head) + line for line in shown[1:]]
    return {"name": name, "lines": [line for line in lines if line]}


def _op(node, names):
    """The lines of an op: its title and formula, its derived forward (a fused op), and each
    input's gradient rule."""
    title = op_title(node.op, node.attrs, names)
    if node.op.formula:
        title += f"   out = {node.op.formula}"
    return [title] + fused_forward(node) + [rule_statements(name, rule) for name, rule
                                            in gradient_formulas(node).items()]


STYLE = """
html, body { margin: 0; height: 100%; overflow: hidden; font: 13px Helvetica, sans-serif; }
#graph { width: 100%; height: 100%; cursor: grab; }
#graph svg { width: 100%; height: 100%; }
#help { position: fixed; left: 0; bottom: 0; padding: 3px 8px; color: #566573;
        background: rgba(255, 255, 255, 0.85); }
#tip { position: fixed; display: none; max-width: 60em; max-height: 80%; overflow: auto;
       background: #fdfefe; border: 1px solid #7b7d7d; padding: 6px 8px;
       font: 12px monospace; white-space: pre; box-shadow: 2px 2px 6px #aab7b8; }
g.node.input > :is(path, polygon, ellipse) { stroke: #1e8449; stroke-width: 4; }
g.node.consumer > :is(path, polygon, ellipse) { stroke: #7d3c98; stroke-width: 4; }
g.node.chosen > :is(path, polygon, ellipse) { stroke: #ca6f1e; stroke-width: 5; }
g.edge.input > path { stroke: #1e8449; stroke-width: 3; }
g.edge.consumer > path { stroke: #7d3c98; stroke-width: 3; }
"""

SCRIPT = """
const svg = document.querySelector('#graph svg');
const details = JSON.parse(document.getElementById('details').textContent);
const tip = document.getElementById('tip');
const box = svg.viewBox.baseVal;
const nodes = {}, edges = [];
for (const g of svg.querySelectorAll('g.node')) {     // the DOT id is the node's <title>
  const title = g.querySelector('title');
  g.dataset.id = title.textContent;
  title.remove();                                     // no browser tooltip over ours
  nodes[g.dataset.id] = g;
}
for (const g of svg.querySelectorAll('g.edge')) {
  const title = g.querySelector('title');
  const [from, to] = title.textContent.split('->');
  title.remove();
  edges.push({g, from, to});
}
let pinned = null;
function show(id, x, y) {
  clear();
  const info = details[id];
  if (!info) return;
  nodes[id].classList.add('chosen');
  for (const e of edges) {                             // inputs: arrows in; consumers: out
    if (e.to === id) { e.g.classList.add('input'); nodes[e.from].classList.add('input'); }
    if (e.from === id) { e.g.classList.add('consumer'); nodes[e.to].classList.add('consumer'); }
  }
  tip.textContent = info.lines.join('\\n');
  tip.style.display = 'block';
  tip.style.left = Math.min(x + 16, innerWidth - tip.offsetWidth - 8) + 'px';
  tip.style.top = Math.min(y + 16, innerHeight - tip.offsetHeight - 8) + 'px';
}
function clear() {
  for (const g of svg.querySelectorAll('.chosen, .input, .consumer'))
    g.classList.remove('chosen', 'input', 'consumer');
  tip.style.display = 'none';
}
for (const [id, g] of Object.entries(nodes)) {
  g.addEventListener('mouseenter', e => { if (!pinned) show(id, e.clientX, e.clientY); });
  g.addEventListener('mouseleave', () => { if (!pinned) clear(); });
  g.addEventListener('click', e => {
    e.stopPropagation();
    pinned = pinned === id ? null : id;
    if (pinned) show(id, e.clientX, e.clientY); else clear();
    const name = details[id] && details[id].name;
    history.replaceState(null, '', pinned ? '#' + encodeURIComponent(name || id) : '#');
  });
}
svg.addEventListener('click', () => { pinned = null; clear(); });
// pan and zoom: move and scale the viewBox
let drag = null;
svg.addEventListener('mousedown', e => { drag = {x: e.clientX, y: e.clientY}; });
addEventListener('mouseup', () => { drag = null; });
addEventListener('mousemove', e => {
  if (!drag) return;
  const scale = box.width / svg.clientWidth;
  box.x -= (e.clientX - drag.x) * scale; box.y -= (e.clientY - drag.y) * scale;
  drag = {x: e.clientX, y: e.clientY};
});
svg.addEventListener('wheel', e => {
  e.preventDefault();
  const k = e.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
  const fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
  box.x += box.width * fx * (1 - k); box.y += box.height * fy * (1 - k);
  box.width *= k; box.height *= k;
}, {passive: false});
// a name (or DOT id) in the address opens the page on that box, pinned
const wanted = decodeURIComponent(location.hash.slice(1));
if (wanted) {
  const id = details[wanted] ? wanted : Object.keys(details).find(k => details[k].name === wanted);
  if (id && nodes[id]) {
    pinned = id;
    const r = nodes[id].getBoundingClientRect();
    show(id, r.right, r.top);
  }
}
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<div id="graph">{svg}</div>
<div id="tip"></div>
<div id="help">drag to pan, scroll to zoom; hover a box for its values, gradient and
formula (inputs green, consumers purple); click to pin it</div>
<script type="application/json" id="details">{data}</script>
<script>{script}</script>
</body>
</html>
"""
