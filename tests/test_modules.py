"""Module containers, buffers, parameters, state dicts, dropout, nn.init and AdamW, against
PyTorch where it is installed: a small GPT (the lecture's layout) with shared weights gives
the same loss and gradients, and trains with AdamW to the same parameters, in float64."""
import math

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import codegen, nn, optim

RNG = np.random.default_rng(5)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ---------------------------------------------------------------- a GPT in either library

def gpt(lib, vocab=11, n_embd=16, n_head=4, block=8, n_layer=2, dropout=0.0):
    """The lecture's GPT (gpt.py's layout), written once for tensorgrad and for PyTorch,
    with makemore's containers mixed in (a ModuleDict, a Parameter). The causal mask is an
    additive buffer of 0 and -inf built with numpy (masked_fill is not what this tests)."""
    nn, F = lib.nn, lib.nn.functional
    mask = np.where(np.tril(np.ones((block, block))) == 0, -np.inf, 0.0)

    class Head(nn.Module):
        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", lib.tensor(mask))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k, q = self.key(x), self.query(x)                       # (B, T, hs)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5     # (B, T, T)
            wei = F.softmax(wei + self.tril[:T, :T], dim=-1)
            return self.dropout(wei) @ self.value(x)                # (B, T, hs)

    class MultiHeadAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList([Head(n_embd // n_head) for _ in range(n_head)])
            self.proj = nn.Linear(n_embd, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            out = lib.cat([h(x) for h in self.heads], dim=-1)
            return self.dropout(self.proj(out))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.sa = MultiHeadAttention()
            self.ffwd = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(),
                                      nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))
            self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(vocab, n_embd), wpe=nn.Embedding(block, n_embd),
                h=nn.Sequential(*[Block() for _ in range(n_layer)]),
                ln_f=nn.LayerNorm(n_embd)))
            self.scale = nn.Parameter(lib.ones(1))
            self.lm_head = nn.Linear(n_embd, vocab)
            self.apply(self._init_weights)

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                lib.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    lib.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                lib.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets):
            B, T = idx.shape
            t = self.transformer
            x = t.wte(idx) + t.wpe(lib.arange(T)) * self.scale     # (B, T, C)
            logits = self.lm_head(t.ln_f(t.h(x)))                  # (B, T, vocab)
            loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
            return logits, loss

    return GPT()


def shared_pair(**config):
    """The same GPT in both libraries, in float64, PyTorch's loaded from tensorgrad's
    state_dict (strictly: every name must match)."""
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    ours = gpt(tg, **config).to(tg.float64)
    theirs = gpt(torch, **config).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return torch, ours, theirs


def batch(vocab=11, B=3, T=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (B, T)), rng.integers(0, vocab, (B, T))


def test_gpt_names_its_parameters_and_buffers_as_pytorch_does():
    torch, ours, theirs = shared_pair()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "transformer.h.1.sa.heads.3.key.weight" in ours.state_dict()
    assert "transformer.h.0.sa.heads.0.tril" in ours.state_dict()
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in theirs.parameters())
    assert all(p.dtype == tg.float64 for p in ours.parameters() + ours.buffers())


def test_gpt_loss_and_gradients_match_pytorch_with_shared_weights():
    torch, ours, theirs = shared_pair()
    X, Y = batch()
    G = RNG.standard_normal((3, 8, 11))          # a non-trivial upstream gradient
    logits, loss = ours(tg.tensor(X), tg.tensor(Y))
    (loss + (logits * tg.tensor(G)).sum()).backward()
    tlogits, tloss = theirs(torch.tensor(X), torch.tensor(Y))
    (tloss + (tlogits * torch.tensor(G)).sum()).backward()
    assert abs(loss.item() - tloss.item()) <= 1e-12 * abs(tloss.item())
    assert rel_err(logits.numpy(), tlogits.detach().numpy()) <= 1e-12
    theirs_by_name = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.grad.numpy(), theirs_by_name[name].grad.numpy()) <= 1e-9, name


