"""`compile`: a training step traced once and run as generated code afterwards, for as long
as nothing it depends on has changed (see docs/codegen.md, "What the compiled step checks")."""
import functools
import inspect
from collections import OrderedDict

import numpy as np

from .hooks import traced_effects, tracing
from ..grad_mode import _anomaly, is_grad_enabled
from ..graph import deliver as _deliver
from ..tensor import Tensor
from .emitter import identifier
from .guards import State, render
from .program import generate
from .rules import CodegenError
from .watch import Watch


def compile(step, max_programs=8):
    """A compiled training step: `compile(fn)(*args)` computes `loss = fn(*args)` and its
    gradients, as `loss.backward()` would (adding them to each leaf's `.grad`).

    The first call runs eagerly and records the graph, from which forward and backward code
    is generated; later calls run that code on the new inputs, as long as they have the
    same shapes and dtypes and everything else the step reads is unchanged (the state it
    can reach: closure variables, globals, modules' training flags, which tensors are the
    parameters). Otherwise the step is traced again; a step whose results the code could
    not reproduce (it reads tensor values into Python, draws random numbers, computes
    arrays outside the graph, changes its own state) runs eagerly. The code checks the
    values eager checks (indices in range, integer divisors not 0); should it raise, the
    call runs eagerly, from the state before it, and raises eager's error. `explain()` says
    what the latest call did and why. At most `max_programs` programs are kept, the least
    recently used dropped first. Usable as a decorator.
    """
    return CompiledStep(step, max_programs)


class _Entry:
    """One traced state: its argument signature, the recorded State, and the Program or
    the reason the step runs eagerly in that state."""

    def __init__(self, key, state, program=None, reason=None):
        self.key, self.state, self.program, self.reason = key, state, program, reason


