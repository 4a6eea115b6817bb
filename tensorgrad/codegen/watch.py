"""Watching a step while it is traced: what it did that generated code could not repeat.

Generated code replays the ops of one run. Two things in that run it cannot replay, so
a step that does them runs eagerly instead; `Watch` sees them by following the calls the
step makes (Python's profiling hook, as a debugger would, and only while tracing):

- **a tensor's values read into Python**: a tensorgrad function that hands a number, a
  bool, a list of numbers or a numpy array to code outside tensorgrad (`.item()`,
  `float(t)`, `if t > 0:`, `.tolist()`, `.numpy()`, `np.asarray(t)`): what the
  step does next may depend on those values, and the code would keep the first ones;
- **random numbers drawn**: a call of tensorgrad's random functions (`randn`, `rand`,
  `randint`, `multinomial`, and anything else that takes numbers from a tensorgrad
  Generator) or a reseeding, or a change in the state of numpy's or Python's global random
  generator or of any generator the step can reach: the code would replay the first draw.

It also notes where each array made during the step outside the graph came from, so
the code can have it again:

- **made from Python data**: an array made by a tensorgrad function whose arguments are
  all Python data (numbers, lists of numbers, shapes, or such arrays), like
  `torch.arange(n)` or the 2.0 of `x * 2.0`, is the same at every call with the same
  Python values (which `guards` checks): the code may keep it;
- **computed outside the graph**: an op of the table applied to tensors that need no
  gradient (`x.detach().mean()`, `running_var + eps`, anything inside `no_grad()`), a cast
  (`.float()`) or a comparison (`x > 0`): the code computes it again from its inputs.

Any other array made during the step (by numpy, or by `argmax`, `torch.tensor(t)` and
the like) cannot be had again, and a graph that reads one is refused.

Last, it notes each call of a check of array values (`checks.VALUE_CHECKS`: the indices of
an embedding or the targets of cross_entropy must lie in [0, n), an integer divisor must
not hold 0) and what it was given, so the code can check the new values of those arrays
at every call as eager would.
"""
import pickle
import random
import sys

import numpy as np

from .. import checks, creation, ops
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor, _as_index, _constant, apply
from .guards import _PACKAGE, _SCALARS, is_library_file

_DRAWS = {f.__code__ for f in (creation._rng, creation.manual_seed,
                               creation.Generator.manual_seed, creation.Generator.set_state)}
_GLOBAL_GENERATORS = (creation.default_generator, np.random.mtrand._rand, random._inst)
_METADATA = {f.__code__ for f in (                 # they return shapes and flags, not values
    Tensor.size, Tensor.dim, Tensor.numel, Tensor.__len__, Tensor.shape.fget,
    Tensor.ndim.fget, Tensor.requires_grad.fget, Tensor.is_leaf.fget,
    Tensor.retains_grad.fget, is_grad_enabled)}
_MADE = {_constant.__code__: "value", Tensor.__init__.__code__: "data",
         _as_index.__code__: "index"}
_COMPUTED = {apply.__code__: "op", Tensor._cast.__code__: "cast",
             Tensor._compare.__code__: "compare"}
_VALUE_CHECKS = {f.__code__: f for f in checks.VALUE_CHECKS}
_UNKNOWN = object()          # an argument this module expected and did not find: not Python data
_in_package = {}


def _tensorgrad(code):
    inside = _in_package.get(code.co_filename)
    if inside is None:
        inside = _in_package[code.co_filename] = code.co_filename.startswith(_PACKAGE)
    return inside


