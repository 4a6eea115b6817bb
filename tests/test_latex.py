"""Derivations as LaTeX read as a person writes them, and render (with matplotlib's mathtext,
row by row: it has no `aligned` environment)."""
import io
import re

import pytest

from tensorgrad import symbolic

mathtext = pytest.importorskip("matplotlib.mathtext")


def rows(latex):
    """The rows of an `aligned` block, without the alignment marks."""
    body = latex.split("\\begin{aligned}\n")[1].split("\n\\end{aligned}")[0]
    return [row.replace("&&", r"\quad").replace("&", "") for row in body.split(" \\\\\n")]


def renders(row):
    mathtext.math_to_image(f"${row}$", io.BytesIO(), format="png")


@pytest.fixture(scope="module")
def batchnorm():
    return symbolic.derivation("batch_norm").latex()


def test_factors_are_spaced_and_sums_have_their_own_index(batchnorm):
    assert r"\mathrm{bngain}\,\mathrm{bnvar\_inv}\," in batchnorm
    adjacent = r"\\mathrm\{[^}]*\}(_\{[^}]*\})? *\\mathrm"    # two names, no space
    assert not re.search(adjacent, batchnorm)
    simplified = next(line for line in batchnorm.splitlines()
                      if r"\partial \mathrm{hprebn}" in line and "simplified" in line)
    assert r"\mathrm{dhpreact}_{i} - " in simplified                         # free: i
    assert r"\sum_{i'=0}^{n - 1} \mathrm{bnraw}_{i'}\,\mathrm{dhpreact}_{i'}" in simplified
    forward = batchnorm.splitlines()[1]
    assert forward.startswith(r"\mathrm{bnmeani} &= \frac{\sum_{i=0}^{n - 1}")  # no free i


def test_a_step_is_an_indicator_and_elementwise_steps_are_aligned():
    relu = symbolic.derivation("relu").latex()
    assert r"\mathbb{1}\left[x > 0\right]" in relu and r"\theta" not in relu
    tanh = symbolic.derivation("tanh").latex()
    assert rows(tanh) == [r"\mathrm{out} = \tanh{\left(x \right)}",
                          r"\frac{\partial\,\mathrm{out}}{\partial x} = 1 - \tanh^{2}{\left(x "
                          r"\right)} = 1 - \mathrm{out}^{2}"]


@pytest.mark.parametrize("name", ["batch_norm", "cross_entropy_mean", "relu", "pow", "gelu",
                                  "sigmoid", "softplus"])
def test_every_row_renders(name):
    for row in rows(symbolic.derivation(name).latex()):
        renders(row)


@pytest.mark.parametrize("name", ["batch_norm", "cross_entropy_mean"])
def test_the_stages_of_the_simplification_render(name):
    stages = rows(symbolic.derivation(name).latex(stages=True))
    assert sum(r"\text{3. later names}" in row for row in stages) >= 1
    for row in stages:
        renders(row)
