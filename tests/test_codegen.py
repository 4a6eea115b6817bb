"""Generated code (tensorgrad.codegen): the backward pass as numpy source, and the compiled
step. References: the engine's own gradients (bit for bit), and eager runs of the same step."""
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

import tensorgrad as torch
import tensorgrad.nn.functional as F
from tensorgrad import codegen, viz
from tensorgrad.autograd import keep_grads
from tensorgrad.symbolic import fused_op


EXAMPLES = Path(__file__).parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))           # the examples build the lecture's graphs
from generated_backward import fused_forward  # noqa: E402
from render_graph import lecture_forward  # noqa: E402


def lecture_graph(n=32):
    """The lecture's chunked forward pass on one batch; returns (its variables, loss)."""
    names = lecture_forward(n=n)
    viz.name_tensors(names)
    return names, names["loss"]


def fused_lecture_graph():
    """The same batch on the fused ops from hprebn on; returns (variables, fused loss)."""
    names, _ = lecture_graph()
    return names, fused_forward(names)


def run(program, loss):
    """Call the generated function on the graph's own arrays; backpropagate the engine."""
    out = program(*[leaf.numpy() for leaf in program.leaves], *[a for _, a in program.args])
    loss.backward()
    return out


def assert_bit_exact(program, loss):
    out = run(program, loss)
    assert np.array_equal(np.asarray(out[0]), loss.numpy())
    assert len(out) - 1 == len(program.leaves) > 0
    for leaf, grad in zip(program.leaves, out[1:]):
        assert grad.shape == leaf.shape
        assert grad.dtype == leaf.dtype, leaf.name
        assert np.array_equal(grad, leaf.grad.numpy()), leaf.name


# ---------------------------------------------------------------- the lecture graph

def test_lecture_graph_gradients_are_bit_exact():
    names, loss = lecture_graph()
    program = codegen.generate(loss, {"Xb": names["Xb"], "Yb": names["Yb"]})
    assert [leaf.name for leaf in program.leaves] == ["C", "W1", "b1", "bngain", "bnbias",
                                                      "W2", "b2"]
    assert_bit_exact(program, loss)


def test_lecture_graph_code_reads_like_the_exercise():
    names, loss = lecture_graph()
    source = codegen.generate(loss, {"Xb": names["Xb"], "Yb": names["Yb"]}).source
    for line in ["dprobs = dlogprobs / probs", "dcounts_sum_inv = (dprobs * counts).sum(axis=1",
                 "dh = dlogits @ W2.T", "dW2 = h.T @ dlogits", "np.add.at(dC",
                 "demb = dembcat.reshape((32, 3, 10))", "# (32, 27)", "dbnvar_inv = "]:
        assert line in source, line
    assert "def forward_backward(C, W1, b1, bngain, bnbias, W2, b2, Xb, Yb):" in source


def test_generated_code_runs_standalone_with_only_numpy():
    names, loss = lecture_graph(n=16)
    program = codegen.generate(loss, {"Xb": names["Xb"], "Yb": names["Yb"]})
    assert program.globals == {}
    namespace = {}
    exec("import numpy as np\n" + program.source, namespace)
    assert set(namespace) == {"np", "forward_backward", "__builtins__"}
    arrays = [np.array(leaf.numpy()) for leaf in program.leaves]
    out = namespace["forward_backward"](*arrays, names["Xb"].numpy(), names["Yb"].numpy())
    loss.backward()
    for leaf, grad in zip(program.leaves, out[1:]):
        assert np.array_equal(grad, leaf.grad.numpy()), leaf.name


# ---------------------------------------------------------------- every op, and broadcasting

@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 4), ()),
                                              ((2, 3, 4), (3, 1)), ((4,), (3, 4))])
def test_unbroadcast_sums_are_bit_exact(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.standard_normal(shape_a).astype(np.float32), requires_grad=True)
    b = torch.tensor(rng.standard_normal(shape_b).astype(np.float32) + 3, requires_grad=True)
    w = torch.tensor(rng.standard_normal(np.broadcast_shapes(shape_a, shape_b)).astype(np.float32))
    loss = ((a * b + a / b - b) ** 2 * w).sum()
    assert_bit_exact(codegen.generate(loss), loss)


