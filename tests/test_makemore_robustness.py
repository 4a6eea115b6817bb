"""The makemore run as a user meets it: nothing lost (signals, periodic checkpoints, failed
writes, a read-only or busy --out, checkpoints of other runs), nothing hangs (cut samples, a
diverged loss, impossible options), bounded memory (evaluation in chunks) and its outputs
(the loss curve, --help, log lines, the step graph)."""
import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import makemore, rundir
from tensorgrad.data import build_dataset, fingerprint, load_words, split_words, vocabulary

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-hidden", "16", "--batch-size", "16", "--samples", "3"]
# long enough that a signal sent at the first progress line arrives mid-training
SUBPROCESS_RUN = TINY + ["--steps", "2000", "--eval-every", "100", "--save-every", "500"]


def documented(when):
    """The message docs/errors.md gives for a situation, as a regex ({...} varies)."""
    for line in (ROOT / "docs" / "errors.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 2 and cells[0] == when:
            parts = re.split(r"\{\w+\}", cells[1])
            return re.compile("^" + ".+".join(map(re.escape, parts)) + "$")
    raise AssertionError(f"docs/errors.md has no row for {when!r}")


def run_main(argv):
    """makemore.main(argv) in this process: (exit status, the one-line message or None)."""
    try:
        return makemore.main(argv), None
    except SystemExit as e:
        if isinstance(e.code, str):
            return 1, e.code
        return e.code, None


def assert_one_documented_line(message, when):
    assert message is not None and "\n" not in message, message
    assert documented(when).match(message), (when, message)


# ---------------------------------------------------------------- nothing lost: signals

def start_run(out, *extra):
    """A real makemore process writing to `out`, once its first progress line is out."""
    proc = subprocess.Popen([sys.executable, "-m", "tensorgrad.makemore", *SUBPROCESS_RUN,
                             "--out", str(out), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=out.parent)
    lines = []
    for line in proc.stdout:                  # a pipe, not a terminal: progress lines
        lines.append(line)
        if line.startswith("step "):
            return proc, lines
    proc.wait()
    raise AssertionError(f"no progress line: {lines} {proc.stderr.read()}")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run that stopped and resumed runs must reproduce bit for bit."""
    out = tmp_path_factory.mktemp("straight")
    summary = makemore.train(makemore.parse_args(SUBPROCESS_RUN + ["--out", str(out),
                                                                   "--no-progress"]))
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ckpt:
        return summary, dict(ckpt)


def assert_resumes_to(out, straight):
    summary = makemore.train(makemore.parse_args(SUBPROCESS_RUN + ["--out", str(out), "--resume",
                                                                   "--no-progress"]))
    assert summary["loss"] == straight[0]["loss"] and summary["samples"] == straight[0]["samples"]
    assert summary["val_curve"] == straight[0]["val_curve"]
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert set(ckpt.files) == set(straight[1])
        for key in ckpt.files:
            np.testing.assert_array_equal(ckpt[key], straight[1][key], err_msg=key)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint(tmp_path, name, straight):
    number = getattr(signal, name)
    out = tmp_path / "out"
    proc, _ = start_run(out)
    proc.send_signal(number)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + number, stderr
    assert "Traceback" not in stderr
    stopped = re.search(rf"stopped by {name} at step (\d+); checkpoint saved to (.+); "
                        "continue with --resume", stdout)
    assert stopped, stdout
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ckpt:
        step = int(ckpt["optim.steps"])
        assert step == int(stopped[1]) == len(ckpt["losses"]) and 100 <= step < 2000
    assert_resumes_to(out, straight)


def test_a_killed_run_resumes_from_its_last_periodic_checkpoint(tmp_path, straight):
    out = tmp_path / "out"
    proc, _ = start_run(out)
    for line in proc.stdout:                  # past the first periodic save, at step 500
        if line.startswith("step") and int(line.split()[1].split("/")[0]) >= 600:
            break
    proc.kill()                               # as a power cut: no handler runs
    proc.communicate(timeout=60)
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert int(ckpt["optim.steps"]) % 500 == 0 and int(ckpt["optim.steps"]) >= 500
    assert_resumes_to(out, straight)


def test_a_second_run_into_the_same_out_names_the_process_holding_it(tmp_path, capsys):
    out = tmp_path / "out"
    proc, _ = start_run(out, "--steps", "200000")
    try:
        status, message = run_main(TINY + ["--steps", "10", "--out", str(out), "--overwrite"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert status == 1
    assert_one_documented_line(message, "another run uses `--out`")
    assert f"(process {proc.pid})" in message
    assert "parameters" not in capsys.readouterr().out       # refused before training
    with rundir.RunDirectory(out):            # free again once that run has ended
        pass


# ---------------------------------------------------------------- nothing lost: writes

@pytest.fixture
def unwritable(tmp_path, monkeypatch):
    """A directory where no file can be created. Its permissions say so; where they do not
    bind (tests run as root), os.open refuses to create files there, as on a read-only
    mount, so the same code path is exercised either way."""
    directory = tmp_path / "readonly"
    directory.mkdir()
    (directory / ".makemore.lock").write_text("")     # left by an earlier run
    directory.chmod(0o555)
    try:
        (directory / "probe").touch()
        (directory / "probe").unlink()
        real_open = os.open

        def refusing_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and Path(path).parent == directory:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    except PermissionError:
        pass                                  # the permissions bind
    yield directory
    directory.chmod(0o755)


def test_a_read_only_out_is_refused_before_training(unwritable, capsys):
    status, message = run_main(TINY + ["--steps", "10", "--out", str(unwritable)])
    assert status == 1
    assert_one_documented_line(message, "`--out` is read-only")
    assert "parameters" not in capsys.readouterr().out
    assert sorted(p.name for p in unwritable.iterdir()) == [".makemore.lock"]


def test_an_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    status, message = run_main(TINY + ["--steps", "10", "--out", str(tmp_path / "out")])
    assert status == 1
    assert_one_documented_line(message, "`--out` is a file")


def full_disk_at(monkeypatch, failing):
    """The checkpoint writes numbered in `failing` (1, 2, ...) write half a file, then fail
    as on a full disk; the others succeed."""
    real_savez, calls = np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) not in failing:
            return real_savez(f, **arrays)
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rundir.np, "savez", savez)


def test_a_failed_final_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    full_disk_at(monkeypatch, failing={3})           # steps 40 and 80 saved, 120 fails
    status, message = run_main(TINY + ["--steps", "120", "--save-every", "40", "--out",
                                       str(tmp_path), "--no-progress"])
    assert status == 1
    assert_one_documented_line(message, "a checkpoint cannot be written at the end")
    assert "No space left on device" in message
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert int(ckpt["optim.steps"]) == 80
    assert not list(tmp_path.glob("*tmp*"))


def test_a_failed_periodic_write_warns_and_training_goes_on(tmp_path, monkeypatch, capsys):
    full_disk_at(monkeypatch, failing={2})           # step 80 fails, 40 and 120 saved
    status, _ = run_main(TINY + ["--steps", "120", "--save-every", "40", "--out",
                                 str(tmp_path), "--no-progress"])
    assert status == 0
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1
    assert_one_documented_line(warnings[0], "a periodic checkpoint cannot be written")
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert int(ckpt["optim.steps"]) == 120
    assert not list(tmp_path.glob("*tmp*"))


def test_writes_go_through_temp_files_of_their_own(tmp_path):
    seen = []
    with rundir.RunDirectory(tmp_path) as out:
        for _ in range(2):
            out.write("a.txt", lambda f: seen.append(sorted(p.name for p in tmp_path.iterdir()
                                                            if p.suffix == ".tmp")))
    assert all(len(names) == 1 for names in seen) and seen[0] != seen[1]
    assert all(name.startswith(".a.txt.") and str(os.getpid()) in name for [name] in seen)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_fresh_run_does_not_replace_another_runs_checkpoint(tmp_path):
    args = TINY + ["--steps", "30", "--out", str(tmp_path), "--no-progress"]
    assert run_main(args) == (0, None)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    status, message = run_main(args)
    assert status == 1
    assert_one_documented_line(message, "a fresh run would replace a checkpoint")
    assert "at step 30" in message
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert run_main(args + ["--overwrite"]) == (0, None)


def names_file(path, words, bom=False):
    path.write_text(("\ufeff" if bom else "") + "\n".join(words) + "\n", encoding="utf-8")
    return str(path)


def test_resume_refuses_other_data_and_other_options(tmp_path, names):
    first, other = names_file(tmp_path / "a.txt", names[:3000]), names_file(
        tmp_path / "b.txt", names[3000:6000])
    assert len(vocabulary(names[:3000])[1]) == len(vocabulary(names[3000:6000])[1])
    out = str(tmp_path / "out")
    base = TINY + ["--steps", "20", "--out", out, "--no-progress"]
    assert run_main(base + ["--data", first]) == (0, None)
    status, message = run_main(base + ["--data", other, "--resume"])
    assert status == 1
    assert_one_documented_line(message, "`--resume` with other data or options")
    assert (f"was trained with data {first} (3000 words, sha256 "
            f"{fingerprint(names[:3000])[:12]}), but this run has data {other}") in message
    status, message = run_main(base + ["--data", first, "--resume", "--lr", "0.2"])
    assert "was trained with lr=0.1, but this run has lr=0.2;" in message
    assert run_main(base + ["--data", first, "--resume"]) == (0, None)


def test_a_byte_order_mark_is_not_a_character(tmp_path, names):
    plain = load_words(names_file(tmp_path / "plain.txt", names[:50]))
    marked = load_words(names_file(tmp_path / "bom.txt", names[:50], bom=True))
    assert marked == plain and "\ufeff" not in vocabulary(marked)[0]
    assert fingerprint(marked) == fingerprint(plain)


@pytest.fixture(scope="module")
def names():
    return load_words()


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    makemore.train(makemore.parse_args(TINY + ["--steps", "10", "--out", str(out),
                                               "--no-progress"]))
    return (out / "checkpoint.npz").read_bytes()


def rewritten(raw, **changes):
    """A copy of the checkpoint `raw` with entries replaced (None: removed)."""
    import io
    with np.load(io.BytesIO(raw), allow_pickle=False) as ckpt:
        arrays = dict(ckpt)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("damage, when, detail", [
    (lambda raw: b"", "a checkpoint that is not one", "the file is empty"),
    (lambda raw: b"just some text", "a checkpoint that is not one", "not an .npz archive"),
    (lambda raw: raw[:len(raw) // 2], "a truncated or corrupted checkpoint", "BadZipFile"),
    (lambda raw: raw[:-100], "a truncated or corrupted checkpoint", "BadZipFile"),
    (lambda raw: raw[:400] + bytes([raw[400] ^ 0xFF]) + raw[401:],
     "a truncated or corrupted checkpoint", "Bad CRC-32"),
    (lambda raw: rewritten(raw, config=np.array("{not json")), None, "not a makemore checkpoint"),
    (lambda raw: rewritten(raw, config=None), None, "not a makemore checkpoint"),
    (lambda raw: rewritten(raw, rng=None), None, "damaged checkpoint (KeyError: 'rng')"),
    (lambda raw: rewritten(raw, losses=np.zeros(3, np.float32)), None, "3 losses for 10 steps"),
])
def test_a_damaged_checkpoint_gives_one_line(tmp_path, checkpoint_bytes, damage, when, detail):
    (tmp_path / "checkpoint.npz").write_bytes(damage(checkpoint_bytes))
    status, message = run_main(TINY + ["--steps", "10", "--out", str(tmp_path), "--resume"])
    assert status == 1 and "\n" not in message
    assert message.startswith(f"makemore: error: {tmp_path / 'checkpoint.npz'}: ")
    assert detail in message
    if when:
        assert_one_documented_line(message, when)


def test_resume_without_a_checkpoint(tmp_path):
    status, message = run_main(TINY + ["--steps", "10", "--out", str(tmp_path), "--resume"])
    assert status == 1
    assert_one_documented_line(message, "`--resume` without a checkpoint")


# ---------------------------------------------------------------- nothing hangs

def test_a_sample_that_never_ends_is_cut():
    model = makemore.NamesMLP(27, 3, n_hidden=16, generator=tg.Generator().manual_seed(0))
    model.out.bias.data[0] = -1e4                 # '.' never comes
    words = makemore.sample(model, {i: "abcdefghijklmnopqrstuvwxyz."[i - 1] for i in range(27)},
                            3, 4, tg.Generator().manual_seed(1), max_length=9)
    assert [len(w) for w in words] == [9] * 4


def test_a_diverged_run_ends_with_cut_samples(tmp_path, capsys):
    summary = makemore.train(makemore.parse_args(
        TINY + ["--steps", "200", "--lr", "1e4", "--lr-final", "1e4", "--out", str(tmp_path),
                "--no-progress"]))
    assert all(len(w) == 30 for w in summary["samples"])          # names: at most 15 long
    assert "samples reached 30 characters" in capsys.readouterr().out


def test_a_loss_that_is_not_finite_stops_training(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, message = run_main(TINY + ["--steps", "200", "--lr", "1e30", "--save-every",
                                           "1", "--out", str(tmp_path), "--no-progress"])
    assert not caught                              # numpy's warnings would be extra lines
    assert status == 1
    assert_one_documented_line(message, "the loss becomes NaN or infinite")
    step = int(re.search(r"at step (\d+)", message)[1])
    assert message.endswith(f"keeps step {step - 1}")
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as ckpt:
        assert int(ckpt["optim.steps"]) == step - 1 and np.isfinite(ckpt["losses"]).all()


def option_rows():
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `makemore ([^`]*)` \| (.*) \|$", text, re.M)
    assert len(rows) >= 10
    return rows


@pytest.mark.parametrize("options, message", option_rows())
def test_impossible_options_are_refused_up_front(tmp_path, options, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_main(options.split()) == (1, message)
    assert not list(tmp_path.iterdir())


def test_a_split_that_would_be_empty_is_refused_before_training(tmp_path, names):
    status, message = run_main(["--data", names_file(tmp_path / "w.txt", names[:5]),
                                "--out", str(tmp_path / "out")])
    assert status == 1
    assert_one_documented_line(message, "a split would be empty")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- bounded memory

def test_evaluation_in_chunks_gives_the_whole_split_numbers(names, monkeypatch):
    stoi, _ = vocabulary(names)
    X, Y = build_dataset(split_words(names)[0][:6000], 3, stoi)
    model = makemore.NamesMLP(27, 3, n_hidden=40, generator=tg.Generator().manual_seed(5))
    with tg.no_grad():
        hpre = model.hidden(model.embedding(X).view(X.shape[0], -1))
        mean, var = hpre.mean(0).numpy(), hpre.var(0, unbiased=True).numpy()
    monkeypatch.setattr(makemore, "EVAL_FLOATS", 40 * 997)     # uneven chunks of 997 rows
    assert len(makemore.row_chunks(model, X.shape[0])) > 5
    makemore.calibrate(model, X)
    np.testing.assert_array_equal(model.bn.running_mean.numpy(), mean)
    np.testing.assert_array_equal(model.bn.running_var.numpy(), var)
    model.eval()
    with tg.no_grad():
        whole = F.cross_entropy(model(X), Y).item()
    model.train()
    assert makemore.split_loss(model, X, Y) == whole


def test_evaluation_memory_stays_bounded_on_a_big_words_file(tmp_path):
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(300_000)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(words) + "\n")
    assert path.stat().st_size > 2_000_000
    stoi, _ = vocabulary(load_words(path))
    X, Y = build_dataset(words, 3, stoi)                           # about 2.3 million rows
    model = makemore.NamesMLP(27, 3, n_hidden=64, generator=tg.Generator().manual_seed(0))
    makemore.split_loss(model, X[:10], Y[:10])     # builds the loss kernel (sympy) first
    one_activation = X.shape[0] * 64 * 4                          # bytes of (N, n_hidden)
    tracemalloc.start()
    try:
        makemore.calibrate(model, X)
        loss = makemore.split_loss(model, X, Y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(loss)
    # a few chunks' activations (4 MB each), and 4 bytes a row for the per-row losses,
    # which are gathered and averaged once (27 MB here); one activation of the whole split
    # in one batch would be 575 MB
    assert peak < 50e6 < one_activation / 10, (peak, one_activation)


# ---------------------------------------------------------------- pleasant to read

def test_the_loss_curve_is_sized_to_the_run():
    rng = np.random.default_rng(0)
    for steps in (1, 150, 3000, 200_000):
        losses = 2 + rng.random(steps)
        val = [(s, 2.5) for s in range(max(1, steps // 20), steps + 1, max(1, steps // 20))]
        fig = makemore.loss_figure(losses, val, 2.4, (steps // 2, 0.1, 0.01))
        lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
        window = max(1, steps // 200)
        mean = next(line for label, line in lines.items() if label.startswith("training loss"))
        assert len(mean.get_xdata()) == steps // window >= min(steps, 200)
        raw = [line for label, line in lines.items() if label.startswith("loss ")]
        assert len(raw) == (window > 1)              # the raw loss, behind a real average
        if raw:                                      # every step, or 20,000 evenly spread
            assert len(raw[0].get_xdata()) == min(steps, 20_000)
        assert len(lines["val loss (batchnorm's running statistics)"].get_xdata()) == len(val)
        if steps > 1:                                 # the learning-rate change, dashed
            assert any(line.get_linestyle() == "--" and list(line.get_xdata()) ==
                       [steps // 2] * 2 for line in lines.values())
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        makemore.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("training steps (default: 200000)", "(default: 32)", "(default: 0.1)",
                    "(default: 0.01)", "(default: 10000)", "(default: out)",
                    "(default: a twentieth of --steps)", "(default: autograd)"):
        assert default in text


def test_log_lines_and_the_end_of_a_run(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tensorgrad.makemore", *TINY, "--steps",
                             "60", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 20
    assert re.fullmatch(r"step 60/60 \| loss \d\.\d{4} \| val \d\.\d{4} \| lr 0\.01 \| "
                        r"\d+\.\d s \| [\d,]+ steps/s", progress[-1])
    assert re.fullmatch(r"wall time \d+\.\d s \(training \d+\.\d s, [\d,]+ steps/s\)", lines[-1])
    assert "train / val / test examples" in result.stdout and "/ dev /" not in result.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["wall_seconds"] > summary["seconds"] > 0
    assert [step for step, _ in summary["val_curve"]] == list(range(3, 61, 3))


def test_the_manual_check_explains_its_numbers(tmp_path, capsys):
    makemore.train(makemore.parse_args(TINY + ["--steps", "5", "--backward", "manual", "--out",
                                               str(tmp_path), "--no-progress"]))
    out = " ".join(capsys.readouterr().out.split())
    assert "maxdiff: the largest |manual - autograd|" in out
    assert "float32 rounds" in out and "exact equality is unlikely" in out


def test_the_step_graph_shows_the_loss_op_itself(names, monkeypatch, tmp_path):
    from tensorgrad import viz
    drawn = []
    monkeypatch.setattr(viz, "dot_available", lambda: True)
    monkeypatch.setattr(viz, "render", lambda tensors, path, **options: drawn.append(
        viz.draw(tensors, **options)))
    stoi, _ = vocabulary(names)
    X, Y = build_dataset(names[:20], 3, stoi)
    model = makemore.NamesMLP(27, 3, n_hidden=8, generator=tg.Generator().manual_seed(0))
    assert makemore.write_step_graph(model, X[:16], Y[:16], tmp_path / "step_graph.svg")
    source = drawn[0].source
    assert "cross_entropy" in source and "1 ops" not in source


def test_the_readme_states_the_options_defaults():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {name: default.strip() for name, default in
            re.findall(r"^\| `--([\w-]+)[^`]*` \|([^|]*)\|", text, re.M)}
    assert rows["save-every"] == str(makemore.parse_args([]).save_every)
    assert rows["eval-every"] == "`--steps` / 20"
    assert makemore.parse_args(["--steps", "400"]).eval_every == 20
    assert rows["resume"] == rows["overwrite"] == rows["no-progress"] == ""