def test_gpt_trains_with_adamw_to_pytorchs_parameters():
    torch, ours, theirs = shared_pair()
    opt = optim.AdamW(ours.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
    topt = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.1,
                             betas=(0.9, 0.99), eps=1e-8)
    for step in range(4):
        X, Y = batch(seed=step)
        _, loss = ours(tg.tensor(X), tg.tensor(Y))
        ours.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _, tloss = theirs(torch.tensor(X), torch.tensor(Y))
        topt.zero_grad(set_to_none=True)
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) <= 1e-10 * abs(tloss.item()), step
    theirs_by_name = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.numpy(), theirs_by_name[name].detach().numpy()) <= 1e-10, name


def test_gpt_with_dropout_trains_differently_in_train_and_eval_mode():
    tg.manual_seed(0)
    model = gpt(tg, dropout=0.3).to(tg.float64)
    X, Y = batch()
    x, y = tg.tensor(X), tg.tensor(Y)
    model.eval()
    with tg.no_grad():
        a, b = model(x, y)[1].item(), model(x, y)[1].item()
    model.train()
    tg.manual_seed(1)
    c = model(x, y)[1].item()
    tg.manual_seed(1)
    d = model(x, y)[1].item()
    assert a == b and c == d and c != a


def test_compiled_step_through_the_gpts_layers_in_eval_mode_gives_eagers_gradients():
    """Embeddings, a ModuleDict, LayerNorm, the feed-forward Sequential with ReLU and
    Dropout (eval: the identity), a Parameter. (Attention is left out: F.softmax's
    detached maximum keeps a step from compiling.)"""
    tg.manual_seed(0)
    model = gpt(tg, dropout=0.2).to(tg.float64).eval()
    t = model.transformer

    def step(idx, y):
        x = t.wte(idx) + t.wpe(tg.arange(idx.shape[1])) * model.scale
        x = x + t.h[0].ffwd(t.h[0].ln2(x))
        logits = model.lm_head(t.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))

    compiled = codegen.compile(step)
    for k in range(3):
        X, Y = batch(seed=k)
        model.zero_grad()
        expected = step(tg.tensor(X), tg.tensor(Y))
        expected.backward()
        want = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
        model.zero_grad()
        assert compiled(tg.tensor(X), tg.tensor(Y)).item() == expected.item()
        for p, w in zip(model.parameters(), want):
            assert (p.grad is None and w is None) or np.array_equal(p.grad.numpy(), w)
        assert sum(w is not None for w in want) == 13
    assert compiled.last == "compiled"


# ---------------------------------------------------------------- containers

def test_module_list_and_dict_index_iterate_and_refuse_non_modules():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    layers.append(nn.Tanh()).extend([nn.Sigmoid()])
    layers.insert(0, nn.GELU())
    assert [type(m).__name__ for m in layers] == ["GELU", "Linear", "ReLU", "Tanh", "Sigmoid"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    assert [n for n, _ in layers.named_parameters()] == ["1.weight", "1.bias"]
    with pytest.raises(TypeError, match="ModuleList: module 0 is a int, not a Module"):
        nn.ModuleList([3])
    with pytest.raises(IndexError, match="ModuleList: index 9 is out of range for 5 modules"):
        layers[9]
    d = nn.ModuleDict({"fc": nn.Linear(2, 3), "act": nn.Tanh()})
    assert d.fc is d["fc"] and "act" in d and list(d) == ["fc", "act"] and len(d) == 2
    assert [n for n, _ in d.named_parameters()] == ["fc.weight", "fc.bias"]
    d.train(False)
    assert not d.training and not d.fc.training
    with pytest.raises(KeyError, match=r"no module 'nope'; the keys are \['fc', 'act'\]"):
        d["nope"]
    with pytest.raises(AttributeError, match="ModuleDict has no attribute or module 'nope'"):
        d.nope
    with pytest.raises(KeyError, match="without dots"):
        d["a.b"] = nn.Tanh()
    with pytest.raises(TypeError, match="ModuleDict: x is a int, not a Module"):
        nn.ModuleDict({"x": 1})


def test_children_modules_and_apply_visit_in_pytorchs_order():
    torch = pytest.importorskip("torch")
    seen = {}
    for lib in (tg, torch):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Sequential(lib.nn.ReLU(),
                                                                          lib.nn.Tanh()))
        order = []
        assert model.apply(lambda m: order.append(type(m).__name__)) is model
        seen[lib] = (order, [type(m).__name__ for m in model.children()],
                     [n for n, _ in model.named_modules()],
                     [n for n, _ in model.named_children()])
    assert seen[tg] == seen[torch]


