"""Seeing the graph: what a tensor was computed from, with shapes, values and gradients.

    from tensorgrad import viz
    viz.name_tensors(locals())                  # label tensors with their variable names
    viz.render(loss, "loss.svg")                # draw and render in one call
    graph = viz.draw(loss, backward=True)       # a graphviz.Digraph; graph.source is DOT
    print(viz.text(loss))                       # the same graph as an indented tree

Each tensor is a box (its name, shape, dtype, its values or their statistics and, after
`backward()`, its gradient); each op is an ellipse with its gradient rules; arrows follow
the data from inputs to outputs. Parameters are blue, inputs that need no gradient grey,
and any tensor holding NaN or Inf is red.

The package only reads the graph, through the public links of `autograd.Node` (`op`,
`attrs`, `inputs`, `out`, `parents`, `name`, `grad`, `module_call`, and the weak
reference `tensor` of leaves and retained tensors); the engine knows nothing of it. `texts`
says what is shown of each node; `frames` which module call made it; `drawing` lays it
out with Graphviz (the `graphviz` Python package; rendering needs Graphviz's `dot`
program, a system package: `apt-get install graphviz`, `brew install graphviz`, ...);
`text` writes it as a tree, with no Graphviz at all.
"""
from .drawing import (FORMATS, DotNotFound, GraphTooLarge, RenderError, dot_available, draw,
                      graph_size, render)
from .texts import (MAX_VALUES, fused_forward, gradient_formulas, input_names, name_tensors,
                    rule_statements, values_text)
from .text import text

__all__ = ["FORMATS", "MAX_VALUES", "DotNotFound", "GraphTooLarge", "RenderError",
           "dot_available", "draw", "fused_forward", "gradient_formulas", "graph_size",
           "input_names", "name_tensors", "render", "rule_statements", "text", "values_text"]
