"""Running a sweep case on tensorgrad and on its reference, and classifying the outcome.

A case is a small program `run(lib)` written once against PyTorch's API. It returns what
it computed (tensors, gradients, numbers, dtypes, shapes, in any nesting of lists, tuples
and dicts), or raises. The harness runs it with `lib = tensorgrad` and with `lib = torch`
(or a reference program or oracle of the case's own, see `Case`), turns both results into
plain data (`plain`), and puts the case in exactly one class:

    match            same values (NaN where NaN), shapes, dtypes, requires_grad, gradients
                     (None where None); or both results agree as plain data
    silent wrong     tensorgrad returns something else, or returns where the reference raises
    refused (both)   tensorgrad raises a clear error, and so does the reference
    refused (answers) tensorgrad raises a clear error where the reference answers
    unclear          tensorgrad raises a bare numpy/Python error, or hangs

A clear error names what refused: its message starts with the op or function ("matmul:
..."), or is one of the few documented messages without one (docs/errors.md).
"""
import contextlib
import re
import signal
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

MATCH, WRONG, REFUSED_BOTH, REFUSED_ANSWERS, UNCLEAR = (
    "match", "silent wrong", "refused (both)", "refused (answers)", "unclear")
CLASSES = (MATCH, WRONG, REFUSED_BOTH, REFUSED_ANSWERS, UNCLEAR)
ACCEPTED = (MATCH, REFUSED_BOTH, REFUSED_ANSWERS)     # what the pytest entry point requires


@dataclass
class Case:
    """One program of the sweep.

    `id` is "category/name", stable across runs (the list of known failures refers to it).
    `run(lib)` is the program. The reference is, in this order of preference: `oracle()`,
    the expected result computed without torch (mathematics, or tensorgrad's documented
    behaviour); `reference(torch)`, another PyTorch program for the same result (where
    tensorgrad deliberately differs from PyTorch, `extension` says how, citing the docs;
    where PyTorch itself is arguably wrong, `note` says why the reference is right); or
    `run(torch)` itself. `tol` overrides the comparison tolerances (rtol, atol).
    `code` shows what the case does, for reports.
    """

    id: str
    run: Callable
    code: str = ""
    reference: Optional[Callable] = None
    oracle: Optional[Callable] = None
    extension: Optional[str] = None
    note: Optional[str] = None
    tol: Optional[dict] = None
    timeout: float = 20.0
    tags: tuple = field(default_factory=tuple)

    @property
    def category(self):
        return self.id.split("/", 1)[0]

    @property
    def needs_torch(self):
        return self.oracle is None


@dataclass
class Outcome:
    """What one side of a case did: returned `value` (plain data), or raised `error`."""

    value: object = None
    error: Optional[BaseException] = None
    hang: bool = False

    @property
    def raised(self):
        return self.error is not None or self.hang

    def describe(self):
        if self.hang:
            return "hangs"
        if self.error is not None:
            return f"{type(self.error).__name__}: {first_line(self.error)}"
        return "returns"


@dataclass
class Verdict:
    """The class of a case, and why."""

    case: Case
    klass: str
    detail: str
    mine: Outcome
    theirs: Outcome

    @property
    def signature(self):
        """A short description of the failure's kind, for grouping unassigned failures."""
        if self.klass == UNCLEAR:
            return "unclear: " + (
                "hang" if self.mine.hang else type(self.mine.error).__name__)
        if self.klass == WRONG:
            if self.theirs.raised:
                return "silent wrong: answers where the reference refuses"
            return "silent wrong: " + self.detail.split(":", 1)[0]
        return self.klass


class HarnessError(Exception):
    """The reference raised in a way that points at a mistake in the case, not a refusal."""


# ---------------------------------------------------------------- running

class Hang(BaseException):
    """Raised in a case that runs longer than its timeout."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise Hang in the running code after `seconds` (main thread, POSIX only)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def interrupt(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def attempt(program, timeout, *args):
    """Run `program(*args)` and return its Outcome, with the result as plain data."""
    try:
        with time_limit(timeout), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            value = plain(program(*args))
        return Outcome(value=value)
    except Hang:
        return Outcome(hang=True)
    except Exception as e:           # noqa: BLE001  every error is a finding to classify
        return Outcome(error=e)
    finally:
        _reset_grad_modes()


def _reset_grad_modes():
    """Cases may switch recording off (set_grad_enabled(False)); the next starts clean."""
    import tensorgrad
    tensorgrad.set_grad_enabled(True)
    torch = torch_or_none()
    if torch is not None:
        torch.set_grad_enabled(True)


def torch_or_none():
    """torch if it is installed, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def run_case(case):
    """Run `case` on tensorgrad and on its reference; return the Verdict. The random
    generators' states are restored afterwards, so cases leave no trace on other tests."""
    import tensorgrad
    with random_states_kept():
        return _run_case(case, tensorgrad)


