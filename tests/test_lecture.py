"""The compatibility contract: the lecture's code runs on tensorgrad.

"makemore part 4: becoming a backprop ninja" builds a two-layer MLP with batchnorm on the
names data set, backpropagates through it by hand, and checks every hand-written gradient
against the engine's. tensorgrad promises that this code runs with only the imports changed,
so the tests below are written the way the lecture writes its notebook: `torch.` calls,
in-place `+=` on tensors in the graph, a `cmp` table, a training loop under `no_grad`.

References, so that each test can fail: the lecture's published figures (split sizes,
parameter counts), numpy re-computations, and, when it is installed, PyTorch itself run on
the same parameter values and the same batch.

Run with -s to see the comparison table of exercise 1.
"""
import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import tensorgrad as torch
import tensorgrad.nn.functional as F

NAMES_CANDIDATES = [
    Path(torch.__file__).resolve().parent / "data" / "names.txt",   # bundled with the package
    Path(__file__).resolve().parents[2] / "shared/data/names.txt",  # next to the repository
]
BLOCK_SIZE = 3
N_EMBD = 10


# ---------------------------------------------------------------- data

@pytest.fixture(scope="module")
def words():
    """The 32,033 names, in file order."""
    path = next((p for p in NAMES_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("names.txt not found; looked in " + ", ".join(map(str, NAMES_CANDIDATES)))
    return path.read_text().splitlines()


def build_dataset(words, stoi):
    """Every (context of 3 characters -> next character) example of `words`, as tensors."""
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK_SIZE
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]   # slide the window one character on
    return torch.tensor(X), torch.tensor(Y)


@pytest.fixture(scope="module")
def data(words):
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}

    shuffled = list(words)
    random.seed(42)
    random.shuffle(shuffled)
    n1 = int(0.8 * len(shuffled))
    n2 = int(0.9 * len(shuffled))
    Xtr, Ytr = build_dataset(shuffled[:n1], stoi)
    Xdev, Ydev = build_dataset(shuffled[n1:n2], stoi)
    Xte, Yte = build_dataset(shuffled[n2:], stoi)
    return SimpleNamespace(stoi=stoi, itos=itos, vocab_size=len(itos), Xtr=Xtr, Ytr=Ytr,
                           Xdev=Xdev, Ydev=Ydev, Xte=Xte, Yte=Yte)


def test_names_file(words):
    assert len(words) == 32033
    assert max(len(w) for w in words) == 15
    assert all(w.isalpha() and w.islower() for w in words)


def test_vocabulary_and_splits(data):
    assert data.vocab_size == 27
    assert data.itos[0] == "." and data.itos[1] == "a" and data.itos[26] == "z"
    assert data.Xtr.shape == (182625, 3) and data.Ytr.shape == (182625,)
    assert data.Xdev.shape == (22655, 3) and data.Ydev.shape == (22655,)
    assert data.Xte.shape == (22866, 3) and data.Yte.shape == (22866,)
    assert data.Xtr.dtype == torch.int64 and data.Ytr.dtype == torch.int64


def test_contexts_of_one_name(data):
    """'emma' gives ... -> e, ..e -> m, .em -> m, emm -> a, mma -> ."""
    X, Y = build_dataset(["emma"], data.stoi)
    contexts = ["".join(data.itos[i] for i in row) for row in X.tolist()]
    assert contexts == ["...", "..e", ".em", "emm", "mma"]
    assert "".join(data.itos[i] for i in Y.tolist()) == "emma."


# ---------------------------------------------------------------- exercise 1

def chunked_forward(torch, C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb):
    """The lecture's forward pass, one small step per line, for `torch` the library given.

    Taking the library as an argument lets the very same lines run on tensorgrad and on
    PyTorch. Returns the loss and the 19 intermediates, from the loss backwards.
    """
    n = Xb.shape[0]
    emb = C[Xb]                                           # (32, 3, 10)
    embcat = emb.view(emb.shape[0], -1)                   # (32, 30)
    # first linear layer
    hprebn = embcat @ W1 + b1                             # (32, 64)
    # batchnorm, in steps
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)         # (1, 64)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)    # Bessel: divide by n - 1
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)                               # (32, 64)
    # second linear layer
    logits = h @ W2 + b2                                  # (32, 27)
    # cross-entropy, in steps
    logit_maxes = logits.max(1, keepdim=True).values      # (32, 1)
    norm_logits = logits - logit_maxes                    # shifted for a safe exp
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)             # (32, 1)
    counts_sum_inv = counts_sum**-1                       # not 1.0 / counts_sum: see the lecture
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    intermediates = dict(
        logprobs=logprobs, probs=probs, counts_sum_inv=counts_sum_inv,
        counts_sum=counts_sum, counts=counts, norm_logits=norm_logits,
        logit_maxes=logit_maxes, logits=logits, h=h, hpreact=hpreact, bnraw=bnraw,
        bnvar_inv=bnvar_inv, bnvar=bnvar, bndiff2=bndiff2, bndiff=bndiff, hprebn=hprebn,
        bnmeani=bnmeani, embcat=embcat, emb=emb)
    return loss, intermediates