def test_many_ops_are_bit_exact():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    v = torch.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    y = torch.cat([x.sigmoid(), x.relu(), (x.abs() + 1).sqrt()], 1)            # (4, 15)
    z = y.T.reshape(5, 12).logsumexp(1) + x.max() - x.min(0).values.sum()
    m = (x @ v).exp().clone() + (v @ x.T).tanh() + x.to(torch.float64).sum(1).to(torch.float32)
    s = x.clone()
    s[1:3] = v * 2
    t = x.unsqueeze(0).expand(2, 4, 5).permute(2, 0, 1).mean((1, 2))
    w = x.var(0, keepdim=True) + x.var(1, correction=0).sum() + x[:2, :1].var()
    loss = z.sum() + m.sum() + (s * s).sum() + (t / 3).sum() + w.sum()
    assert_bit_exact(codegen.generate(loss), loss)


@pytest.mark.parametrize("index", [(slice(None), [2, 0, 2]), (Ellipsis, [1, 1]),
                                   (slice(1, None, 2), None, [3, 0])])
def test_gathers_with_slices_are_bit_exact(index):
    """A gather's gradient is scattered with np.add.at, the index passed as a value: its
    slices written as slice(...) (`:` is written only inside brackets)."""
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    loss = (x[index] ** 2 * 1.5).sum()
    assert_bit_exact(codegen.generate(loss), loss)


def test_fused_ops_are_written_out_as_their_derived_formulas():
    """The fused variant: cross-entropy and batchnorm appear as the statements sympy derived
    (exercises 2 and 3), run standalone, and still give the engine's gradients bit for bit."""
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.standard_normal((8, 6)).astype(np.float32), requires_grad=True)
    gain = torch.tensor(rng.standard_normal((1, 6)).astype(np.float32), requires_grad=True)
    bias = torch.tensor(rng.standard_normal((1, 6)).astype(np.float32), requires_grad=True)
    W = torch.tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
    Yb = torch.tensor(rng.integers(0, 5, 8))
    h = F.batch_norm(x, None, None, gain, bias, training=True)
    loss = F.cross_entropy(torch.tanh(h) @ W, Yb)
    program = codegen.generate(loss, {"Yb": Yb})
    assert program.globals == {}
    for line in ["logprobs = _log_softmax(", "* (np.exp(logprobs) - ",
                 "bnvar_inv = ", "def _log_softmax(h, axis):"]:
        assert line in program.source, line
    namespace = {}
    exec("import numpy as np\n" + program.source, namespace)
    out = namespace["forward_backward"](*[np.array(p.numpy()) for p in program.leaves],
                                        *[a for _, a in program.args])
    loss.backward()
    assert np.array_equal(out[0], loss.numpy())
    for leaf, grad in zip(program.leaves, out[1:]):
        assert np.array_equal(grad, leaf.grad.numpy()), leaf.name


