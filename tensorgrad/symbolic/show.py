"""Showing the work: a fused op's derivation as readable text and as LaTeX."""
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter


class ReadablePrinter(StrPrinter):
    """Text with `sum_i(...)` for a sum over i; x[i] keeps its index (it varies along i)."""

    def _print_Sum(self, e):
        body = self._print(e.function)
        for index, _, _ in e.limits:
            body = f"sum_{index}({body})"
        return body


class IndexedLatexPrinter(LatexPrinter):
    """LaTeX with long names set upright (bnvar\\_inv, not bnvar_{inv}), indices as subscripts,
    a thin space between factors (bngain bnvar_inv, not bngainbnvar_inv), a sum over an
    index that is also free outside it written with a primed index (sum over i' of x_i'),
    and a step as an indicator, 1[x > 0].

    `free`: the symbols free in the whole expression printed."""

    def __init__(self, free=()):
        super().__init__({"mul_symbol": r"\,"})
        self.free = set(free)

    def _print_Sum(self, e):
        primed = {index: sp.Symbol(index.name + "'", **index.assumptions0)
                  for index, *_ in e.limits if index in self.free}
        return super()._print_Sum(e.xreplace(primed) if primed else e)

    def _print_Heaviside(self, e, exp=None):
        if e.args[1:] != (0,):              # 1/2 at 0: not an indicator
            return super()._print_Heaviside(e, exp)
        text = rf"\mathbb{{1}}\left[{self._print(e.args[0])} > 0\right]"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_Symbol(self, e, style="plain"):
        return _name(e.name)

    def _print_Indexed(self, e):
        indices = ",".join(self._print(i) for i in e.indices)
        return _name(str(e.base.label)) + "_{" + indices + "}"


def _name(name):
    """A one-letter name in italics (n, i, g, i'), a longer one upright (bnvar_inv)."""
    if len(name.rstrip("'")) == 1:
        return name
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def text(expr):
    """`expr` as readable text (see ReadablePrinter)."""
    return ReadablePrinter().doprint(expr)


def latex(expr):
    """`expr` as LaTeX (see IndexedLatexPrinter)."""
    return IndexedLatexPrinter(getattr(expr, "free_symbols", ())).doprint(expr)


class Derivation:
    """The derivation of a fused op's gradients: forward steps, chain rule, simplified.

    `str()` gives text, `.latex()` LaTeX (an `aligned` block), `.steps()` the pieces as
    (label, sympy expression) pairs for other renderers (docs, graph drawings).
    """

    def __init__(self, definition, inputs=None):
        self.definition = definition
        self.inputs = list(inputs) if inputs else list(definition.tensor_names)

    def forward_steps(self):
        """(name, right-hand side) per shown step; unnamed sums are written inline."""
        f = self.definition.forward
        hidden = {s.symbol: s.definition() for s in f.steps if not s.shown}
        return [(s.symbol, s.expr.xreplace(hidden)) for s in f.steps if s.shown]

    def steps(self, stages=False):
        """Every piece: ('forward', symbol, rhs), then per input ('raw', name, gradient),
        with `stages` (kind, name, gradient) after each simplification stage but the last,
        whose kind is the stage's number and name ('2. closed forms'; see fused.STAGES),
        and ('simplified', name, gradient), the last stage's result."""
        d = self.definition
        hidden = {s.symbol: s.definition() for s in d.forward.steps if not s.shown}
        pieces = [("forward", sym, rhs) for sym, rhs in self.forward_steps()]
        for name in self.inputs:
            pieces.append(("raw", name, d.raw_gradient(name).xreplace(hidden)))
            if stages:
                pieces += [(f"{k}. {stage}", name, expr.xreplace(hidden))
                           for k, (stage, expr) in enumerate(d.simplification(name)[:-1], 1)]
            pieces.append(("simplified", name, d.gradient(name).xreplace(hidden)))
        return pieces

    def __str__(self):
        return self.text()

    def text(self, stages=False):
        """The derivation as text; with `stages`, the gradient after each stage of the
        simplification too (a stage that changed nothing says so)."""
        d = self.definition
        axes = ", ".join(f"{a.index} = 0 .. {a.length} - 1" for a in d.forward.axes.values())
        lines = [f"{d.name}: forward ({axes})"]
        lines += [f"  {text(sym)} = {text(rhs)}" for sym, rhs in self.forward_steps()]
        g, out = text(d.g), text(d.out)
        before = None
        for kind, name, expr in self.steps(stages):
            if kind == "raw":
                lines.append(f"gradient with respect to {name}, given {g} = dL/d{out}:")
                lines.append(f"  chain rule:  d{name} = {text(expr)}")
            elif kind == "simplified":
                lines.append(f"  simplified:  d{name} = {text(expr)}")
            elif kind != "forward":
                shown = "(unchanged)" if expr == before else f"d{name} = {text(expr)}"
                lines.append(f"    {kind}:  {shown}")
            before = expr
        return "\n".join(lines)

    def latex(self, stages=False):
        """The derivation as one LaTeX `aligned` environment (with `stages`, the gradient
        after each stage of the simplification too)."""
        rows = []
        for kind, sym, expr in self.steps(stages):
            if kind == "forward":
                rows.append(f"{latex(sym)} &= {latex(expr)}")
            else:
                label = {"raw": r"\text{chain rule}", "simplified": r"\text{simplified}"
                         }.get(kind, rf"\text{{{kind}}}")
                wrt = latex(self.definition.forward.inputs[sym])
                rows.append(rf"\frac{{\partial L}}{{\partial {wrt}}} &= {latex(expr)} && {label}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
