"""examples/gpt.py (tensorgrad/gpt.py): the lecture's GPT against PyTorch with shared
weights, a short run and its outputs, stop and resume, refusals."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import gpt
from tensorgrad.rundir import RunError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "6", "--eval-every", "3", "--eval-batches", "1", "--batch-size", "4",
        "--block-size", "8", "--n-embd", "8", "--n-head", "2", "--n-layer", "1",
        "--samples", "3", "--no-progress"]


def test_the_model_and_its_gradients_match_pytorch_with_shared_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = gpt.gpt_classes(torch)(11, 6, n_embd=8, n_head=2, n_layer=2).double()
    model = gpt.gpt_classes(tg)(11, 6, n_embd=8, n_head=2, n_layer=2).to(tg.float64)
    with torch.no_grad():                   # non-trivial LayerNorm gains and biases
        for name, p in reference.named_parameters():
            if "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 11, (3, 5)), rng.integers(0, 11, (3, 5))    # T < block_size
    logits, loss = model(tg.tensor(x), tg.tensor(y))
    ref_logits, ref_loss = reference(torch.tensor(x), torch.tensor(y))
    loss.backward()
    ref_loss.backward()
    np.testing.assert_allclose(logits.numpy(), ref_logits.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-12)
    grads = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        np.testing.assert_allclose(grads[name].grad.numpy(), p.grad.numpy(), rtol=1e-8,
                                   atol=1e-12, err_msg=name)


def test_a_short_run_writes_its_outputs(tmp_path):
    summary = gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path)]))
    for name in ("loss.png", "checkpoint.npz", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["loss"] == summary["loss"] and saved["steps_run"] == 6
    assert [step for step, _ in saved["val_curve"]] == [3, 6]
    assert len(saved["samples"]) == 3 and not any("\n" in s for s in saved["samples"])
    assert summary["loss"]["train"] < np.log(27)                 # it learned something


def test_stop_then_resume_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    straight = gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path / "a")]))
    calls, real_step = [], gpt.train_step

    def step_then_ctrl_c(*args):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)     # as if Ctrl-C were pressed in step 4
        return real_step(*args)

    monkeypatch.setattr(gpt, "train_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path / "b")]))
    monkeypatch.setattr(gpt, "train_step", real_step)
    resumed = gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path / "b"), "--resume"]))
    assert resumed["steps_run"] == 2
    assert resumed["loss"] == straight["loss"] and resumed["samples"] == straight["samples"]
    assert resumed["val_curve"] == straight["val_curve"]


def test_a_run_does_not_replace_another_and_resume_checks_the_options(tmp_path):
    gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path)]))
    with pytest.raises(RunError, match="holds another run, at step 6"):
        gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path)]))
    with pytest.raises(RunError, match="n_layer=1, but this run has n_layer=2"):
        gpt.train(gpt.parse_args(TINY + ["--out", str(tmp_path), "--resume", "--n-layer", "2"]))


def option_rows():
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `gpt ([^`]*)` \| (.*) \|$", text, re.M)
    assert len(rows) >= 5
    return rows


@pytest.mark.parametrize("options, message", option_rows())
def test_impossible_options_are_refused_in_one_line(tmp_path, options, message):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "gpt.py"),
                             *options.split(), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.strip() == message
    assert not (tmp_path / "out").exists()


def test_help_shows_the_defaults():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "gpt.py"), "--help"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    for text in ("--steps N", "(default: 5000)", "(default: 0.001)", "(default: out-gpt)"):
        assert text in result.stdout, text


def test_the_docs_state_the_defaults_and_the_parameter_count():
    text = " ".join((ROOT / "docs" / "gpt.md").read_text().split())
    args = gpt.parse_args([])
    stated = (f"batch {args.batch_size}, block {args.block_size}, n_embd {args.n_embd}, "
              f"{args.n_head} heads, {args.n_layer} layers, no dropout, AdamW at lr "
              f"{args.lr:g}, {args.steps} steps")
    assert args.dropout == 0 and stated in text
    model = gpt.gpt_classes(tg)(27, args.block_size, args.n_embd, args.n_head, args.n_layer)
    assert f"({sum(p.numel() for p in model.parameters()):,} parameters)" in text
    assert "python examples/gpt.py" in text