def test_the_listings_in_the_docs_are_what_the_engine_writes():
    text = (EXAMPLES.parent / "docs" / "codegen.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    names, loss = lecture_graph()
    assert codegen.generate(loss, {"Xb": names["Xb"], "Yb": names["Yb"]}).source in blocks
    names, loss = fused_lecture_graph()
    program = codegen.generate(loss, {"Xb": names["Xb"], "Yb": names["Yb"]})
    assert program.source in blocks
    assert "dlogits = dloss_2.reshape((1, 1)) / 32 * (np.exp(logprobs) - one_hot)" in program.source
    assert_bit_exact(program, loss)


def test_fused_variant_agrees_with_the_step_by_step_code():
    """Exercises 2 and 3 against exercise 1: the same parameters and batch, the loss through
    F.cross_entropy and F.batch_norm, the generated fused code against the engine's
    step-by-step gradients, in float32 (the lecture finds differences of about 1e-9)."""
    names, fused_loss = fused_lecture_graph()
    loss = names["loss"]
    loss.backward()
    program = codegen.generate(fused_loss, {"Xb": names["Xb"], "Yb": names["Yb"]})
    out = program(*[leaf.numpy() for leaf in program.leaves], *[a for _, a in program.args])
    assert abs(float(out[0]) - loss.item()) <= 1e-6 * abs(loss.item())
    for leaf, grad in zip(program.leaves, out[1:]):
        reference = names[leaf.name].grad.numpy()
        if leaf.name == "b1":               # batchnorm removes b1: both are rounding noise
            assert np.abs(grad).max() < 1e-7 and np.abs(reference).max() < 1e-7
            continue
        scale = np.abs(reference).max()
        assert np.abs(grad - reference).max() <= 1e-6 * scale, leaf.name


@pytest.mark.parametrize("variant, line", [([], "dcounts_sum_inv = (dprobs * counts).sum("),
                                           (["--fused"], "/ 32 * (np.exp(logprobs) - one_hot)")])
def test_the_generated_backward_example_runs(variant, line):
    script = EXAMPLES / "generated_backward.py"
    result = subprocess.run([sys.executable, str(script), *variant], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert line in result.stdout and "bit for bit" in result.stdout


def test_an_op_without_source_form_is_refused_by_name():
    x = torch.randn(4, 5, requires_grad=True)
    loss = F.gelu(x).sum()
    with pytest.raises(codegen.CodegenError, match="gelu"):
        codegen.generate(loss)
    program = codegen.generate(loss, standalone=False)      # through the op table
    assert_bit_exact(program, loss)


def test_a_graph_is_required():
    with pytest.raises(ValueError, match="no recorded graph"):
        codegen.generate(torch.ones(3).sum())


# ---------------------------------------------------------------- the compiled step

def make_model(n_hidden=16, seed=0):
    rng = np.random.default_rng(seed)
    r = lambda *s: torch.tensor(rng.standard_normal(s).astype(np.float32) * 0.3,  # noqa: E731
                                requires_grad=True)
    return [r(27, 10), r(30, n_hidden), r(n_hidden), r(n_hidden, 27), r(27)]


def make_step(P):
    def step(Xb, Yb):
        C, W1, b1, W2, b2 = P
        hprebn = C[Xb].view(Xb.shape[0], -1) @ W1 + b1
        bnraw = (hprebn - hprebn.mean(0, keepdim=True)) / (hprebn.var(0, keepdim=True) + 1e-5).sqrt()
        return F.cross_entropy(torch.tanh(bnraw) @ W2 + b2, Yb)
    return step


def batch(rng, n):
    return torch.tensor(rng.integers(0, 27, (n, 3))), torch.tensor(rng.integers(0, 27, n))


def test_compiled_step_equals_eager_over_several_steps():
    P, Q = make_model(), make_model()
    eager, compiled = make_step(P), codegen.compile(make_step(Q))
    rng = np.random.default_rng(2)
    for k in range(6):
        Xb, Yb = batch(rng, 32)
        for p, q in zip(P, Q):
            p.grad = q.grad = None
        loss = eager(Xb, Yb)
        loss.backward()
        closs = compiled(Xb, Yb)
        assert compiled.last == ("traced" if k == 0 else "compiled")
        assert closs.item() == loss.item()
        for p, q in zip(P, Q):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())
        with torch.no_grad():
            for p, q in zip(P, Q):
                p.data += -0.1 * p.grad.numpy()
                q.data += -0.1 * q.grad.numpy()


def test_compiled_step_accumulates_grads_like_eager():
    P = make_model()
    compiled = codegen.compile(make_step(P))
    Xb, Yb = batch(np.random.default_rng(3), 8)
    compiled(Xb, Yb)
    once = P[1].grad.numpy().copy()
    compiled(Xb, Yb)
    compiled(Xb, Yb)
    assert compiled.last == "compiled"
    assert np.allclose(P[1].grad.numpy(), 3 * once, rtol=1e-5)


def test_compiled_gradients_are_separate_arrays():
    """Two leaves that receive the very same gradient array from the generated code (an add
    passes it on to both) must not share it: changing one .grad leaves the other alone."""
    a, b = (torch.tensor(np.ones(3, np.float32), requires_grad=True) for _ in range(2))
    step = codegen.compile(lambda s: ((a + b) * s).sum())
    for _ in range(3):
        a.grad = b.grad = None
        step(torch.tensor(np.arange(3.0, dtype=np.float32)))
    assert step.last == "compiled"
    a.grad.numpy()[...] = 7
    assert np.array_equal(b.grad.numpy(), np.arange(3.0)) and a.grad.numpy() is not b.grad.numpy()


def test_new_shapes_trace_again():
    P = make_model()
    compiled = codegen.compile(make_step(P))
    rng = np.random.default_rng(4)
    for _ in range(2):
        for p in P:
            p.grad = None
        compiled(*batch(rng, 32))
    assert compiled.last == "compiled"
    for p in P:
        p.grad = None
    Xb, Yb = batch(rng, 16)
    loss = compiled(Xb, Yb)
    assert compiled.last == "traced" and "new input shapes" in compiled.explain()
    expected = make_step(P)(Xb, Yb)
    assert loss.item() == expected.item()
    for p in P:
        p.grad = None
    compiled(*batch(rng, 32))
    assert compiled.last == "compiled" and len(compiled.programs) == 2


def test_a_constant_computed_outside_the_graph_runs_eagerly():
    w = torch.randn(3, requires_grad=True)

    def step(x):
        scale = torch.tensor(x.numpy() * 2)          # outside the graph: read into numpy
        return (w * scale).sum()

    compiled = codegen.compile(step)
    compiled(torch.tensor([1.0, 2.0, 3.0]))
    assert compiled.last == "eager" and "read a tensor's values" in compiled.explain()
    w.grad = None
    compiled(torch.tensor([5.0, 6.0, 7.0]))
    assert compiled.last == "eager"
    assert np.array_equal(w.grad.numpy(), np.array([10.0, 12.0, 14.0], np.float32))


def test_code_that_disagrees_with_eager_on_its_first_run_is_dropped():
    """The last line of defence: should generated code ever differ from eager (here made
    to, by hand), its first run, checked against eager, catches it for good."""
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    compiled = codegen.compile(lambda x: (w * x).sum())
    compiled(torch.tensor([1.0, 1.0, 1.0]))
    program = next(iter(compiled.programs.values())).program
    right = program.function
    program.function = lambda *arrays: [a * 2 for a in right(*arrays)]
    for x in ([5.0, 6.0, 7.0], [1.0, 0.0, 2.0]):
        w.grad = None
        loss = compiled(torch.tensor(x))
        assert compiled.last == "eager" and "disagreed" in compiled.explain()
        assert loss.item() == float(np.dot(w.numpy(), x))
        assert np.array_equal(w.grad.numpy(), np.array(x, np.float32))


def test_code_that_raises_where_eager_does_not_is_dropped_with_eager_state():
    """Should generated code raise on its first run where eager did not (made to, by hand,
    after its batch norm updated the running statistics), the call keeps eager's results
    and running statistics, and the state runs eagerly from then on."""
    from tensorgrad import nn
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    compiled = codegen.compile(lambda x: (models[1](x) ** 2).mean())
    x = torch.randn(8, 4)
    compiled(x)
    (models[0](x) ** 2).mean().backward()
    program = next(iter(compiled.programs.values())).program
    right = program.function

    def raises(*arrays):
        right(*arrays)
        raise FloatingPointError("made to fail")
    program.function = raises
    for k in range(2):
        x = torch.randn(8, 4)
        for m in models:
            m.zero_grad()
        expected, loss = (models[0](x) ** 2).mean(), compiled(x)
        expected.backward()
        assert compiled.last == "eager" and "disagreed" in compiled.explain()
        assert loss.item() == expected.item()
        for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
            assert np.array_equal(a, b), k
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())


