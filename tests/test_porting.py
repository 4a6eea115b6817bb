"""docs/porting.md is true and complete: every name its tables list exists in tensorgrad
(and the `torch.` rows in PyTorch, the "Beyond PyTorch" rows not in PyTorch, when torch is
installed); every public name tensorgrad offers has a row; and its code runs (the PyTorch
side when torch and safetensors' torch support are installed)."""
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tensorgrad

DOC = Path(__file__).resolve().parents[1] / "docs" / "porting.md"
TEXT = DOC.read_text(encoding="utf-8")
NAMES, BEYOND = TEXT.split("## The names", 1)[1].split("## Beyond PyTorch", 1)
TORCH_ROW = re.compile(r"^\| `(torch(?:\.\w+)+)` \|.*\|$", re.MULTILINE)
BEYOND_ROW = re.compile(r"^\| `(tensorgrad(?:\.\w+)+)` \|.*\|$", re.MULTILINE)
TABLE = re.compile(r"^### `(torch(?:\.\w+)*)`$", re.MULTILINE)
CODE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)

# The namespaces whose `__all__` must each have a row, by their PyTorch names. Each has its
# own table, so a module named in one of these `__all__` lists (nn.functional, utils.data)
# is covered by being in this list itself, not by a row.
NAMESPACES = ["torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.optim",
              "torch.autograd", "torch.autograd.functional", "torch.cuda", "torch.utils",
              "torch.utils.data",
              "torch.utils.tensorboard"]
# The classes whose public attributes (methods and properties) must each have a row.
CLASSES = ["torch.Tensor", "torch.nn.Module", "torch.optim.Optimizer", "torch.Generator"]
# Deliberate exclusions: tensorgrad's modules that are neither a PyTorch namespace nor a
# tool of its own (those have rows under "Beyond PyTorch"). They are the layers the package
# is built from (see tensorgrad/__init__.py); what they offer users is reached through the
# namespaces above (tensorgrad.creation.zeros as tensorgrad.zeros), and they are importable
# only because Python makes every module importable.
INTERNAL_MODULES = {"arrays", "checks", "creation", "devices", "functional", "grad_mode",
                    "graph", "higher", "movement", "ops", "reductions", "rundir",
                    "serialization", "source", "tensor", "versions"}


def torch_rows():
    return TORCH_ROW.findall(NAMES)


def beyond_rows():
    return BEYOND_ROW.findall(BEYOND)


def resolve(name, root="tensorgrad"):
    """The object a dotted name stands for, its first part read as `root`, importing
    submodules on the way as `import torch.utils.tensorboard` would."""
    obj = importlib.import_module(root)
    for part in name.split(".")[1:]:
        if not hasattr(obj, part) and hasattr(obj, "__path__"):     # a package's module
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ModuleNotFoundError:
                pass
        if not hasattr(obj, part):
            raise AttributeError(f"{name}: {root} has no {part!r} in {obj!r:.60}")
        obj = getattr(obj, part)
    return obj


def offered_names():
    """Every public name tensorgrad offers in the namespaces and classes above, spelled as
    PyTorch would spell it (`torch.nn.Linear`, `torch.Tensor.backward`)."""
    names = []
    for space in NAMESPACES:
        module = resolve(space)
        names += [f"{space}.{n}" for n in module.__all__
                  if not inspect.ismodule(getattr(module, n))]
    for cls in CLASSES:
        names += [f"{cls}.{n}" for n in dir(resolve(cls)) if not n.startswith("_")]
    return names


def missing_rows():
    """What docs/porting.md lacks, one line per missing row saying which row to add where."""
    rows = set(torch_rows()) | {"torch" + n[len("tensorgrad"):] for n in beyond_rows()}
    lines = []
    for name in offered_names():
        if name not in rows:
            table = max((t for t in TABLE.findall(NAMES) if name.startswith(t + ".")), key=len)
            lines.append(f"tensorgrad offers {name}: add `| `{name}` | ... |` to the `{table}` "
                         f"table of docs/porting.md (or, if PyTorch has no such name, "
                         f"`| `tensorgrad{name[len('torch'):]}` | ... |` under Beyond PyTorch)")
    return lines


def unplaced_modules():
    """Modules of tensorgrad that are not a listed namespace, not a "Beyond PyTorch" row
    and not a deliberate exclusion: a module added later must be placed in one of these."""
    spaces = {s[len("torch."):] for s in NAMESPACES[1:]}
    placed = spaces | {n[len("tensorgrad."):] for n in beyond_rows()} | INTERNAL_MODULES
    found = [m.name for m in pkgutil.iter_modules(tensorgrad.__path__)]
    for space in NAMESPACES:            # modules named in a namespace's __all__
        module = resolve(space)
        prefix = space[len("torch."):] + "." if space != "torch" else ""
        found += [prefix + n for n in module.__all__ if inspect.ismodule(getattr(module, n))]
    return [f"tensorgrad.{m} is a module docs/porting.md does not place: add its PyTorch "
            "name to NAMESPACES in tests/test_porting.py and a table of its names to the "
            "doc (or a `tensorgrad.` row under Beyond PyTorch if PyTorch has no such "
            "module)" for m in found if m not in placed]


