"""`compile`: a training step traced once and run as generated code afterwards."""
import functools
import inspect

import numpy as np

from ..autograd import _deliver, tracing
from ..tensor import Tensor
from .emitter import identifier
from .program import generate
from .rules import CodegenError


def compile(step):
    """A compiled training step: `compile(fn)(*args)` computes `loss = fn(*args)` and its
    gradients, as `loss.backward()` would (adding them to each leaf's `.grad`).

    The first call with inputs of some shapes and dtypes runs eagerly and records the graph,
    from which forward and backward code is generated; later calls with the same shapes and
    dtypes run that code on the new inputs. New shapes trace again. `explain()` says what
    the latest call did. Usable as a decorator.
    """
    return CompiledStep(step)


class CompiledStep:
    """See `compile`. `programs` maps an input signature to its Program (or to the reason it
    runs eagerly); `last` is 'traced', 'compiled' or 'eager' for the latest call."""

    def __init__(self, step):
        self.step = step
        functools.update_wrapper(self, step)
        try:
            self.arg_names = list(inspect.signature(step).parameters)
        except (TypeError, ValueError):
            self.arg_names = []
        self.programs = {}
        self.last, self.reason = None, None

    @staticmethod
    def signature(args):
        """What a program is generated for: each array argument's shape and dtype, and the
        value of each other argument."""
        return tuple([(a._data.shape, a._data.dtype) if type(a) is Tensor
                      else (a.shape, a.dtype) if isinstance(a, (Tensor, np.ndarray))
                      else ("value", a) for a in args])

    def __call__(self, *args):
        key = self.signature(args)
        entry = self.programs.get(key)
        if entry is None:
            return self._trace(key, args)
        if isinstance(entry, str):
            self.last, self.reason = "eager", entry
            return self._eager(args)
        if not entry.checked:
            return self._check(key, entry, args)
        self.last, self.reason = "compiled", None
        loss, *grads = entry.function(*self._arrays(entry, args))
        for leaf in reversed(entry.leaves):
            g = grads.pop()                     # held only here, unless shared: as in backward
            _deliver(leaf, g)
        return Tensor._wrap(np.asarray(loss), None)

    def explain(self):
        """What the latest call did, in words."""
        if self.last is None:
            return "not called yet"
        text = {"traced": "ran eagerly, recorded the graph and generated code for these shapes",
                "compiled": "ran the generated code",
                "eager": "ran eagerly"}[self.last]
        return text + (f": {self.reason}" if self.reason else "")

    def source(self, *args):
        """The generated source for inputs like `args` (of a traced signature)."""
        entry = self.programs.get(self.signature(args))
        return entry.source if entry is not None and not isinstance(entry, str) else None

    def _eager(self, args):
        loss = self.step(*args)
        loss.backward()
        return loss

    def _trace(self, key, args):
        inputs = {}
        for k, a in enumerate(args):
            if isinstance(a, (Tensor, np.ndarray)):
                name = self.arg_names[k] if k < len(self.arg_names) else f"arg{k}"
                inputs[name] = a
        retrace = "new input shapes or dtypes" if self.programs else None
        fname = identifier(getattr(self.step, "__name__", "step").strip("<>"), "step")
        with tracing():
            loss = self.step(*args)
            try:
                program = generate(loss, inputs, fname, standalone=False)
            except (CodegenError, ValueError) as error:
                program = None
                self.programs[key] = f"no code could be generated: {error}"
        if program is None:
            self.last, self.reason = "eager", self.programs[key]
            if loss._node is not None:
                loss.backward()
            return loss
        if any(leaf is None for leaf in program.leaves):
            self.programs[key] = "a leaf of the graph has no tensor to receive its gradient"
        else:
            program.positions = [self._position(args, array) for _, array in program.args]
            program.checked = False
            self.programs[key] = program
        self.last, self.reason = "traced", retrace
        loss.backward()
        return loss

    @staticmethod
    def _position(args, array):
        """Which argument holds `array` (its index), or the array itself, a fixed constant."""
        for k, a in enumerate(args):
            if (a._data if isinstance(a, Tensor) else a) is array:
                return k
        return array

    @staticmethod
    def _arrays(program, args):
        """The generated function's arguments: the leaves' arrays, then the constants."""
        arrays = [leaf._data for leaf in program.leaves]
        for where in program.positions:
            if type(where) is int:
                where = args[where]
                arrays.append(where._data if type(where) is Tensor else where)
            else:
                arrays.append(where)
        return arrays

    def _check(self, key, program, args):
        """The first run on new inputs also runs eagerly and compares: a function that
        computes something from its inputs outside the graph (a constant the code would
        reuse) is caught here, and falls back to eager for good."""
        kept = [leaf.grad for leaf in program.leaves]
        for leaf in program.leaves:
            leaf.grad = None
        state = [t.data.copy() for t in program.effects]
        loss = self._eager(args)
        for t, before in zip(program.effects, state):       # updated once, by our code
            t.data[...] = before
        eager = [leaf.grad for leaf in program.leaves]
        ours, *grads = program.function(*self._arrays(program, args))
        same = np.array_equal(np.asarray(ours), loss._data, equal_nan=True) and all(
            e is not None and np.array_equal(e._data, g, equal_nan=True)
            for e, g in zip(eager, grads))
        for leaf, before, g in zip(program.leaves, kept, eager):
            leaf.grad = before
            _deliver(leaf, np.zeros_like(leaf._data) if g is None else g._data)
        if same:
            program.checked = True
            self.last, self.reason = "compiled", "checked against eager on its first run"
        else:
            self.programs[key] = ("the generated code disagreed with eager on new inputs (does "
                                  "the function compute values from its inputs outside the "
                                  "graph?)")
            self.last, self.reason = "eager", self.programs[key]
        return loss