@contextlib.contextmanager
def random_states_kept():
    """Restore tensorgrad's and torch's default random generators after the block (layers
    draw their initial parameters from them)."""
    import tensorgrad
    torch = torch_or_none()
    saved = tensorgrad.default_generator.get_state()
    saved_torch = torch.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        tensorgrad.default_generator.set_state(saved)
        if torch is not None:
            torch.set_rng_state(saved_torch)


def _run_case(case, tensorgrad):
    mine = attempt(case.run, case.timeout, tensorgrad)
    if case.oracle is not None:
        theirs = attempt(case.oracle, case.timeout)
    else:
        torch = torch_or_none()
        if torch is None:
            raise RuntimeError(f"{case.id}: needs torch")
        theirs = attempt(case.reference or case.run, case.timeout, torch)
    if theirs.hang or (theirs.error is not None and not is_refusal(theirs.error)):
        raise HarnessError(f"{case.id}: the reference {theirs.describe()}")
    return Verdict(case, *classify(mine, theirs, case.tol), mine, theirs)


def classify(mine, theirs, tol=None):
    """(class, detail) for tensorgrad's outcome `mine` against the reference's `theirs`."""
    if mine.hang:
        return UNCLEAR, "tensorgrad hangs"
    if mine.error is not None:
        if not is_clear(mine.error):
            return UNCLEAR, mine.describe()
        if theirs.raised:
            return REFUSED_BOTH, f"{mine.describe()} | reference: {theirs.describe()}"
        return REFUSED_ANSWERS, mine.describe()
    if theirs.raised:
        return WRONG, f"answers where the reference refuses ({theirs.describe()})"
    differences = compare(mine.value, theirs.value, tol or {})
    if differences:
        return WRONG, "; ".join(differences[:3])
    return MATCH, ""


# ---------------------------------------------------------------- errors

# Messages tensorgrad documents without an op name in front (docs/errors.md).
DOCUMENTED = [r"the truth value of a tensor of shape", r"numpy's \w+ has no gradient rule",
              r"len\(\) of a 0-d tensor", r"only one-element integer tensors can be used"]
NAMED = re.compile(r"^[A-Za-z_][\w.]*(\[\w+\])?: \S")       # "matmul: ...", "nn.Linear: ..."
BARE_KINDS = (AttributeError, ZeroDivisionError, NameError, UnboundLocalError, AssertionError,
              RecursionError, SyntaxError, StopIteration, OverflowError, UnicodeError)


def first_line(error):
    """The first line of an exception's message (KeyError's quotes removed)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(message).strip().split("\n")[0]


def is_clear(error):
    """Whether tensorgrad's error says what refused: a named message of a plain kind."""
    if isinstance(error, BARE_KINDS):
        return False
    message = first_line(error)
    return bool(NAMED.match(message)) or any(re.match(p, message) for p in DOCUMENTED)


def is_refusal(error):
    """Whether the reference's error is a refusal (not a mistake in the case itself)."""
    return not isinstance(error, (AttributeError, NameError, UnboundLocalError, KeyError,
                                  AssertionError, SyntaxError, ImportError))


# ---------------------------------------------------------------- results as plain data

@dataclass
class Array:
    """A tensor or array result: values, dtype name and whether it requires grad."""

    values: np.ndarray
    dtype: str
    requires_grad: Optional[bool] = None


