"""The fused ops tensorgrad itself runs on, defined by their forward, and the lecture's
(and the textbooks') hand-derived gradients to check the derived ones against.

`F.cross_entropy`, `F.batch_norm` (and so `nn.BatchNorm1d` in training mode) and
`F.layer_norm` (`nn.LayerNorm`) fetch their op from `builtin_op` on first use: the
derivation runs then, once per process.
"""
import sympy as sp

from .kernels import fused_op


# ---------------------------------------------------------------- softmax cross-entropy

def cross_entropy_definition(reduction):
    """Softmax cross-entropy over the classes c of each row b of logits, then `reduction`
    over the batch ('mean', as the lecture, 'sum' or 'none'). `target` is one-hot."""

    def cross_entropy(f, logits, target):
        """-log softmax(logits)[target] per row, reduced over the batch."""
        f.one_hot(target, "c")                   # each row: a single 1 (sums to 1, selects)
        lse = f.logsumexp(logits, "c", name="lse")       # log(sum(exp(logits))) per row
        logprobs = f.let("logprobs", logits - lse)
        nll = f.let("nll", -f.sum(target * logprobs, "c"))   # -logprobs[b, Y[b]]
        if reduction == "none":
            return nll
        if reduction == "sum":
            return f.sum(nll, "b")
        return f.mean(nll, "b")

    cross_entropy.__name__ = f"cross_entropy_{reduction}"
    return cross_entropy


def batch_norm(f, hprebn, bngain, bnbias, eps=1e-5):
    """Training-mode batchnorm as the lecture writes it: batch mean, Bessel-corrected
    variance (divided by n - 1), eps, gain and bias."""
    n = f.n()
    bnmeani = f.let("bnmeani", f.sum(hprebn) / n)
    bndiff = f.let("bndiff", hprebn - bnmeani)
    bndiff2 = f.let("bndiff2", bndiff**2)
    bnvar = f.let("bnvar", f.sum(bndiff2) / (n - 1), nonnegative=True)   # a mean square
    bnvar_inv = f.let("bnvar_inv", (bnvar + eps)**sp.Rational(-1, 2))
    bnraw = f.let("bnraw", bndiff * bnvar_inv)
    return bngain * bnraw + bnbias


def layer_norm(f, x, weight, bias, eps=1e-5):
    """Layer normalisation, as PyTorch computes it: each row normalised with its own mean
    and biased variance (divided by n), then scaled and shifted per element of the row."""
    n = f.n()
    mean = f.let("mean", f.sum(x) / n)
    xmu = f.let("xmu", x - mean)
    var = f.let("var", f.sum(xmu**2) / n, nonnegative=True)   # a mean square
    rstd = f.let("rstd", (var + eps)**sp.Rational(-1, 2))      # PyTorch's name for it
    xhat = f.let("xhat", xmu * rstd)
    return weight * xhat + bias


def _make(name):
    if name.startswith("cross_entropy_"):
        return fused_op(cross_entropy_definition(name.rsplit("_", 1)[1]),
                        axes={"b": "n", "c": "C"}, dim={"b": 0, "c": 1}, output="loss")
    if name == "batch_norm":
        return fused_op(batch_norm, along={"hprebn": "i", "bngain": (), "bnbias": ()},
                        positive=("eps",), dim=0, output="hpreact", upstream="dhpreact")
    if name == "layer_norm":         # weight and bias vary along the normalised axis
        return fused_op(layer_norm, positive=("eps",), dim=-1)
    raise KeyError(f"no built-in fused op {name!r}; there are {', '.join(BUILTINS)}")


BUILTINS = ("cross_entropy_mean", "cross_entropy_sum", "cross_entropy_none", "batch_norm",
            "layer_norm")
_built = {}


def builtin_op(name):
    """The built-in fused op `name` (see BUILTINS), defined on first use, then cached."""
    if name not in _built:
        _built[name] = _make(name)
    return _built[name]


# ---------------------------------------------------------------- the lecture's results

def lecture_dlogits(definition):
    """Exercise 2, in the definition's symbols: dlogits = (softmax(logits) - one_hot(Y)) / n,
    times the upstream gradient g of the loss (1 when the loss is the final result)."""
    f = definition.forward
    b, c = f.axes["b"], f.axes["c"]
    logits, target = f.inputs["logits"], f.inputs["target"]
    softmax = sp.exp(logits) / sp.Sum(sp.exp(logits), (c.index, 0, c.length - 1))
    return definition.g * (softmax - target) / b.length


def lecture_dhprebn(definition):
    """Exercise 3, in the definition's symbols:
    dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0)
              - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))"""
    s = definition.symbol
    i = definition.forward.axes["i"]
    n = i.length
    total = lambda e: sp.Sum(e, (i.index, 0, n - 1))      # noqa: E731  .sum(0)
    dhpreact, bnraw = s("dhpreact"), s("bnraw")
    return s("bngain") * s("bnvar_inv") / n * (
        n * dhpreact - total(dhpreact) - n / (n - 1) * bnraw * total(dhpreact * bnraw))


def textbook_dx(definition):
    """Layer norm's input gradient as the textbooks write it, in the definition's symbols:
    with dxhat = g * weight,
    dx = rstd/n * (n*dxhat - dxhat.sum(-1) - xhat*(dxhat*xhat).sum(-1))"""
    s = definition.symbol
    i = definition.forward.axes["i"]
    n = i.length
    total = lambda e: sp.Sum(e, (i.index, 0, n - 1))      # noqa: E731  .sum(-1)
    dxhat, xhat = s("g") * s("weight"), s("xhat")
    return s("rstd") / n * (n * dxhat - total(dxhat) - xhat * total(dxhat * xhat))