def test_parameter_is_registered_and_shares_its_data():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.start = nn.Parameter(tg.zeros(1, 4))
            self.fixed = tg.ones(3)                          # a plain tensor: not a parameter

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["start"]
    assert isinstance(m.start, nn.Parameter) and m.start.requires_grad and m.start.is_leaf
    assert not isinstance(m.fixed, nn.Parameter) and not isinstance(m.start * 2, nn.Parameter)
    data = tg.zeros(2)
    p = nn.Parameter(data)
    with tg.no_grad():
        p += 1
    assert data.tolist() == [1.0, 1.0]                       # the same memory, as PyTorch
    with pytest.raises(ValueError, match="Parameter: requires_grad=False"):
        nn.Parameter(tg.zeros(2), requires_grad=False)


def test_buffers_are_saved_but_not_trained_and_non_persistent_ones_are_not_saved():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("mask", tg.ones(2, 2))
            self.register_buffer("cache", tg.zeros(3), persistent=False)

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["lin.weight", "lin.bias"]
    assert [n for n, _ in m.named_buffers()] == ["mask", "cache"]
    assert list(m.state_dict()) == ["mask", "lin.weight", "lin.bias"]   # own, then children
    state = m.state_dict()
    state["mask"] = np.full((2, 2), 7.0)
    m.load_state_dict(state)
    assert m.mask.tolist() == [[7.0, 7.0], [7.0, 7.0]]
    m.mask = tg.zeros(2, 2)                                  # replaced: still a buffer
    assert "mask" in m.state_dict()
    with pytest.raises(KeyError, match="attribute 'lin' already exists and is not a buffer"):
        m.register_buffer("lin", tg.ones(1))
    with pytest.raises(TypeError, match="register_buffer: x must be a Tensor or None"):
        m.register_buffer("x", np.ones(2))
    with pytest.raises(KeyError, match="must be an identifier"):
        m.register_buffer("a.b", tg.ones(1))


def test_to_casts_floating_parameters_and_buffers_in_place_and_accepts_only_the_cpu():
    bn = nn.BatchNorm1d(3)
    bn.register_buffer("steps", tg.zeros(1, dtype=tg.int64))
    weight = bn.weight
    assert bn.to("cpu") is bn and bn.cpu() is bn and bn.to(device="cpu:0") is bn
    bn.to(tg.float64)
    assert bn.weight is weight and weight.dtype == tg.float64
    assert bn.running_var.dtype == tg.float64 and bn.steps.dtype == tg.int64
    assert bn.float().weight.dtype == tg.float32
    with pytest.raises(RuntimeError, match="Module.to: device 'cuda' is not available"):
        bn.to("cuda")
    with pytest.raises(RuntimeError, match="Module.cuda: device 'cuda' is not available"):
        bn.cuda()
    with pytest.raises(TypeError, match="Module.to: dtype must be a floating type"):
        bn.to(tg.int64)


def test_zero_grad_sets_none_or_zeros():
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    for zero in (layer.zero_grad, opt.zero_grad):
        layer(tg.randn(4, 3)).sum().backward()
        zero(set_to_none=False)
        assert all(p.grad is not None and not p.grad.numpy().any() for p in layer.parameters())
        zero()
        assert all(p.grad is None for p in layer.parameters())


# ---------------------------------------------------------------- dropout

