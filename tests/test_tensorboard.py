"""SummaryWriter writes event files that TensorBoard reads back with the tags, steps and
values written. Skips when the tensorboard extra (tensorboardX) or TensorBoard's reader is
not installed; CI installs both (the test extra)."""
import builtins
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg


def read_scalars(log_dir):
    """{(run, tag): [(step, value), ...]} from each run (a directory of event files) under
    `log_dir`, read as TensorBoard reads them, with its own event reader."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    found = {}
    runs = sorted({path.parent for path in Path(log_dir).rglob("events.out.tfevents.*")})
    for directory in runs:
        events = accumulator.EventAccumulator(str(directory))
        events.Reload()
        run = str(directory.relative_to(log_dir))
        for tag in events.Tags()["scalars"]:
            found[run, tag] = [(e.step, e.value) for e in events.Scalars(tag)]
    return found


def test_scalars_read_back_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorgrad.utils.tensorboard import SummaryWriter
    losses = [2.5, 1.25, 0.75]
    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        assert writer.log_dir == str(tmp_path) == writer.get_logdir()
        for step, loss in enumerate(losses):
            writer.add_scalar("Loss/train", tg.tensor(loss), step)           # 0-d tensor
            writer.add_scalar("lr", 0.1 / (step + 1), global_step=tg.tensor(step * 10))
            writer.add_scalars("loss", {"train": tg.tensor([loss]),          # one element
                                        "val": np.float64(loss + 1)}, step)
        writer.add_histogram("weights", tg.randn(100), 0)
        writer.add_text("config", "n_embd=64", 0)
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    histogram, = events.Histograms("weights")
    assert histogram.histogram_value.num == 100
    text, = events.Tensors("config/text_summary")
    assert text.tensor_proto.string_val == [b"n_embd=64"]
    scalars = read_scalars(tmp_path)
    assert scalars == {
        (".", "Loss/train"): [(0, 2.5), (1, 1.25), (2, 0.75)],
        (".", "lr"): [(s * 10, pytest.approx(0.1 / (s + 1))) for s in range(3)],
        ("loss_train", "loss"): [(0, 2.5), (1, 1.25), (2, 0.75)],
        ("loss_val", "loss"): [(0, 3.5), (1, 2.25), (2, 1.75)]}


def test_flush_writes_before_close(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorgrad.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(tmp_path), flush_secs=3600)
    writer.add_scalar("x", 1.0, 1)
    writer.flush()
    assert read_scalars(tmp_path) == {(".", "x"): [(1, 1.0)]}
    writer.close()


def test_refuses_values_that_are_not_one_number(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorgrad.utils.tensorboard import SummaryWriter
    with SummaryWriter(str(tmp_path)) as writer:
        with pytest.raises(TypeError, match=r"^add_scalar: scalar_value must be a number or a "
                                            r"one-element tensor, got Tensor of shape \(2, 3\)$"):
            writer.add_scalar("x", tg.ones(2, 3), 0)
        with pytest.raises(TypeError, match=r"^add_scalars: tag_scalar_dict\['a'\] must be a "
                                            r"number or a one-element tensor, got str$"):
            writer.add_scalars("x", {"a": "high"}, 0)


def test_without_tensorboardx_says_what_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.split(".")[0] == "tensorboardX":
            raise ModuleNotFoundError("No module named 'tensorboardX'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    from tensorgrad.utils.tensorboard import SummaryWriter
    with pytest.raises(ImportError) as info:
        SummaryWriter(str(tmp_path))
    assert str(info.value) == ("SummaryWriter: writing TensorBoard files needs the tensorboardX "
                               "package; install it with pip install 'tensorgrad[tensorboard]' "
                               "(or pip install tensorboardX)")


def write_curves(SummaryWriter, lib, log_dir):
    with SummaryWriter(log_dir) as writer:
        for step in range(4):
            writer.add_scalar("Loss/train", lib.tensor(1.0 / (step + 1)), step)
            writer.add_scalars("Loss/both", {"train": lib.tensor(step * 0.5),
                                             "val": step * 0.25}, global_step=step)
    return read_scalars(log_dir)


def test_the_same_files_as_pytorchs_writer(tmp_path):
    """The same calls give the same runs, tags, steps and values as torch's SummaryWriter."""
    pytest.importorskip("tensorboardX")
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter
    from tensorgrad.utils.tensorboard import SummaryWriter
    ours = write_curves(SummaryWriter, tg, tmp_path / "ours")
    theirs = write_curves(TorchWriter, torch, tmp_path / "torch")
    assert ours == theirs and len(ours) == 3


def test_files_made_in_the_same_second_stay_apart(tmp_path):
    """Two writers on one directory, and a writer used again after close(), each get a
    file of their own: nothing written is lost."""
    pytest.importorskip("tensorboardX")
    from tensorgrad.utils.tensorboard import SummaryWriter
    first, second = SummaryWriter(str(tmp_path)), SummaryWriter(str(tmp_path))
    first.add_scalar("a", 1.0, 0)
    second.add_scalar("b", 2.0, 0)
    first.close()
    first.add_scalar("a", 3.0, 1)
    first.close(), second.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 3
    assert read_scalars(tmp_path) == {(".", "a"): [(0, 1.0), (1, 3.0)], (".", "b"): [(0, 2.0)]}


def test_purge_step_hides_the_earlier_runs_later_steps(tmp_path):
    """A run resumed at step 5 (purge_step=5): TensorBoard shows steps 0-4 of the first run
    and the resumed run's values from 5 on."""
    pytest.importorskip("tensorboardX")
    from tensorgrad.utils.tensorboard import SummaryWriter
    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(10):
            writer.add_scalar("loss", float(step), step)
    with SummaryWriter(str(tmp_path), purge_step=5) as writer:
        for step in range(5, 8):
            writer.add_scalar("loss", 100.0 + step, step)
    assert read_scalars(tmp_path)[".", "loss"] == (
        [(s, float(s)) for s in range(5)] + [(s, 100.0 + s) for s in range(5, 8)])