def plain(x):
    """A result (tensors of either library, arrays, numbers, nestings) as plain data."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, float, np.integer, np.floating, np.bool_)):
        return x.item() if isinstance(x, np.generic) else x
    if isinstance(x, np.ndarray):
        return Array(np.array(x), x.dtype.name)
    if isinstance(x, np.dtype):
        return "dtype " + x.name
    name = type(x).__module__.split(".")[0]
    if name == "torch":
        import torch
        if isinstance(x, torch.Tensor):
            return Array(x.detach().cpu().numpy().copy(), str(x.dtype).replace("torch.", ""),
                         bool(x.requires_grad))
        if isinstance(x, torch.dtype):
            return "dtype " + str(x).replace("torch.", "")
        if isinstance(x, torch.Size):
            return [int(n) for n in x]
    if name == "tensorgrad" and type(x).__name__ == "Tensor":
        return Array(np.array(x.numpy()), x.dtype.name, bool(x.requires_grad))
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, type) and x.__name__ in ("float32", "float64", "int64", "int32", "bool_"):
        return "dtype " + np.dtype(x).name
    raise TypeError(f"sweep: cannot compare a result of type {type(x).__name__}")


TOLERANCE = {"float64": (1e-7, 1e-9), "float32": (1e-4, 1e-5), "float16": (1e-2, 1e-3)}


def compare(mine, theirs, tol, path="result"):
    """The differences between two plain results, as short sentences (empty: they match)."""
    if isinstance(theirs, Array) or isinstance(mine, Array):
        if not (isinstance(theirs, Array) and isinstance(mine, Array)):
            return [f"{kind(mine, theirs, path)}: {path} is {describe(mine)}, "
                    f"expected {describe(theirs)}"]
        return compare_arrays(mine, theirs, tol, path)
    if isinstance(theirs, list) and isinstance(mine, list):
        if len(mine) != len(theirs):
            return [f"structure: {path} has {len(mine)} items, expected {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(mine, theirs))
                for d in compare(a, b, tol, f"{path}[{i}]")]
    if isinstance(theirs, dict) and isinstance(mine, dict):
        if set(mine) != set(theirs):
            return [f"structure: {path} has keys {sorted(mine)}, expected {sorted(theirs)}"]
        return [d for k in theirs for d in compare(mine[k], theirs[k], tol, f"{path}[{k!r}]")]
    if isinstance(theirs, float) and isinstance(mine, (int, float)) and not isinstance(
            mine, bool):
        if close(np.array(mine), np.array(theirs), tol.get("rtol", 1e-7), tol.get("atol", 1e-9)):
            return []
    elif type(mine) is type(theirs) and mine == theirs:
        return []
    return [f"{kind(mine, theirs, path)}: {path} is {describe(mine)}, expected {describe(theirs)}"]


def kind(mine, theirs, path):
    """What sort of difference: a gradient present on one side only, a gradient, a value."""
    if "grad" not in path:
        return "value"
    return "gradient None" if mine is None or theirs is None else "gradient"


def compare_arrays(mine, theirs, tol, path):
    what = "gradient" if "grad" in path else "value"
    if mine.values.shape != theirs.values.shape:
        return [f"shape: {path} has shape {mine.values.shape}, expected {theirs.values.shape}"]
    if mine.dtype != theirs.dtype:
        return [f"dtype: {path} is {mine.dtype}, expected {theirs.dtype}"]
    if (mine.requires_grad is not None and theirs.requires_grad is not None
            and mine.requires_grad != theirs.requires_grad):
        return [f"requires_grad: {path} has requires_grad={mine.requires_grad}, "
                f"expected {theirs.requires_grad}"]
    rtol, atol = TOLERANCE.get(theirs.dtype, (0, 0))
    rtol, atol = tol.get("rtol", rtol), tol.get("atol", atol)
    if not close(mine.values, theirs.values, rtol, atol):
        return [f"{what}: {path} is {summary(mine.values)}, expected {summary(theirs.values)}"]
    return []


def close(a, b, rtol, atol):
    """Equal for integers and bools; for floats allclose, with NaN and Inf where they are."""
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return np.array_equal(a, b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    if not np.array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0)):
        return False
    finite = np.isfinite(b)
    # atol grows with the values' size (x - mean of values near 100 is exact only to ~1e-14
    # absolute), up to a bound, so that huge values elsewhere do not hide small ones
    scale = min(max(1.0, float(np.max(np.abs(b[finite]), initial=0))), 1e4)
    return bool(np.allclose(a[finite], b[finite], rtol=rtol, atol=atol * scale))


def describe(x):
    if isinstance(x, Array):
        return f"a {x.dtype} tensor {summary(x.values)}"
    return repr(x)


def summary(values, limit=6):
    """A short text of an array's shape and first values: '[2, 3] [0.1, nan, ...]'."""
    flat = np.asarray(values).reshape(-1)
    shown = ", ".join(f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)
                      for v in flat[:limit].tolist())
    more = ", ..." if flat.size > limit else ""
    return f"{list(np.shape(values))} [{shown}{more}]"


# ---------------------------------------------------------------- writing cases

def upstream(shape, dtype):
    """A fixed, non-trivial upstream gradient for an output of `shape` (never all ones: with
    ones, a missing transpose or a sum over the wrong axis can still give the right answer)."""
    rng = np.random.default_rng(zlib.crc32(repr(tuple(shape)).encode()))
    return (rng.standard_normal(shape) + 0.25).astype(dtype)


def leaves(lib, arrays, grad=True):
    """Tensors from numpy arrays (or Python numbers, passed through); float arrays require
    grad when `grad`."""
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            t = lib.tensor(a)
            if grad and a.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


def backprop(lib, out):
    """out.backward(G) with the fixed upstream G of its shape, if `out` requires grad."""
    if is_tensor(out) and out.requires_grad:
        dtype = dtype_name(out)
        out.backward(lib.tensor(upstream(tuple(out.shape), dtype)))


def is_tensor(x):
    return hasattr(x, "requires_grad") and hasattr(x, "shape")


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def with_grads(fn, *arrays, grad=True):
    """A case program: leaves from `arrays`, `out = fn(lib, *leaves)`, backpropagate a fixed
    upstream gradient; returns the output and the gradient of each tensor leaf (None if none
    came)."""
    def run(lib):
        xs = leaves(lib, arrays, grad)
        out = fn(lib, *xs)
        backprop(lib, out)
        return {"out": out, "grads": [x.grad if is_tensor(x) else None for x in xs]}
    return run


def seed_of(text):
    """A stable integer seed from a string (Python's hash of str changes per process)."""
    return zlib.crc32(text.encode())
