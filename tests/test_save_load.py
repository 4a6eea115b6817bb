"""tensorgrad.save / tensorgrad.load: round trips of tensors, arrays and plain data, state
dicts into fresh modules, files PyTorch can read, and one-line refusals of files that
save did not write."""
import io
import json
import pickle

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn


def round_trip(obj):
    buffer = io.BytesIO()
    tg.save(obj, buffer)
    buffer.seek(0)
    return tg.load(buffer)


def assert_same(got, want):
    """Equal, of the same types all the way down, tensors with equal dtype, shape, values
    and requires_grad."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, tg.Tensor):
        assert (got.dtype, got.shape, got.requires_grad) == (want.dtype, want.shape,
                                                              want.requires_grad)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    elif isinstance(want, (np.ndarray, np.generic)):
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        np.testing.assert_array_equal(got, want)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == want


DTYPES = [tg.float32, tg.float64, tg.int64, tg.int32, tg.bool, tg.float16, tg.uint8]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 1, 4)], ids=str)
def test_tensors_keep_dtype_shape_and_values(dtype, shape):
    values = np.random.default_rng(0).standard_normal(shape) * 5
    t = tg.tensor(values.astype(dtype))
    assert_same(round_trip(t), t)
    assert_same(round_trip({"x": t}), {"x": t})
    assert_same(round_trip(values.astype(dtype)), values.astype(dtype))   # numpy stays numpy


def test_nested_structure_of_numbers_strings_and_tensors():
    obj = {"model": {"w": tg.randn(3, 2), "b": tg.zeros(2, dtype=tg.float64)},
           "step": 12, "lr": 0.1, "nan": float("nan"), "inf": -float("inf"), "big": 2**70,
           "name": "mlp ✓", "none": None, "flags": [True, False],
           "pairs": [(1, 2.5), (tg.tensor(3), "x")], "empty": {}, "nested": [[[]], ()],
           7: "int key", (1, "a"): "tuple key", None: 0, 2.5: "float key",
           "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True)],
           "param": tg.randn(4, requires_grad=True), "0d": tg.tensor(2.0),
           "strided": tg.arange(12).view(3, 4).T}
    assert_same(round_trip(obj), obj)
    for top in ([], (), 3, "text", None, tg.ones(2)):
        assert_same(round_trip(top), top)


def test_a_tensor_saved_twice_loads_as_one_tensor():
    w = tg.randn(3, 3)
    back = round_trip({"embedding": w, "head": w, "other": tg.randn(3, 3)})
    assert back["embedding"] is back["head"] and back["other"] is not back["head"]


def test_tensors_are_stored_under_their_path():
    """A state dict's names are the safetensors file's keys: PyTorch code finds them."""
    from safetensors.numpy import load
    buffer = io.BytesIO()
    tg.save({"model": {"layers.0.weight": tg.ones(2)}, "opt": [tg.ones(1), {"m": tg.ones(1)}],
             "a.b": tg.zeros(1), "a": {"b": tg.ones(1)}}, buffer)
    assert sorted(load(buffer.getvalue())) == ["a.b", "a.b#2", "model.layers.0.weight",
                                               "opt.0", "opt.1.m"]


def make_model():
    return nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 64),
                         nn.BatchNorm1d(64), nn.Tanh(), nn.Linear(64, 27))


def test_state_dict_into_a_fresh_module(tmp_path):
    model = make_model()
    model(tg.randint(0, 27, (32, 3)))            # batchnorm's running statistics move
    path = tmp_path / "model.safetensors"
    tg.save(model.state_dict(), path)
    fresh = make_model()
    fresh.load_state_dict(tg.load(str(path)))
    for (name, got), (_, want) in zip(fresh.state_dict().items(), model.state_dict().items()):
        np.testing.assert_array_equal(got, want, err_msg=name)
    x = tg.randint(0, 27, (8, 3))
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_a_checkpoint_with_optimizer_state_and_a_module_state():
    model = make_model()
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    loss = model(tg.randint(0, 27, (16, 3))).sum()
    loss.backward()
    opt.step()
    checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1,
                  "config": {"lr": 0.01, "sizes": (27, 10)}}
    back = round_trip(checkpoint)
    assert_same(back, checkpoint)
    fresh_model = make_model()
    fresh_opt = tg.optim.Adam(fresh_model.parameters(), lr=0.01)
    fresh_model.load_state_dict(back["model"])
    fresh_opt.load_state_dict(back["optimizer"])
    assert fresh_opt.steps == 1


def test_a_path_is_replaced_whole(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    tg.save({"a": tg.ones(3)}, path)
    tg.save({"a": tg.zeros(2)}, path)
    assert_same(tg.load(path), {"a": tg.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]   # no temp left


def test_pytorch_reads_the_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    model = make_model()
    path = tmp_path / "model.safetensors"
    tg.save(model.state_dict(), path)
    loaded = load_file(str(path))
    assert sorted(loaded) == sorted(model.state_dict())
    for name, value in model.state_dict().items():
        assert str(loaded[name].dtype) == f"torch.{np.asarray(value).dtype}"
        np.testing.assert_array_equal(loaded[name].numpy(), value)


def test_a_safetensors_file_from_pytorch_loads_as_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    linear = torch.nn.Linear(3, 2)
    path = tmp_path / "torch.safetensors"
    save_file(linear.state_dict(), str(path))
    state = tg.load(path)
    assert sorted(state) == ["bias", "weight"] and isinstance(state["weight"], tg.Tensor)
    ours = nn.Linear(3, 2)
    ours.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(tg.tensor(x)).numpy(),
                               linear(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("location", [None, "cpu", "cpu:0", lambda storage, loc: storage,
                                      {"cuda:0": "cpu"}])
@pytest.mark.parametrize("weights_only", [None, True, False])
def test_load_accepts_pytorchs_arguments(location, weights_only):
    buffer = io.BytesIO()
    tg.save({"w": tg.ones(2)}, buffer)
    buffer.seek(0)
    assert_same(tg.load(buffer, map_location=location, weights_only=weights_only),
                {"w": tg.ones(2)})


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def written(tmp_path, data, name="bad.pt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_refuses_files_it_did_not_write(tmp_path, capsys):
    pickled = written(tmp_path, pickle.dumps({"a": Evil()}))
    with pytest.raises(ValueError) as info:
        tg.load(pickled)
    assert str(info.value) == (
        f"load: {pickled} is not a file that tensorgrad.save (or safetensors) wrote: it is a "
        "pickle; tensorgrad never unpickles (a pickle can run code): save tensors in "
        "PyTorch with safetensors.torch.save_file")
    assert capsys.readouterr().out == ""
    random = written(tmp_path, bytes(range(256)) * 4, "random.bin")
    with pytest.raises(ValueError, match=rf"^load: {random} is not a file that tensorgrad"
                                         r"\.save \(or safetensors\) wrote: it is 1024 bytes "
                                         r"starting b'\\x00\\x01"):
        tg.load(random)
    for data in (b"", b"{}", b"\x05\x00\x00\x00\x00\x00\x00\x00[1,2]", "ok".encode() * 9):
        with pytest.raises(ValueError, match="is not a file that tensorgrad.save"):
            tg.load(written(tmp_path, data))


def test_refuses_a_torch_save_file(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "evil": Evil()}, path)
    with pytest.raises(ValueError) as info:
        tg.load(path)
    assert str(info.value) == (
        f"load: {path} is not a file that tensorgrad.save (or safetensors) wrote: it is a zip "
        "archive, as torch.save and numpy.savez write; tensorgrad never unpickles (a pickle "
        "can run code): save tensors in PyTorch with safetensors.torch.save_file")
    assert capsys.readouterr().out == ""


def test_refuses_damaged_files(tmp_path):
    buffer = io.BytesIO()
    tg.save({"w": tg.ones(1000)}, buffer)
    data = buffer.getvalue()
    truncated = written(tmp_path, data[:-100])
    with pytest.raises(ValueError, match=rf"^load: {truncated} is a damaged safetensors file \("):
        tg.load(truncated)
    # the structure names a tensor the file does not hold
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    header["__metadata__"]["tensorgrad.structure"] = json.dumps({"tensor": "v",
                                                                 "requires_grad": False})
    text = json.dumps(header).encode().ljust(size)
    tampered = written(tmp_path, data[:8] + text + data[8 + size:], "tampered.pt")
    with pytest.raises(ValueError, match=rf"^load: {tampered} is a damaged tensorgrad.save "
                                         r"file \(its structure does not match its tensors"):
        tg.load(tampered)


def test_refuses_what_it_cannot_save(tmp_path):
    with pytest.raises(TypeError) as info:
        tg.save({"model": {"act": nn.Tanh()}}, tmp_path / "m")
    assert str(info.value) == ("save: cannot save Tanh (Tanh()) at model.act: tensorgrad.save "
                               "keeps tensors, numpy arrays, numbers, strings, None, and "
                               "lists, tuples and dicts of them; save its state_dict() "
                               "instead")
    with pytest.raises(TypeError, match=r"^save: cannot save function .* at opt\.1: .*"):
        tg.save({"opt": [1, lambda: 0]}, tmp_path / "m")
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"^save: the list at 1 contains itself$"):
        tg.save(loop, tmp_path / "m")
    assert not list(tmp_path.iterdir())                # nothing written on a refusal


def test_missing_files_and_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^load: no file at {tmp_path / 'nope.pt'}$"):
        tg.load(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match=rf"^save: cannot write {tmp_path}/no/m.pt "):
        tg.save({}, tmp_path / "no" / "m.pt")
    with pytest.raises(IsADirectoryError, match=rf"^load: cannot read {tmp_path} "):
        tg.load(tmp_path)


def test_a_text_mode_file_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    tg.save({"w": tg.ones(2)}, path)
    with open(path, encoding="latin-1") as text, pytest.raises(TypeError) as info:
        tg.load(text)
    assert str(info.value) == (f"load: {path} gave str, not bytes; open the file in binary "
                               "mode, open(path, 'rb')")
    with open(path, "rb") as binary:
        assert_same(tg.load(binary), {"w": tg.ones(2)})