# ---------------------------------------------------------------- every row is true

def test_the_tables_list_names_once_each():
    names = torch_rows() + ["torch" + n[len("tensorgrad"):] for n in beyond_rows()]
    assert len(torch_rows()) > 240 and len(beyond_rows()) > 10
    assert len(set(names)) == len(names), [n for n in names if names.count(n) > 1]


@pytest.mark.parametrize("name", torch_rows() + beyond_rows())
def test_listed_name_exists(name):
    resolve(name)


@pytest.mark.parametrize("name", ["torch.nonexistent", "torch.Tensor.nonexistent",
                                  "torch.utils.data.Nothing", "torch.utils.nothing.X"])
def test_a_name_that_is_not_there_fails_the_check(name):
    with pytest.raises(AttributeError):
        resolve(name)


def in_pytorch(name):
    """Whether PyTorch has `name`; for a class's attribute, on the class or on an instance
    (a Module's `training` is set in `__init__`)."""
    torch = pytest.importorskip("torch")
    instances = {"torch.nn.Module": lambda: torch.nn.Module(),
                 "torch.optim.Optimizer": lambda: torch.optim.SGD(
                     [torch.zeros(1, requires_grad=True)], lr=0.1)}
    try:
        resolve(name, "torch")
        return True
    except AttributeError:
        owner, attr = name.rsplit(".", 1)
        return owner in instances and hasattr(instances[owner](), attr)


@pytest.mark.parametrize("name", torch_rows())
def test_a_torch_row_is_a_pytorch_name(name):
    assert in_pytorch(name), f"{name} is not a PyTorch name: move its row to Beyond PyTorch"


@pytest.mark.parametrize("name", beyond_rows())
def test_a_beyond_row_is_not_a_pytorch_name(name):
    as_torch = "torch" + name[len("tensorgrad"):]
    assert not in_pytorch(as_torch), f"PyTorch has {as_torch}: list it with the torch names"


# ---------------------------------------------------------------- every name has a row

def test_every_name_tensorgrad_offers_has_a_row():
    assert missing_rows() == []


def test_every_module_is_placed():
    assert unplaced_modules() == []


def test_a_name_added_without_a_row_fails(monkeypatch):
    monkeypatch.setattr(tensorgrad.nn, "Bilinear", tensorgrad.nn.Linear, raising=False)
    monkeypatch.setattr(tensorgrad.nn, "__all__", tensorgrad.nn.__all__ + ["Bilinear"])
    monkeypatch.setattr(tensorgrad.Tensor, "cumsum", lambda self: self, raising=False)
    assert missing_rows() == [
        "tensorgrad offers torch.nn.Bilinear: add `| `torch.nn.Bilinear` | ... |` to the "
        "`torch.nn` table of docs/porting.md (or, if PyTorch has no such name, "
        "`| `tensorgrad.nn.Bilinear` | ... |` under Beyond PyTorch)",
        "tensorgrad offers torch.Tensor.cumsum: add `| `torch.Tensor.cumsum` | ... |` to the "
        "`torch.Tensor` table of docs/porting.md (or, if PyTorch has no such name, "
        "`| `tensorgrad.Tensor.cumsum` | ... |` under Beyond PyTorch)"]


def test_a_module_added_without_a_place_fails(monkeypatch):
    monkeypatch.setattr(tensorgrad.autograd, "extras", tensorgrad.nn.init, raising=False)
    monkeypatch.setattr(tensorgrad.autograd, "__all__",
                        tensorgrad.autograd.__all__ + ["extras"])
    assert len(unplaced_modules()) == 1
    assert unplaced_modules()[0].startswith("tensorgrad.autograd.extras is a module")


# ---------------------------------------------------------------- the code runs

def test_the_code_runs(tmp_path, monkeypatch):
    blocks = [textwrap.dedent(code) for _, code in CODE.findall(TEXT)]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        if code.startswith("# in PyTorch"):
            pytest.importorskip("torch")
            pytest.importorskip("safetensors.torch")
        exec(compile(code, str(DOC), "exec"), {})
    state = tensorgrad.load("from_torch.safetensors")
    tensorgrad.nn.Linear(3, 2).load_state_dict(state)


def reachable(package):
    """The namespaces (NAMESPACES' names, `torch` read as `package`) that a fresh interpreter
    reaches by attributes after a plain `import package`, as ported code does
    (`torch.autograd.grad(...)` after `import tensorgrad as torch`)."""
    code = textwrap.dedent(f"""
        import functools, {package}
        for name in {NAMESPACES!r}:
            try:
                functools.reduce(getattr, name.split(".")[1:], {package})
                print(name)
            except AttributeError:
                pass
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_a_plain_import_reaches_the_namespaces_pytorchs_does():
    ours = reachable("tensorgrad")
    try:
        theirs = reachable("torch")
    except subprocess.CalledProcessError:                        # PyTorch not installed
        theirs = set(NAMESPACES) - {"torch.utils.tensorboard"}   # (which torch loads on request)
    assert theirs <= ours, f"not reached after `import tensorgrad`: {sorted(theirs - ours)}"