class RMSNorm(torch.nn.Module):
    """A user-defined fused op as a layer: its output feeds a batchnorm below."""

    def forward(self, x):
        return rms_norm(x)


@fused_op(dim=-1, positive=("eps",))
def rms_norm(f, x, eps=1e-5):
    return x / sympy.sqrt(f.mean(x**2) + eps)


@pytest.mark.parametrize("first", ["linear", "fused op"])
def test_compiled_step_updates_batchnorm_running_stats_like_eager(first):
    from tensorgrad import nn
    torch.manual_seed(0)
    before = [nn.Linear(6, 8)] if first == "linear" else [nn.Linear(6, 8), RMSNorm()]
    models = [nn.Sequential(*before, nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
              for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    compiled = codegen.compile(lambda x, y: F.cross_entropy(models[1](x), y))
    rng = np.random.default_rng(5)
    for k in range(4):
        x = torch.tensor(rng.standard_normal((10, 6)).astype(np.float32))
        y = torch.tensor(rng.integers(0, 3, 10))
        for m in models:
            m.zero_grad()
        F.cross_entropy(models[0](x), y).backward()
        compiled(x, y)
        for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
            assert np.array_equal(np.asarray(a), np.asarray(b)), (k, name)
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())
    assert compiled.last == "compiled"


def test_compiled_code_computes_a_repeated_subexpression_once():
    """The fused batchnorm's gradient and its weight's gradient both sum `bnraw * dhpreact`
    over the batch: code made to run computes it once, into a name, and stays bit-exact."""
    from tensorgrad import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.tensor(np.random.default_rng(0).standard_normal((10, 6)).astype(np.float32))
    y = torch.tensor(np.arange(10) % 3)
    step = codegen.compile(lambda x, y: F.cross_entropy(model(x), y))
    for _ in range(3):
        model.zero_grad()
        step(x, y)
    assert step.last == "compiled"
    source = next(iter(step.programs.values())).program.source
    backward = source[source.index("# backward pass"):]
    sums = re.findall(r"np\.add\.reduce\((\w+ \* \w+), axis=\(-2,\), keepdims=True\)", backward)
    assert len(sums) == 1 and re.search(r"\n    sum\d+ = np\.add\.reduce\(" + re.escape(sums[0]),
                                        backward), backward
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert all(np.array_equal(g, p.grad.numpy()) for g, p in zip(grads, model.parameters()))


def test_compute_once_stops_where_a_name_it_reads_changes():
    """An expression computed again after one of its names was assigned anew is a new
    value: it is not replaced by the first."""
    from tensorgrad.codegen.emitter import compute_once
    lines = ["a = np.exp(x) + 1", "b = np.exp(x) * 2", "x = a + b", "c = np.exp(x) - 1"]
    assert compute_once(lines, {"a", "b", "c", "x"}) == [
        "common1 = np.exp(x)", "a = common1 + 1", "b = common1 * 2", "x = a + b",
        "c = np.exp(x) - 1"]
    for lines in (["a = np.exp(x) + 1", "np.add.at(x, i, 1)", "b = np.exp(x) * 2"],
                  ["a = np.exp(x) + 1", "np.add.at(x.reshape(-1), i, 1)", "b = np.exp(x) * 2"],
                  ["a = np.exp(x) + 1 if c else 0", "b = np.exp(x) * 2"],   # maybe not run
                  ["a = np.exp(x) + 1", "b = [np.exp(x) for x in y]", "c = np.exp(x) * 2"]):
        assert compute_once(lines, set()) == lines


def test_an_embeddings_gradient_is_added_into_a_flat_array_to_the_same_bits():
    """Code made to run adds an embedding's gradient into the flattened table (numpy's fast
    path for one axis), element by element in eager's order: repeated rows and negative
    rows (which count from the end) give eager's gradient bit for bit."""
    rng = np.random.default_rng(8)
    C = torch.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32), requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 3, 2, 3)).astype(np.float32))
    step = codegen.compile(lambda ix: (C[ix] * w).sum())
    for k in range(3):
        ix = torch.tensor(rng.integers(-5, 5, (4, 3)))
        ix.numpy()[0, :] = ix.numpy()[1, 0]                  # a row picked several times
        C.grad = None
        step(ix)
        ours = C.grad.numpy().copy()
        C.grad = None
        (C[ix] * w).sum().backward()
        assert np.array_equal(ours, C.grad.numpy()), k
    assert step.last == "compiled"
    source = next(iter(step.programs.values())).program.source
    assert re.search(r"np\.add\.at\(\w+\.reshape\(-1\), \(ix\.reshape\(-1, 1\) \* 6 \+ "
                     r"np\.arange\(6\)\)\.reshape\(-1\), \w+\.reshape\(-1\)\)", source), source