class CompiledStep:
    """See `compile`. `programs` holds the traced states, least recently used first;
    `last` is 'traced', 'compiled' or 'eager' for the latest call, `reason` says why."""

    def __init__(self, step, max_programs=8):
        if not isinstance(max_programs, int) or max_programs < 1:
            raise ValueError(f"compile: max_programs must be a positive integer, got "
                             f"{max_programs!r}")
        self.step, self.max_programs = step, max_programs
        functools.update_wrapper(self, step)
        try:
            self.arg_names = list(inspect.signature(step).parameters)
        except (TypeError, ValueError):
            self.arg_names = []
        self.programs = OrderedDict()
        self.changes, self.settled = {}, {}     # per signature: retraces for a change of
                                                # what the step reads; or eager for good
        self.last, self.reason = None, None

    @staticmethod
    def signature(args):
        """What a program is generated for: each array argument's shape, dtype and place
        in the graph (none, a leaf that requires grad, or computed by recorded ops), and
        the value of each other argument that is a number, a string or None."""
        return tuple([(a._data.shape, a._data.dtype, 0 if a._node is None else
                       1 if a._node.op is None else 2) if type(a) is Tensor
                      else (a.shape, a.dtype) if isinstance(a, np.ndarray)
                      else ("value", type(a), a) if isinstance(a, (int, float, str, type(None)))
                      else ("object", type(a)) for a in args])

    def __call__(self, *args):
        if not is_grad_enabled() or _anomaly[-1]:
            mode = "no_grad()" if not is_grad_enabled() else "detect_anomaly()"
            return self._run_eagerly(args, f"called inside {mode}, which the code does not "
                                           "follow")
        key = self.signature(args)
        if key in self.settled:
            return self._run_eagerly(args, self.settled[key])
        for number, entry in reversed(self.programs.items()):
            if entry.key == key and entry.state.check(self.step, args) is None:
                self.programs.move_to_end(number)
                break
        else:
            return self._trace(key, args)
        program = entry.program
        if program is None:
            return self._run_eagerly(args, entry.reason)
        if not program.checked:
            return self._check(entry, args)
        self.last, self.reason = "compiled", None
        kept = [t._data.copy() for t in program.effects]
        try:
            loss, *grads = program.function(*_arrays(program.sources, args))
        except Exception as error:
            # a check eager makes too (an index out of range), or numpy's own error: undo
            # what the code updated, and run the call eagerly, to raise eager's own error
            _restore(program.effects, kept)
            return self._run_eagerly(args, (
                f"the generated code raised {type(error).__name__} ({error}); eager ran in "
                "its place, from the state before the call (eager's own errors apply)"))
        for target in reversed(program.targets):
            g = grads.pop()                     # held only here, unless shared: as in backward
            _deliver(args[target] if type(target) is int else target, g)
        return Tensor._wrap(np.asarray(loss), None)

    def explain(self):
        """What the latest call did, in words."""
        if self.last is None:
            return "not called yet"
        text = {"traced": "ran eagerly, recorded the graph and generated code for these inputs",
                "compiled": "ran the generated code",
                "eager": "ran eagerly"}[self.last]
        return text + (f": {self.reason}" if self.reason else "")

    def source(self, *args):
        """The generated source for inputs like `args`, if a program is kept for them."""
        key = self.signature(args)
        for entry in self.programs.values():
            if (entry.key == key and entry.program is not None
                    and entry.state.check(self.step, args) is None):
                return entry.program.source
        return None

    # ------------------------------------------------------------ eager runs

    def _eager(self, args):
        loss = self.step(*args)
        loss.backward()
        return loss

    def _run_eagerly(self, args, reason):
        self.last, self.reason = "eager", reason
        return self._eager(args)

    # ------------------------------------------------------------ tracing

    def _trace(self, key, args):
        """Run the step eagerly, watched, and keep a program for this state, or the reason
        there can be none (the step then runs eagerly in this state)."""
        state = State(self.step, args, self.arg_names)
        earlier = [e.state for e in self.programs.values() if e.key == key]
        if earlier:
            why = earlier[-1].difference(earlier[-1].check(self.step, args))
            changes = self.changes[key] = self.changes.get(key, 0) + 1
            if changes >= self.max_programs:
                self.settled[key] = (f"what the step reads keeps changing ({why}): it changed "
                                     f"{changes} times for these inputs; it now runs eagerly")
                return self._run_eagerly(args, self.settled[key])
        elif key in self.changes:
            why = f"its program had been dropped (at most {self.max_programs} are kept)"
        else:
            why = "new input shapes or dtypes" if self.changes else None
            self.changes[key] = 0
        self.last, self.reason = "traced", why          # should the step raise
        arrays = [(a, a.tobytes(), path) for a, path in _state_arrays(state)]
        inputs = {}
        for k, a in enumerate(args):
            if isinstance(a, (Tensor, np.ndarray)):
                inputs[self.arg_names[k] if k < len(self.arg_names) else f"arg{k}"] = a
        fname = identifier(getattr(self.step, "__name__", "step").strip("<>"), "step")
        program, reason = None, _refuse_arguments(args)
        with tracing():
            with Watch(state.generators) as watch:
                loss = self.step(*args)
            reason = reason or self._cannot_replay(watch, state, arrays, args)
            if reason is None:
                try:
                    program = generate(loss, inputs, fname, standalone=False,
                                       constants=functools.partial(_writable, watch, state),
                                       checks=watch.checks)
                except (CodegenError, ValueError) as error:
                    reason = f"no code could be generated: {error}"
        if program is not None:
            reason = _place(program, args, state)
        self._keep(_Entry(key, state, None if reason else program, reason))
        if reason:
            self.last, self.reason = "eager", reason
        else:
            self.last, self.reason = "traced", why
        loss.backward()                         # as an eager run would (or fail as it would)
        return loss

    def _cannot_replay(self, watch, state, arrays, args):
        """Why generated code could not give the results of the run just watched, if so."""
        if watch.reads:
            return (f"the step read a tensor's values into Python ({watch.reads[0]}); what it "
                    "computes may depend on them, and generated code would keep the first ones")
        if watch.draws:
            return (f"the step draws random numbers ({watch.draws[0]}); generated code would "
                    "repeat the first draw")
        if state.large is not None:
            path, n = state.large
            return (f"the step can reach {render(path)}, which holds {n} items: too many to "
                    "check at every call")
        changed = state.check(self.step, args)
        if changed is not None:
            return (f"the step changes what it reads ({state.difference(changed)}), which "
                    "generated code would not do")
        updated = {id(t._data) for _, _, arguments in traced_effects
                   for t in arguments if isinstance(t, Tensor)}
        for array, before, path in arrays:
            if id(array) not in updated and array.tobytes() != before:
                return (f"the step changed {path} in place outside the graph, which generated "
                        "code would not do")
        return None

    def _keep(self, entry):
        """Keep `entry` as the most recently used; drop the least recently used beyond
        `max_programs`."""
        number = max(self.programs, default=-1) + 1
        self.programs[number] = entry
        while len(self.programs) > self.max_programs:
            self.programs.popitem(last=False)

    def _check(self, entry, args):
        """The first run of a program also runs eagerly and compares, bit for bit: a last
        line of defence, should the code differ from eager in a way the checks above
        missed (for good, in this state). The gradients are eager's."""
        program = entry.program
        targets = [args[t] if type(t) is int else t for t in program.targets]
        kept = [t.grad for t in targets]
        state = [t._data.copy() for t in program.effects]
        loss = self._eager(args)
        eagers = [t._data.copy() for t in program.effects]
        _restore(program.effects, state)                    # updated once, by our code
        try:
            ours, *grads = program.function(*_arrays(program.sources, args))
        except Exception:                                   # where eager did not raise
            _restore(program.effects, eagers)
            ours, grads = None, ()
        same = ours is not None and np.array_equal(
            np.asarray(ours), loss._data, equal_nan=True) and all(
            t.grad is not None and np.array_equal(
                t.grad._data, g if before is None else before._data + g, equal_nan=True)
            for t, before, g in zip(targets, kept, grads))
        if same:
            program.checked = True
            self.last, self.reason = "compiled", "checked against eager on its first run"
        else:
            entry.program = None
            entry.reason = ("the generated code disagreed with eager on new inputs (does "
                            "the function compute values from its inputs outside the graph?)")
            self.last, self.reason = "eager", entry.reason
        return loss