def _site(frame):
    """'file:line' of `frame`, or of the nearest caller outside tensorgrad."""
    while frame.f_back is not None and _tensorgrad(frame.f_code):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _reader(frame):
    """The frame of your code that receives values from tensorgrad through `frame` (itself,
    or through library code such as numpy's), or None if tensorgrad itself uses them."""
    while frame is not None and not _tensorgrad(frame.f_code):
        if not is_library_file(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


def _random_state(generator):
    """The state of a random number generator, as bytes to compare."""
    if isinstance(generator, creation.Generator):
        state = generator.get_state()
    elif isinstance(generator, np.random.Generator):
        state = generator.bit_generator.state
    elif isinstance(generator, np.random.RandomState):
        state = generator.get_state()
    else:
        state = generator.getstate()
    return pickle.dumps(state)


def _is_values(value):
    """Whether `value`, handed to code outside tensorgrad, carries a tensor's values."""
    if type(value) in (bool, int, float, complex) or isinstance(value, (np.generic, np.ndarray)):
        return True
    while type(value) is list and value:
        value = value[0]
    return type(value) in (bool, int, float, complex)


class Watch:
    """A context in which the step is traced. Afterwards: `reads` and `draws` (where the
    step read values or drew random numbers), `python`, the arrays made from Python
    data (by id, with a copy of their values to see later changes), and `checks`, the
    calls of value checks made (function, {parameter: argument}). `generators` are the
    random number generators the step can reach, besides the global ones."""

    def __init__(self, generators=()):
        self.reads, self.draws, self.checks = [], [], []
        self.python, self.computed = {}, {}
        self._pending, self._computing = {}, {}
        self._generators = list(_GLOBAL_GENERATORS) + list(generators)

    def __enter__(self):
        self._states = [_random_state(g) for g in self._generators]
        self._previous = sys.getprofile()
        sys.setprofile(self._event)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._previous)
        for g, before in zip(self._generators, self._states):
            if _random_state(g) != before:
                self.draws.append(f"the state of {type(g).__module__}.{type(g).__name__} "
                                  "changed")

    def computed_outside(self, array):
        """How the step computed `array` outside the graph (see `Emitter._replay`), if it
        did and the array has not been changed in place since."""
        computed = self.computed.get(id(array))
        if computed is None or computed[0] is not array or not np.array_equal(
                array, computed[2], equal_nan=array.dtype.kind in "fc"):
            return None
        return computed[1]

    def made_from_python(self, array):
        """Whether `array` was made during the trace from Python data alone, and has not
        been changed in place since."""
        made = self.python.get(id(array))
        return made is not None and made[0] is array and np.array_equal(
            array, made[1], equal_nan=array.dtype.kind in "fc")

    def _event(self, frame, event, arg):
        if event != "call" and event != "return":
            return
        code = frame.f_code
        if not _tensorgrad(code):
            return
        if event == "call":
            if code in _DRAWS:
                self.draws.append(f"{frame.f_back.f_code.co_name} at {_site(frame)}")
            if code in _VALUE_CHECKS:
                self.checks.append((_VALUE_CHECKS[code], dict(frame.f_locals)))
            arguments = frame.f_locals
            made = self._made(code, arguments)
            if made is not None:
                self._pending[frame] = made
            if code in _COMPUTED:
                self._computing[frame] = self._how(_COMPUTED[code], arguments)
            return
        made = self._pending.pop(frame, None)
        if made is not None:
            self._note(made, frame, arg)
        how = self._computing.pop(frame, None)
        if (how is not None and type(arg) is Tensor and arg._node is None
                and arg is not frame.f_locals.get("self")):          # `to` may return self
            self.computed[id(arg._data)] = (arg._data, how, arg._data.copy())
        if code not in _METADATA and _is_values(arg):
            reader = _reader(frame.f_back)
            if reader is not None:
                name = code.co_name if code.co_name != "<lambda>" else "a property"
                self.reads.append(f"{name} at {_site(reader)}")

    # ------------------------------------------------------------ arrays from Python data

    def _is_python(self, value):
        if isinstance(value, _SCALARS) or value is None:
            return True
        if type(value) is Tensor:
            value = value._data
        if type(value) is np.ndarray:
            return self.made_from_python(value)
        if type(value) in (list, tuple):
            return all(self._is_python(v) for v in value)
        if type(value) is dict:
            return all(self._is_python(v) for v in value.values())
        return isinstance(value, type) and issubclass(value, ops.Op)

    @staticmethod
    def _how(kind, arguments):
        """The recipe of an array computed outside the graph, from the call's arguments
        (None if they are not what this module knows: the array is then refused)."""
        try:
            if kind == "op":
                return ("op", arguments["op"], dict(arguments["attrs"]),
                        tuple(t._data for t in arguments["inputs"]))
            if kind == "cast":
                return ("cast", arguments["self"]._data, np.dtype(arguments["dtype"]))
            other = arguments["other"]
            return ("compare", arguments["ufunc"], arguments["self"]._data,
                    other._data if isinstance(other, Tensor) else other)
        except (KeyError, AttributeError, TypeError):
            return None

    def _made(self, code, arguments):
        """What to note when this call returns, if it makes arrays from Python data."""
        which = _MADE.get(code)
        if which == "index":
            return ("index", arguments.get("index"))
        if which is not None:
            return (which,) if self._is_python(arguments.get(which, _UNKNOWN)) else None
        if all(self._is_python(v) for v in arguments.values()):
            return ("result",)
        return None

    def _note(self, made, frame, result):
        if made[0] == "index":                  # the items of an index made from lists
            index = made[1]
            pairs = zip(index, result) if isinstance(index, tuple) else [(index, result)]
            arrays = [out for given, out in pairs
                      if isinstance(given, (list, range)) and self._is_python(list(given))]
        elif made[0] == "data":
            arrays = [frame.f_locals["self"]._data]
        else:
            arrays = [result._data] if type(result) is Tensor else []
        for array in arrays:
            if type(array) is np.ndarray:
                self.python[id(array)] = (array, array.copy())