def test_dropout_scales_kept_elements_and_backpropagates_through_the_same_mask():
    x = tg.tensor(RNG.standard_normal((200, 50)) + 3, requires_grad=True)
    G = RNG.standard_normal((200, 50))
    tg.manual_seed(3)
    y = F.dropout(x, p=0.25)
    y.backward(tg.tensor(G))
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01                       # 10,000 draws
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.75, rtol=1e-15)
    np.testing.assert_array_equal(x.grad.numpy(), np.where(kept, G * (1 / 0.75), 0))
    tg.manual_seed(3)
    assert np.array_equal(F.dropout(x, p=0.25).numpy(), y.numpy())    # the global seed
    assert F.dropout(x, 0.25, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()


def test_dropout_module_follows_train_and_eval():
    drop = nn.Dropout(0.5)
    x = tg.ones(1000)
    assert 300 < (drop(x).numpy() == 0).sum() < 700
    assert drop.eval()(x) is x
    assert repr(drop) == "Dropout(p=0.5, inplace=False)"


@pytest.mark.parametrize("call, kind, message", [
    (lambda: nn.Dropout(1.5), ValueError,
     r"Dropout: p \(the probability of zeroing an element\) must be in \[0, 1\], got 1.5"),
    (lambda: nn.Dropout(-0.1), ValueError, r"must be in \[0, 1\], got -0.1"),
    (lambda: F.dropout(tg.ones(2), p="0.5"), TypeError, "dropout: p .* must be a number"),
    (lambda: F.dropout(tg.ones(2), 0.5, training=1), TypeError, "training must be True or False"),
    (lambda: F.dropout(tg.ones(2, dtype=tg.int64), 0.5), TypeError, "dropout"),
])
def test_bad_dropout_arguments_are_named(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


# ---------------------------------------------------------------- nn.init

def test_init_fills_in_place_from_the_global_generator():
    w = nn.Linear(400, 300).weight
    tg.manual_seed(7)
    assert nn.init.normal_(w, mean=1.0, std=0.02) is w
    first = w.numpy().copy()
    assert abs(first.mean() - 1.0) < 1e-3 and abs(first.std() - 0.02) < 1e-3
    tg.manual_seed(7)
    nn.init.normal_(w, mean=1.0, std=0.02)
    assert np.array_equal(w.numpy(), first) and w.requires_grad and w.is_leaf
    nn.init.uniform_(w, -2.0, 3.0)
    assert w.numpy().min() >= -2.0 and w.numpy().max() < 3.0 and w.numpy().mean() > 0.4
    nn.init.constant_(w, 0.5)
    assert np.all(w.numpy() == 0.5)
    assert not nn.init.zeros_(w).numpy().any() and np.all(nn.init.ones_(w).numpy() == 1)
    bound = math.sqrt(6 / 700)
    nn.init.xavier_uniform_(w)
    assert 0.99 * bound < np.abs(w.numpy()).max() <= bound
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))              # nn.Linear's: +-1/sqrt(400)
    assert 0.99 / 20 < np.abs(w.numpy()).max() <= 1 / 20


def test_init_after_a_forward_refuses_the_stale_backward():
    w = tg.ones(3, requires_grad=True)
    loss = (w * w).sum()
    nn.init.zeros_(w)
    with pytest.raises(RuntimeError):
        loss.backward()


@pytest.mark.parametrize("call, kind, message", [
    (lambda: nn.init.normal_(tg.zeros(3, dtype=tg.int64)), TypeError, "normal_: draws floats"),
    (lambda: nn.init.normal_(np.zeros(3)), TypeError, "normal_: expected a Tensor"),
    (lambda: nn.init.normal_(tg.zeros(3), std=-1.0), ValueError, "std must be at least 0"),
    (lambda: nn.init.uniform_(tg.zeros(3), 1.0, 0.0), ValueError, "expected a <= b"),
    (lambda: nn.init.xavier_uniform_(tg.zeros(3)), ValueError, "at least 2 dimensions"),
    (lambda: nn.init.kaiming_uniform_(tg.zeros(3, 3), mode="in"), ValueError, "mode"),
])
def test_bad_init_arguments_are_named(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


# ---------------------------------------------------------------- AdamW

@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "weight_decay": 0.5},
                                    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6,
                                     "weight_decay": 0.0}])
def test_adamw_matches_pytorch_step_by_step_in_float64(kwargs):
    torch = pytest.importorskip("torch")
    start, target = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    p, tp = tg.tensor(start, requires_grad=True), torch.tensor(start, requires_grad=True)
    opt, topt = optim.AdamW([p], **kwargs), torch.optim.AdamW([tp], **kwargs)
    for _ in range(6):
        for q, o, lib in ((p, opt, tg), (tp, topt, torch)):
            o.zero_grad()
            ((q - lib.tensor(target)) ** 4).sum().backward()
            o.step()
        assert rel_err(p.numpy(), tp.detach().numpy()) <= 1e-13