def _restore(tensors, arrays):
    """Put back the values of tensors the code updates in place (running statistics)."""
    for t, before in zip(tensors, arrays):
        t._data[...] = before


def _arrays(sources, args):
    """The generated function's arguments: each from an argument (by position), a tensor
    (its array now) or a fixed array."""
    arrays = []
    for source in sources:
        if type(source) is int:
            source = args[source]
        arrays.append(source._data if type(source) is Tensor else source)
    return arrays


def _state_arrays(state):
    """(array, path) of every array the step can reach: tensors' and numpy arrays."""
    for owner, path in state.owners.values():
        yield (owner._data if isinstance(owner, Tensor) else owner), render(path)


def _refuse_arguments(args):
    for k, a in enumerate(args):
        if type(a) is Tensor and a._node is not None and a._node.op is not None:
            return (f"argument {k} was computed by ops recorded outside the step; generated "
                    "code would not go back through them (pass it .detach()ed, or compute it "
                    "inside the step)")
    return None


def _writable(watch, state, array):
    """For `Emitter.const`: True if `array`'s value may be written into the code (made
    from Python numbers during the step), False if the code must read it at every call
    (an array the step reaches), how to compute it again if the step computed it outside
    the graph, CodegenError if none of these is right."""
    if watch.made_from_python(array):
        return True
    if id(array) in state.owners:
        return False
    how = watch.computed_outside(array)
    if how is not None:
        return how
    raise CodegenError(
        f"codegen: the graph reads a {array.dtype} array of shape {array.shape} that the step "
        "made outside the graph in a way generated code cannot repeat (with numpy, argmax, "
        "torch.tensor() of a tensor...): pass it as an argument, or make it before the step")


def _place(program, args, state):
    """Where each of the program's arrays comes from at every call, and where each
    gradient goes: an argument (its position) or a tensor the step reaches. Returns why
    there is no such place for some leaf, if so."""
    def position(array):
        for k, a in enumerate(args):
            if (a._data if isinstance(a, Tensor) else a) is array:
                return k
        return None

    program.targets = []
    for leaf in program.leaves:
        k = next((k for k, a in enumerate(args) if a is leaf), None)
        if k is None and (leaf is None or id(leaf) not in state.tensors):
            return ("a tensor that requires grad was made during the step; generated code "
                    "would give its gradient to the first one made")
        program.targets.append(leaf if k is None else k)
    program.sources = list(program.targets)
    for _, array in program.args:
        k = position(array)
        owner = state.owners.get(id(array), (array,))[0]
        program.sources.append(k if k is not None else owner)
    program.checked = False
    return None
