"""docs/porting.md is true: every PyTorch name its table lists exists in tensorgrad, and its
code runs (the PyTorch side when torch and safetensors' torch support are installed)."""
import importlib
import re
import textwrap
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "porting.md"
TEXT = DOC.read_text(encoding="utf-8")
NAME_ROW = re.compile(r"^\| `(torch(?:\.\w+)+)` \|.*\|$", re.MULTILINE)
CODE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def listed_names():
    return NAME_ROW.findall(TEXT.split("## The names", 1)[1])


def resolve(name):
    """The tensorgrad object a PyTorch name stands for: `torch.` read as `tensorgrad.`,
    importing submodules on the way as `import torch.utils.tensorboard` would."""
    obj = importlib.import_module("tensorgrad")
    for part in name.split(".")[1:]:
        if not hasattr(obj, part) and hasattr(obj, "__path__"):     # a package's module
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ModuleNotFoundError:
                pass
        if not hasattr(obj, part):
            raise AttributeError(f"{name}: tensorgrad has no {part!r} in {obj!r:.60}")
        obj = getattr(obj, part)
    return obj


def test_the_table_lists_names_once_each():
    names = listed_names()
    assert len(names) > 150
    assert len(set(names)) == len(names), [n for n in names if names.count(n) > 1]


@pytest.mark.parametrize("name", listed_names())
def test_listed_name_exists(name):
    resolve(name)


@pytest.mark.parametrize("name", ["torch.nonexistent", "torch.Tensor.nonexistent",
                                  "torch.utils.data.Nothing", "torch.utils.nothing.X"])
def test_a_name_that_is_not_there_fails_the_check(name):
    with pytest.raises(AttributeError):
        resolve(name)


def test_the_code_runs(tmp_path, monkeypatch):
    blocks = [textwrap.dedent(code) for _, code in CODE.findall(TEXT)]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        if code.startswith("# in PyTorch"):
            pytest.importorskip("torch")
            pytest.importorskip("safetensors.torch")
        exec(compile(code, str(DOC), "exec"), {})
    import tensorgrad
    state = tensorgrad.load("from_torch.safetensors")
    tensorgrad.nn.Linear(3, 2).load_state_dict(state)