def test_a_kept_grad_keeps_its_values_after_the_next_call():
    """The gradients a call hands to .grad are the caller's: a .grad kept from one call
    (PyTorch's semantics) is not overwritten by the next, however the code keeps its
    arrays between calls."""
    P = make_model()
    step = codegen.compile(make_step(P))
    rng = np.random.default_rng(7)
    kept = []
    for _ in range(4):
        for p in P:
            p.grad = None
        step(*batch(rng, 16))
        kept.append([(p.grad, p.grad.numpy().copy()) for p in P])
    assert step.last == "compiled"
    for grads in kept:
        for grad, values in grads:
            assert np.array_equal(grad.numpy(), values)
    assert len({id(g.numpy()) for grads in kept for g, _ in grads}) == 4 * len(P)


@pytest.mark.parametrize("index", [(slice(1, None),), (slice(None, 3),), (slice(1, 3),),
                                   (slice(None, None, 2),), (slice(1, None, 2),),
                                   (slice(None), slice(2, None)), (1, slice(1, None)),
                                   (slice(-3, -1),)], ids=str)
def test_slices_are_written_as_they_index(index):
    """A slice with a start is written `1:`, never `1` (which would index one row)."""
    with keep_grads():
        x = torch.randn(4, 5, requires_grad=True)
        part = x[index]
        loss = (part * torch.randn(*part.shape)).sum()
    assert_bit_exact(codegen.generate(loss), loss)


def test_numbers_that_are_not_finite_are_written_as_numpys_names():
    """A comparison with inf made outside the graph is computed again as np.less(x, np.inf)."""
    W = torch.randn(4, 3, requires_grad=True)
    step = codegen.compile(lambda x: ((x @ W) * (x[:, :3] < math.inf)).sum())
    x = torch.randn(5, 4)
    for _ in range(3):
        W.grad = None
        step(x)
    assert step.last == "compiled", step.explain()
    sources = [e.program.source for e in step.programs.values() if e.program is not None]
    assert any("np.less(const, np.inf)" in source for source in sources)
