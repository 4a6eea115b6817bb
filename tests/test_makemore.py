"""The names data set, the makemore run (outputs, resume, manual backward) and its errors."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import makemore
from tensorgrad.data import DataError, build_dataset, load_words, split_words, vocabulary
from tensorgrad.rundir import RunError

SMALL = ["--steps", "120", "--n-hidden", "16", "--batch-size", "16", "--samples", "3",
         "--no-progress"]


@pytest.fixture(scope="module")
def names():
    return load_words()


def test_bundled_names_and_the_lectures_split(names):
    assert len(names) == 32033 and max(map(len, names)) == 15
    stoi, itos = vocabulary(names)
    assert len(itos) == 27 and stoi["."] == 0 and itos[1] == "a" and itos[26] == "z"
    sizes = [len(build_dataset(part, 3, stoi)[0]) for part in split_words(names, seed=42)]
    assert sizes == [182625, 22655, 22866]


def test_contexts_of_one_word():
    stoi, itos = vocabulary(["emma"])
    X, Y = build_dataset(["emma"], 3, stoi)
    pairs = ["".join(itos[i] for i in x) + ">" + itos[y] for x, y in zip(X.tolist(), Y.tolist())]
    assert pairs == ["...>e", "..e>m", ".em>m", "emm>a", "mma>."]
    assert X.dtype == tg.int64


@pytest.mark.parametrize("content, problem", [
    (b"", "contains no words"), (b"\n  \n\n", "contains no words"),
    (b"caf\xe9\n", "not UTF-8"), (b"a.b\n", "contains '.'")])
def test_unusable_words_files_are_named_with_their_problem(tmp_path, content, problem):
    path = tmp_path / "words.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        load_words(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_words(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        load_words(tmp_path)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tensorgrad.makemore", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("content, args, message", [
    (b"", [], "contains no words"), (b"\xff\xfe\x00", [], "not UTF-8"),
    (None, [], "no such file"), (b"ann\nbob\n", ["--block-size", "0"], "--block-size must")])
def test_bad_input_gives_one_line_and_no_outputs(tmp_path, content, args, message):
    data = tmp_path / "words.txt"
    if content is not None:
        data.write_bytes(content)
    result = run_cli("--data", str(data), "--out", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_small_run_writes_its_outputs(tmp_path):
    summary = makemore.train(makemore.parse_args(SMALL + ["--out", str(tmp_path)]))
    for name in ("loss.png", "checkpoint.npz", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp"))
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["loss"] == summary["loss"] and saved["steps_run"] == 120
    assert saved["config"]["n_hidden"] == 16 and len(saved["samples"]) == 3
    assert all(set(word) <= set("abcdefghijklmnopqrstuvwxyz") for word in saved["samples"])
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert ckpt["losses"].shape == (120,) and int(ckpt["optim.steps"]) == 120
    assert summary["loss"]["train"] < np.log(27)                 # it learned something


def test_split_loss_is_the_cross_entropy_of_the_models_logits(names):
    stoi, itos = vocabulary(names)
    X, Y = build_dataset(names[:200], 3, stoi)
    model = makemore.NamesMLP(27, 3, n_hidden=16, generator=tg.Generator().manual_seed(1))
    makemore.calibrate(model, X)
    model.eval()
    with tg.no_grad():
        logits = model(X).numpy().astype(np.float64)
    model.train()
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    expected = -logp[np.arange(len(Y)), Y.numpy()].mean()
    assert makemore.split_loss(model, X, Y) == pytest.approx(expected, rel=1e-5)


def test_manual_backward_matches_autograd(names):
    stoi, _ = vocabulary(names)
    X, Y = build_dataset(names[:100], 3, stoi)
    model = makemore.NamesMLP(27, 3, n_hidden=24, generator=tg.Generator().manual_seed(3))
    Xb, Yb = X[:32], Y[:32]
    loss_m, grads = makemore.manual_step(model, Xb, Yb)
    model.bn.running_mean.data[...] = 0
    loss_a = makemore.autograd_step(model, Xb, Yb)
    assert loss_m.item() == pytest.approx(loss_a.item(), rel=1e-6)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_allclose(g.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_manual_mode_trains_like_autograd(tmp_path, capsys):
    auto = makemore.train(makemore.parse_args(SMALL + ["--out", str(tmp_path / "a")]))
    manual = makemore.train(makemore.parse_args(
        SMALL + ["--out", str(tmp_path / "m"), "--backward", "manual"]))
    assert "manual backward vs autograd" in capsys.readouterr().out
    for split in ("train", "val", "test"):
        assert manual["loss"][split] == pytest.approx(auto["loss"][split], abs=2e-3)


def test_interrupt_then_resume_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    straight = makemore.train(makemore.parse_args(SMALL + ["--out", str(tmp_path / "a")]))

    calls = []
    real_step = makemore.autograd_step

    def step_then_ctrl_c(*args):
        calls.append(1)
        if len(calls) == 50:
            os.kill(os.getpid(), signal.SIGINT)     # as if Ctrl-C were pressed in step 50
        return real_step(*args)

    monkeypatch.setattr(makemore, "autograd_step", step_then_ctrl_c)
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        makemore.train(makemore.parse_args(SMALL + ["--out", str(out)]))
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert int(ckpt["optim.steps"]) == 50
    monkeypatch.setattr(makemore, "autograd_step", real_step)
    resumed = makemore.train(makemore.parse_args(SMALL + ["--out", str(out), "--resume"]))
    assert resumed["loss"] == straight["loss"]
    assert resumed["samples"] == straight["samples"]
    a = np.load(tmp_path / "a" / "checkpoint.npz", allow_pickle=False)
    b = np.load(out / "checkpoint.npz", allow_pickle=False)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_other_files_and_other_shapes(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip file")
    with pytest.raises(RunError, match="not a checkpoint"):
        makemore.train(makemore.parse_args(SMALL + ["--out", str(tmp_path), "--resume"]))
    makemore.train(makemore.parse_args(SMALL + ["--out", str(tmp_path), "--steps", "5",
                                                "--overwrite"]))
    with pytest.raises(RunError, match="n_hidden=16, but this run has n_hidden=8"):
        makemore.train(makemore.parse_args(
            SMALL + ["--out", str(tmp_path), "--resume", "--n-hidden", "8", "--steps", "5"]))


def test_sampling_is_reproducible_and_ends_at_the_boundary(names):
    stoi, itos = vocabulary(names)
    model = makemore.NamesMLP(27, 3, n_hidden=16, generator=tg.Generator().manual_seed(0))
    first = makemore.sample(model, itos, 3, 5, tg.Generator().manual_seed(7), 30)
    again = makemore.sample(model, itos, 3, 5, tg.Generator().manual_seed(7), 30)
    assert first == again and len(first) == 5 and all("." not in w for w in first)


def test_the_example_script_and_module_entry_point(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "examples" / "makemore.py"), *SMALL,
                             "--steps", "20", "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "val   loss" in result.stdout and (tmp_path / "summary.json").exists()


def test_cross_entropy_used_for_evaluation_is_stable_on_huge_logits():
    logits = tg.tensor([[1e4, 0.0, -1e4]])
    assert np.isfinite(F.cross_entropy(logits, tg.tensor([2])).item())


@pytest.mark.parametrize("high", [182_625, 2**31 + 1, 3 * 2**30])
def test_one_draw_of_k_batches_is_k_draws_of_one(high):
    # what Batches relies on, for ranges that reject few and about half of numpy's draws
    one, many = tg.Generator().manual_seed(3), tg.Generator().manual_seed(3)
    chunk = tg.randint(0, high, (7 * 32,), generator=one).numpy()
    steps = np.concatenate([tg.randint(0, high, (32,), generator=many).numpy()
                            for _ in range(7)])
    np.testing.assert_array_equal(chunk, steps)
    assert one.get_state() == many.get_state()


def test_batches_are_the_per_step_draws_and_sync_follows_them():
    X = tg.arange(3 * 5000).view(5000, 3)
    Y = tg.arange(5000) * 2
    chunked, stepped = tg.Generator().manual_seed(9), tg.Generator().manual_seed(9)
    batches = makemore.Batches(chunked, X, Y, 32, steps=25, chunk=10)
    for step in range(25):
        if step in (7, 10, 18):                 # mid-chunk, at a chunk's end, mid-chunk
            batches.sync()
            assert chunked.get_state() == stepped.get_state()
        Xb, Yb = batches.next()
        ix = tg.randint(0, 5000, (32,), generator=stepped)
        np.testing.assert_array_equal(Xb.numpy(), X[ix].numpy())
        np.testing.assert_array_equal(Yb.numpy(), Y[ix].numpy())
    batches.sync()
    assert chunked.get_state() == stepped.get_state()


def test_the_benchmarks_tuned_loop_computes_autograds_step():
    # benchmarks/training_run.py's reference must train the same model, or its ratios mean
    # nothing: one step's loss, gradients and running statistics against autograd's
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from lecture_step import forward
    from training_run import TunedTraining
    loop = TunedTraining(27, 3, 10, 200, 32, seed=4)
    rng = np.random.default_rng(5)
    Xb, Yb = rng.integers(0, 27, (32, 3)), rng.integers(0, 27, 32)
    order = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")
    P = [tg.tensor(loop.p[name].copy(), requires_grad=True) for name in order]
    loss = forward(tg, P, tg.tensor(Xb), tg.tensor(Yb))
    loss.backward()
    hpre = (P[0].detach()[tg.tensor(Xb)].view(32, -1) @ P[1].detach() + P[2].detach()).numpy()
    before = {name: loop.p[name].copy() for name in order}
    tuned_loss = loop.step(Xb, Yb, lr=0.5)
    assert tuned_loss == pytest.approx(loss.item(), rel=1e-5)
    for name, p in zip(order, P):
        np.testing.assert_allclose(loop.g[name], p.grad.numpy(), rtol=1e-3, atol=1e-6,
                                   err_msg=name)
        np.testing.assert_allclose(loop.p[name], before[name] - 0.5 * p.grad.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(loop.running_mean, 0.1 * hpre.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loop.running_var, 0.9 + 0.1 * hpre.var(0, ddof=1), rtol=1e-5)