def test_adamw_decay_differs_from_adams():
    a, b = (tg.tensor([1.0, -2.0], requires_grad=True) for _ in range(2))
    for p, opt in ((a, optim.Adam([a], lr=0.1, weight_decay=0.5)),
                   (b, optim.AdamW([b], lr=0.1, weight_decay=0.5))):
        (p * 0).sum().backward()                     # no gradient but the decay
        opt.step()
    assert np.allclose(b.numpy(), [0.95, -1.9])              # shrunk by 1 - lr * wd
    assert np.allclose(a.numpy(), [0.9, -1.9])               # Adam's normalised step


def test_adamw_state_round_trip_continues_identically():
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([1.0, 2.0], requires_grad=True)
    opt_a, opt_b = optim.AdamW([a], lr=0.1), optim.AdamW([b], lr=0.1)
    for p, opt in ((a, opt_a), (b, opt_b)):
        (p ** 2).sum().backward()
        opt.step()
    opt_c = optim.AdamW([b], lr=0.1)
    opt_c.load_state_dict(opt_b.state_dict())
    for p, opt in ((a, opt_a), (b, opt_c)):
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match=r"AdamW: betas\[0\] must be in \[0, 1\), got 1.0"):
        optim.AdamW([a], betas=(1.0, 0.9))


def test_a_compiled_step_with_dropout_runs_eagerly_in_training_and_compiles_in_eval():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    step = codegen.compile(lambda x: model(x).sum())
    step(tg.randn(2, 4))
    assert step.last == "eager" and "draws random numbers" in step.explain()
    model.eval()
    for _ in range(2):
        x = tg.randn(2, 4)
        assert step(x).item() == model(x).sum().item()
    assert step.last == "compiled"


LAYERS = {
    "Linear": lambda lib, **kw: lib.nn.Linear(2, 3, **kw),
    "Linear(bias=False)": lambda lib, **kw: lib.nn.Linear(2, 3, False, **kw),
    "Embedding": lambda lib, **kw: lib.nn.Embedding(4, 2, **kw),
    "BatchNorm1d": lambda lib, **kw: lib.nn.BatchNorm1d(3, **kw),
    "LayerNorm": lambda lib, **kw: lib.nn.LayerNorm(3, **kw),
}


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_take_device_and_dtype_as_pytorch(layer):
    torch = pytest.importorskip("torch")
    for kw in ({}, {"device": "cpu"}, {"dtype": "float64"}, {"device": "cpu", "dtype": "float64"}):
        made = []
        for lib in (tg, torch):
            args = {k: (getattr(lib, v) if k == "dtype" else v) for k, v in kw.items()}
            m = LAYERS[layer](lib, **args)
            made.append(sorted((n, str(p.dtype).replace("torch.", ""), tuple(p.shape))
                               for n, p in m.named_parameters()))
        assert made[0] == made[1]
    with pytest.raises(RuntimeError, match=f"{layer.split('(')[0]}: device 'cuda' is not "
                                           "available: tensorgrad runs on the CPU only"):
        LAYERS[layer](tg, device="cuda")


def test_batchnorm_counts_training_batches_as_pytorch_compiled_too():
    """num_batches_tracked counts training batches (not eval ones), in state_dict as in
    PyTorch; a compiled step counts them too, running its generated code."""
    from tensorgrad import codegen
    model = tg.nn.Sequential(tg.nn.Linear(4, 3), tg.nn.BatchNorm1d(3))
    step = codegen.compile(lambda x: model(x).sum())
    x = tg.randn(8, 4)
    for _ in range(4):
        model.zero_grad()
        step(x)
    assert step.last == "compiled", step.explain()
    model.eval()
    model(x)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked"]
    assert int(state["1.num_batches_tracked"]) == 4
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
    assert int(theirs[1].num_batches_tracked) == 4