EXPECTED_SHAPES = dict(
    logprobs=(32, 27), probs=(32, 27), counts_sum_inv=(32, 1), counts_sum=(32, 1),
    counts=(32, 27), norm_logits=(32, 27), logit_maxes=(32, 1), logits=(32, 27),
    h=(32, 64), hpreact=(32, 64), bnraw=(32, 64), bnvar_inv=(1, 64), bnvar=(1, 64),
    bndiff2=(32, 64), bndiff=(32, 64), hprebn=(32, 64), bnmeani=(1, 64), embcat=(32, 30),
    emb=(32, 3, 10))
PARAMETER_NAMES = ["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]


def init_parameters(vocab_size, n_hidden):
    """Small random values everywhere, biases included, so no wrong gradient hides behind 0."""
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((vocab_size, N_EMBD), generator=g)
    fan_in = N_EMBD * BLOCK_SIZE
    W1 = torch.randn((fan_in, n_hidden), generator=g) * (5 / 3) / fan_in**0.5
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
    b2 = torch.randn(vocab_size, generator=g) * 0.1
    torch.manual_seed(42)            # the lecture draws these two from the default generator
    bngain = torch.randn((1, n_hidden)) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden)) * 0.1
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    return g, parameters


@pytest.fixture(scope="module")
def ex1(data):
    """Exercise 1: forward in steps, `loss.backward()`, then the same gradients by hand."""
    g, parameters = init_parameters(data.vocab_size, n_hidden=64)
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    batch_size = n = 32
    ix = torch.randint(0, data.Xtr.shape[0], (batch_size,), generator=g)
    Xb, Yb = data.Xtr[ix], data.Ytr[ix]

    loss, mid = chunked_forward(torch, *parameters, Xb, Yb)
    for p in parameters:
        p.grad = None
    for t in mid.values():
        t.retain_grad()
    loss.backward()

    # The same gradients by hand, from the loss back to the embedding table. Grad mode
    # stays on, as in the lecture: these are ordinary ops on tensors in the graph.
    m = SimpleNamespace(**mid)
    dlogprobs = torch.zeros_like(m.logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n                    # mean of n picked entries, negated
    dprobs = (1.0 / m.probs) * dlogprobs                  # d log(x) = 1 / x
    dcounts_sum_inv = (m.counts * dprobs).sum(1, keepdim=True)   # broadcast column: sum it
    dcounts = m.counts_sum_inv * dprobs                   # first use of counts
    dcounts_sum = -m.counts_sum**-2 * dcounts_sum_inv     # d x**-1 = -x**-2
    dcounts += torch.ones_like(m.counts) * dcounts_sum    # second use: through the row sum
    dnorm_logits = m.counts * dcounts                     # d exp(x) = exp(x)
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(m.logits.max(1).indices, num_classes=m.logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = m.h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - m.h**2) * dh                        # d tanh(x) = 1 - tanh(x)**2
    dbngain = (m.bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = m.bnvar_inv * dbnraw                        # first use of bndiff
    dbnvar_inv = (m.bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (m.bnvar + 1e-5)**-1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(m.bndiff2) * dbnvar
    dbndiff += 2 * m.bndiff * dbndiff2                    # second use: through the square
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0, keepdim=True)
    dhprebn += 1.0 / n * (torch.ones_like(m.hprebn) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = m.embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(m.emb.shape)
    dC = torch.zeros_like(C)
    for k in range(Xb.shape[0]):                          # each row of C, as often as it was used
        for j in range(Xb.shape[1]):
            ix = Xb[k, j]
            dC[ix] += demb[k, j]

    manual = dict(
        logprobs=dlogprobs, probs=dprobs, counts_sum_inv=dcounts_sum_inv,
        counts_sum=dcounts_sum, counts=dcounts, norm_logits=dnorm_logits,
        logit_maxes=dlogit_maxes, logits=dlogits, h=dh, hpreact=dhpreact, bnraw=dbnraw,
        bnvar_inv=dbnvar_inv, bnvar=dbnvar, bndiff2=dbndiff2, bndiff=dbndiff, hprebn=dhprebn,
        bnmeani=dbnmeani, embcat=dembcat, emb=demb,
        C=dC, W1=dW1, b1=db1, W2=dW2, b2=db2, bngain=dbngain, bnbias=dbnbias)
    tensors = dict(mid, **dict(zip(PARAMETER_NAMES, parameters)))
    return SimpleNamespace(parameters=parameters, Xb=Xb, Yb=Yb, n=n, loss=loss, mid=mid,
                           manual=manual, tensors=tensors)


def cmp(name, dt, t):
    """One row of the lecture's table: equal bit for bit?, allclose?, largest difference."""
    engine = t.grad
    row = (torch.all(dt == engine).item(), torch.allclose(dt, engine),
           (dt - engine).abs().max().item())
    print("{:<15} exact {!s:<5}  approx {!s:<5}  maxdiff {:.3g}".format(name, *row))
    return row


def test_exercise1_parameters_and_shapes(ex1):
    assert sum(p.nelement() for p in ex1.parameters) == 4137
    assert {k: tuple(t.shape) for k, t in ex1.mid.items()} == EXPECTED_SHAPES
    assert list(ex1.manual) == list(EXPECTED_SHAPES) + PARAMETER_NAMES   # 26 rows
    assert ex1.loss.shape == () and ex1.loss.dtype == torch.float32
    # a freshly initialised 27-way classifier: close to a uniform guess, log(27) = 3.30
    assert 3.0 < ex1.loss.item() < 4.0


def test_exercise1_loss_matches_numpy(ex1):
    """The chunked loss against a float64 numpy computation of the same network."""
    C, W1, b1, W2, b2, bngain, bnbias = (np.asarray(p, np.float64) for p in ex1.parameters)
    Xb, Yb = np.asarray(ex1.Xb), np.asarray(ex1.Yb)
    hprebn = C[Xb].reshape(len(Xb), -1) @ W1 + b1
    hpreact = (bngain * (hprebn - hprebn.mean(0)) / np.sqrt(hprebn.var(0, ddof=1) + 1e-5)
               + bnbias)
    logits = np.tanh(hpreact) @ W2 + b2
    logits -= logits.max(1, keepdims=True)
    logprobs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -logprobs[np.arange(len(Yb)), Yb].mean()
    assert ex1.loss.item() == pytest.approx(expected, rel=1e-5)


def test_exercise1_manual_backward_table(ex1):
    """All 26 hand-written gradients equal the engine's, and bit for bit."""
    print()
    rows = {name: cmp(name, ex1.manual[name], ex1.tensors[name]) for name in ex1.manual}
    assert len(rows) == 26
    not_close = [name for name, (_, close, _) in rows.items() if not close]
    assert not_close == []
    exact = [name for name, (ex, _, _) in rows.items() if ex]
    print(f"bit-exact: {len(exact)} / {len(rows)}")
    assert len(exact) == 26, f"not bit-exact: {sorted(set(rows) - set(exact))}"


def test_exercise1_manual_backward_stays_in_the_graph(ex1):
    """The hand-written backward ran with grad mode on; its in-place updates were recorded."""
    assert ex1.manual["counts"].requires_grad and not ex1.manual["counts"].is_leaf
    assert ex1.manual["C"].requires_grad        # dC[ix] += demb[k, j] put dC in the graph
    assert ex1.manual["C"].shape == (27, 10) and ex1.manual["C"].dtype == torch.float32
    # every row of dC collects one entry of demb per use of that character in the batch
    uses = np.bincount(np.asarray(ex1.Xb).ravel(), minlength=27)
    unused = np.flatnonzero(uses == 0)
    assert (np.asarray(ex1.manual["C"])[unused] == 0).all()
    expected = np.zeros((27, 10), np.float64)
    np.add.at(expected, np.asarray(ex1.Xb), np.asarray(ex1.manual["emb"], np.float64))
    assert np.allclose(np.asarray(ex1.manual["C"]), expected, atol=1e-7)


def test_exercise1_against_pytorch(ex1):
    """PyTorch, on the same parameter values and batch, gives the same loss and gradients."""
    pt = pytest.importorskip("torch")
    params = [pt.tensor(np.array(p), requires_grad=True) for p in ex1.parameters]
    Xb, Yb = pt.tensor(np.array(ex1.Xb)), pt.tensor(np.array(ex1.Yb))
    loss, mid = chunked_forward(pt, *params, Xb, Yb)
    for t in mid.values():
        t.retain_grad()
    loss.backward()
    assert loss.item() == pytest.approx(ex1.loss.item(), rel=1e-6)
    reference = dict(mid, **dict(zip(PARAMETER_NAMES, params)))
    assert set(reference) == set(ex1.manual)
    for name, t in reference.items():
        ours = np.asarray(ex1.tensors[name].grad)
        theirs = t.grad.numpy()
        assert ours.shape == theirs.shape, name
        # float32 tolerances; atol covers the gradients that are zero in exact arithmetic
        # (logit_maxes, b1: the loss does not depend on them) and are rounding noise here
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7, err_msg=name)
        # and the hand-written gradient, written in tensorgrad, agrees with PyTorch too
        np.testing.assert_allclose(np.asarray(ex1.manual[name]), theirs, rtol=1e-5,
                                   atol=1e-7, err_msg=name)


# ---------------------------------------------------------------- exercises 2 and 3

def test_exercise2_cross_entropy_equals_chunked_loss(ex1):
    loss_fast = F.cross_entropy(ex1.mid["logits"], ex1.Yb)
    assert abs(loss_fast.item() - ex1.loss.item()) < 1e-6


def test_exercise2_fused_dlogits(ex1):
    logits, Yb, n = ex1.mid["logits"], ex1.Yb, ex1.n
    dlogits = F.softmax(logits, 1)
    assert dlogits.requires_grad                          # in-place ops below are recorded
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    assert dlogits.shape == (32, 27)
    diff = (dlogits - logits.grad).abs().max().item()
    print(f"\nfused dlogits maxdiff: {diff}")
    assert torch.allclose(dlogits, logits.grad)
    assert diff < 1e-7
    assert np.abs(np.asarray(dlogits.sum(1))).max() < 1e-7  # each row sums to zero
    # the one negative entry per row is the target, and it is softmax - 1 over n
    assert (dlogits.argmin(1) == Yb).all().item()


def test_exercise2_fused_dlogits_matches_one_hot_formula(ex1):
    """dlogits = (softmax(logits) - one_hot(Yb)) / n, computed in numpy from the logits."""
    logits = np.asarray(ex1.mid["logits"], np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = (probs - np.eye(27)[np.asarray(ex1.Yb)]) / ex1.n
    assert np.allclose(np.asarray(ex1.mid["logits"].grad), expected, atol=1e-8)


def test_exercise3_one_line_batchnorm(ex1):
    m = SimpleNamespace(**ex1.mid)
    bngain, bnbias = ex1.parameters[5], ex1.parameters[6]
    hpreact_fast = (bngain * (m.hprebn - m.hprebn.mean(0, keepdim=True))
                    / torch.sqrt(m.hprebn.var(0, keepdim=True, unbiased=True) + 1e-5) + bnbias)
    diff = (hpreact_fast - m.hpreact).abs().max().item()
    print(f"\none-line batchnorm maxdiff: {diff}")
    assert hpreact_fast.shape == (32, 64)
    assert diff < 1e-5


def test_exercise3_fused_dhprebn(ex1):
    m = SimpleNamespace(**ex1.mid)
    bngain, n = ex1.parameters[5], ex1.n
    dhpreact = m.hpreact.grad
    dhprebn = bngain * m.bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - 1) * m.bnraw * (dhpreact * m.bnraw).sum(0))
    diff = (dhprebn - m.hprebn.grad).abs().max().item()
    print(f"\nfused dhprebn maxdiff: {diff}")
    assert dhprebn.shape == (32, 64)
    assert torch.allclose(dhprebn, m.hprebn.grad)
    assert diff < 1e-8
    # batchnorm removes each column's mean: the gradient of its input sums to 0 per column
    assert np.abs(np.asarray(dhprebn.sum(0))).max() < 1e-8


# ---------------------------------------------------------------- exercise 4

MAX_STEPS = 300


def autograd_gradients(parameters, Xb, Yb):
    """The gradients of one batch's loss, by `loss.backward()` through the compact forward."""
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    emb = C[Xb]
    hprebn = emb.view(emb.shape[0], -1) @ W1 + b1
    hpreact = (bngain * (hprebn - hprebn.mean(0, keepdim=True))
               * (hprebn.var(0, keepdim=True, unbiased=True) + 1e-5)**-0.5 + bnbias)
    logits = torch.tanh(hpreact) @ W2 + b2
    loss = F.cross_entropy(logits, Yb)
    for p in parameters:
        p.grad = None
    loss.backward()
    return [p.grad for p in parameters]


@pytest.fixture(scope="module")
def ex4(data):
    """Exercise 4: training with the hand-written, fused backward pass, under no_grad."""
    Xtr, Ytr = data.Xtr, data.Ytr
    g, parameters = init_parameters(data.vocab_size, n_hidden=200)
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    batch_size = n = 32
    lossi, step0 = [], {}

    with torch.no_grad():
        for i in range(MAX_STEPS):
            ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
            Xb, Yb = Xtr[ix], Ytr[ix]

            # forward
            emb = C[Xb]                                        # (32, 3, 10)
            embcat = emb.view(emb.shape[0], -1)                # (32, 30)
            hprebn = embcat @ W1 + b1                          # (32, 200)
            bnmean = hprebn.mean(0, keepdim=True)
            bnvar = hprebn.var(0, keepdim=True, unbiased=True)
            bnvar_inv = (bnvar + 1e-5)**-0.5
            bnraw = (hprebn - bnmean) * bnvar_inv
            hpreact = bngain * bnraw + bnbias
            h = torch.tanh(hpreact)
            logits = h @ W2 + b2                               # (32, 27)
            loss = F.cross_entropy(logits, Yb)

            # backward, by hand, with the fused formulas
            dlogits = F.softmax(logits, 1)
            dlogits[range(n), Yb] -= 1
            dlogits /= n
            dh = dlogits @ W2.T
            dW2 = h.T @ dlogits
            db2 = dlogits.sum(0)
            dhpreact = (1.0 - h**2) * dh
            dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
            dbnbias = dhpreact.sum(0, keepdim=True)
            dhprebn = bngain * bnvar_inv / n * (
                n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
            dembcat = dhprebn @ W1.T
            dW1 = embcat.T @ dhprebn
            db1 = dhprebn.sum(0)
            demb = dembcat.view(emb.shape)
            dC = torch.zeros_like(C)
            for k in range(Xb.shape[0]):
                for j in range(Xb.shape[1]):
                    ix = Xb[k, j]
                    dC[ix] += demb[k, j]
            grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]

            if i == 0:   # check against the engine before the first update
                step0["requires_grad"] = [t.requires_grad for t in (logits, dlogits, dC)]
                step0["manual"] = [gr.numpy().copy() for gr in grads]
                with torch.set_grad_enabled(True):
                    step0["autograd"] = [gr.numpy().copy()
                                         for gr in autograd_gradients(parameters, Xb, Yb)]
                step0["grad_enabled_after"] = torch.is_grad_enabled()

            lr = 0.1 if i < 100000 else 0.01
            for p, grad in zip(parameters, grads):
                p.data += -lr * grad
            lossi.append(loss.log10().item())

    # calibrate batchnorm over the whole training set
    with torch.no_grad():
        emb = C[Xtr]
        embcat = emb.view(emb.shape[0], -1)
        hpreact = embcat @ W1 + b1
        bnmean = hpreact.mean(0, keepdim=True)
        bnvar = hpreact.var(0, keepdim=True, unbiased=True)

    @torch.no_grad()
    def split_loss(split):
        x, y = {"train": (Xtr, Ytr), "val": (data.Xdev, data.Ydev),
                "test": (data.Xte, data.Yte)}[split]
        emb = C[x]
        embcat = emb.view(emb.shape[0], -1)
        hpreact = embcat @ W1 + b1
        hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5)**-0.5 + bnbias
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, y)
        assert not loss.requires_grad
        return loss.item()

    def sample(count, seed):
        g = torch.Generator().manual_seed(seed)
        names = []
        for _ in range(count):
            out, context = [], [0] * BLOCK_SIZE
            while len(out) < 100:
                emb = C[torch.tensor([context])]               # (1, 3, 10)
                embcat = emb.view(emb.shape[0], -1)
                hpreact = embcat @ W1 + b1
                hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5)**-0.5 + bnbias
                h = torch.tanh(hpreact)
                logits = h @ W2 + b2
                probs = F.softmax(logits, dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                out.append(ix)
                if ix == 0:
                    break
            names.append("".join(data.itos[i] for i in out))
        return names

    return SimpleNamespace(parameters=parameters, lossi=lossi, step0=step0, bnmean=bnmean,
                           bnvar=bnvar, split_loss=split_loss, sample=sample)


def test_exercise4_parameter_count(ex4):
    assert sum(p.nelement() for p in ex4.parameters) == 12297
    assert all(p.requires_grad and p.is_leaf for p in ex4.parameters)
    assert all(p.dtype == torch.float32 for p in ex4.parameters)


def test_exercise4_step0_manual_grads_match_autograd(ex4):
    assert ex4.step0["requires_grad"] == [False, False, False]   # nothing recorded in no_grad
    assert ex4.step0["grad_enabled_after"] is False              # the inner block restored it
    assert torch.is_grad_enabled()
    for name, manual, auto in zip(PARAMETER_NAMES, ex4.step0["manual"], ex4.step0["autograd"]):
        assert manual.shape == auto.shape, name
        # b1's gradient is zero in exact arithmetic (batchnorm removes it): atol covers noise
        np.testing.assert_allclose(manual, auto, rtol=1e-5, atol=1e-7, err_msg=name)


def test_exercise4_loss_decreases(ex4):
    losses = 10 ** np.array(ex4.lossi)                  # lossi holds log10 of each loss
    assert len(losses) == MAX_STEPS and np.isfinite(losses).all()
    assert losses[0] == pytest.approx(math.log(27), abs=0.7)   # near uniform at the start
    first, last = losses[:20].mean(), losses[-50:].mean()
    print(f"\nmean loss: first 20 steps {first:.3f}, last 50 steps {last:.3f}")
    assert last < first - 0.4


def test_exercise4_log10_item():
    value = torch.tensor(1000.0).log10().item()
    assert isinstance(value, float) and value == pytest.approx(3.0)


def test_exercise4_batchnorm_calibration(ex4, data):
    C, W1, b1 = (np.asarray(p, np.float64) for p in ex4.parameters[:3])
    hpreact = C[np.asarray(data.Xtr)].reshape(len(data.Xtr), -1) @ W1 + b1
    assert ex4.bnmean.shape == (1, 200) and ex4.bnvar.shape == (1, 200)
    assert not ex4.bnmean.requires_grad and not ex4.bnvar.requires_grad
    # Loose tolerances: numpy sums a float32 column of 182,625 rows one row after another,
    # which drifts by about 5e-4 here (PyTorch's float32 sum stays near 3e-7). Still far
    # tighter than any real mistake: a wrong axis, split, or Bessel's correction dropped
    # on a small set would be off by much more.
    np.testing.assert_allclose(np.asarray(ex4.bnmean)[0], hpreact.mean(0), atol=2e-3)
    np.testing.assert_allclose(np.asarray(ex4.bnvar)[0], hpreact.var(0, ddof=1), rtol=2e-3)


def test_exercise4_split_losses(ex4, data):
    """The evaluation function against a numpy evaluation of the same split and network."""
    losses = {split: ex4.split_loss(split) for split in ("train", "val", "test")}
    print(f"\nsplit losses after {MAX_STEPS} steps: {losses}")
    C, W1, b1, W2, b2, bngain, bnbias = (np.asarray(p, np.float64) for p in ex4.parameters)
    bnmean, bnvar = np.asarray(ex4.bnmean, np.float64), np.asarray(ex4.bnvar, np.float64)
    X, Y = np.asarray(data.Xdev), np.asarray(data.Ydev)
    hpreact = C[X].reshape(len(X), -1) @ W1 + b1
    hpreact = bngain * (hpreact - bnmean) / np.sqrt(bnvar + 1e-5) + bnbias
    logits = np.tanh(hpreact) @ W2 + b2
    logits -= logits.max(1, keepdims=True)
    logprobs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected_val = -logprobs[np.arange(len(Y)), Y].mean()
    assert losses["val"] == pytest.approx(expected_val, rel=1e-5)
    assert all(2.0 < v < math.log(27) for v in losses.values())      # learned something
    assert abs(losses["train"] - losses["val"]) < 0.1                 # 300 steps: no overfit
    assert torch.is_grad_enabled()                                    # decorator restored it


def test_exercise4_sampling(ex4, data):
    names = ex4.sample(20, seed=2147483647 + 10)
    print("\nsamples:", " ".join(names))
    vocabulary = set(data.stoi)
    for name in names:
        assert name.endswith("."), name
        assert "." not in name[:-1], name
        assert set(name) <= vocabulary, name
    assert len(set(names)) > 10                               # not one name over and over
    assert ex4.sample(20, seed=2147483647 + 10) == names      # same seed, same names
    assert ex4.sample(20, seed=2147483647 + 11) != names
