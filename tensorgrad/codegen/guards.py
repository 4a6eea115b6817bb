"""What a compiled step reads besides its arguments, and the check that it is unchanged.

Generated code replays one trace of a step: the Python around the ops does not run again.
So whatever that Python read must be the same at every call that uses the code. `State`
walks, from the step function (and its arguments that are not arrays), everything the step
can reach:

- the function's closure variables, default arguments and the globals its code names
  (and, the same way, every function of yours reachable from there, and the attributes
  of your modules that it names);
- the items of lists, tuples and dicts, the attributes of objects of your classes and of
  every `nn.Module` (its `training` flag included), and your classes' attributes;
- for each tensor: which tensor it is, whether it requires grad (and is a leaf), its
  array's shape and dtype, and whether it has a `.grad`; for each numpy array: which
  array, its shape and dtype; for numbers, strings, None and the like: the value.

From the walk it writes `check`, a function that reaches the same objects the same way and
compares each with what the walk found: the step would run the same Python the same way if
nothing differs (given arguments of the same shapes, and no reads of tensor values, which
`watch` refuses). The contents of arrays are not compared: generated code reads each array
anew at every call. Library code (tensorgrad, numpy, the standard library, anything
installed) is taken as it is: its functions and objects are compared by identity, not
entered, except nn.Modules and the functions a decorator wraps (`__wrapped__`).

The walk uses an explicit stack and visits each object once (a second path to it is
checked to lead to the same object).
"""
import dis
import functools
import os
import random
import sys
import sysconfig
import types

import numpy as np

from ..creation import Generator
from ..nn import Module
from ..tensor import Tensor

LARGEST = 1000              # a container with more items is refused: too costly to check

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY = tuple({os.path.join(os.path.abspath(p), "") for p in (
    sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values())} | {_PACKAGE})
_SCALARS = (type(None), bool, int, float, complex, str, bytes, range, slice, np.generic,
            np.dtype, type(Ellipsis))
_SKIPPED = {"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__",
            "__annotations__", "__slots__"}
GENERATORS = (Generator, np.random.Generator, np.random.RandomState, random.Random)
_library_files = {}


def is_library_file(filename):
    """True for code of tensorgrad, numpy, the standard library or anything installed (and
    for generated or frozen code); False for the user's own scripts, tests and notebooks."""
    known = _library_files.get(filename)
    if known is None:
        path = os.path.abspath(filename)
        known = path.startswith(_LIBRARY) or filename.startswith(("<frozen", "<tensorgrad"))
        _library_files[filename] = known
    return known


def _is_library_object(obj):
    """A class or module that comes from library code (see `is_library_file`): a class by
    the file of its first method, else (like a module) by its module's file."""
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        for value in vars(obj).values():
            if type(value) is types.FunctionType:
                return is_library_file(value.__code__.co_filename)
        name = getattr(obj, "__module__", None)
        if name == "builtins":
            return True
    module = sys.modules.get(name)
    if module is None or name in sys.builtin_module_names:
        return name != "__main__"
    filename = getattr(module, "__file__", None)
    return filename is not None and is_library_file(filename)


@functools.lru_cache(maxsize=None)
def code_names(code):
    """(global names, attribute names) that `code` and the functions nested in it use."""
    globals_, attributes, stack = [], set(), [code]
    while stack:
        code = stack.pop()
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "STORE_GLOBAL", "LOAD_NAME"):
                if instruction.argval not in globals_:
                    globals_.append(instruction.argval)
            elif instruction.opname in ("LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR"):
                attributes.add(instruction.argval)
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return tuple(globals_), frozenset(attributes)


class State:
    """What a step can reach, walked once (see the module docstring), and `check`, the
    function that tells at every later call whether it is still the same.

    `check(step, args)` returns None when everything is as it was, else the number of the
    first object that differs and its value now (`difference` puts that in words). It is
    generated Python, one line to reach each object from the one holding it and one to
    compare it, so checking costs about a microsecond per ten objects. The walk also
    keeps `owners` (id of each array found -> the tensor or array holding it, and its
    path), `tensors` (ids of the tensors found), `generators` (the random number generators
    found), `large` (the first container too large to check) and `keep` (what the check
    compares by identity, held so that no other object takes its id).
    """

    def __init__(self, step, args, arg_names):
        self.owners, self.tensors, self.generators, self.keep = {}, set(), [], []
        self.large = None
        self.paths, self.lines, self.constants = [], [], {}
        self.values, self.facts = {}, {}        # what was found, to say what changed
        self._seen = {}
        stack = [(step, ("step",), None, "step")]
        for k, a in enumerate(args):
            if not isinstance(a, (Tensor, np.ndarray)):
                name = arg_names[k] if k < len(arg_names) else f"argument {k}"
                stack.append((a, ("step", name), None, f"args[{k}]"))
        stack.reverse()
        while stack:
            obj, path, names, access = stack.pop()
            children = self._visit(obj, path, names, access)
            if children:
                stack += reversed(children)
        source = ("def check(step, args):\n    try:\n"
                  + "".join(f"        {line}\n" for line in self.lines)
                  + "    except Exception:\n        return k, None\n    return None\n")
        namespace = {**self.constants, "types": types, "_is_empty": _is_empty,
                     "MISSING": _MISSING}
        exec(compile(source, "<tensorgrad.codegen state check>", "exec"), namespace)
        self.source, self.check = source, namespace["check"]

    def _visit(self, obj, path, names, access):
        """Write the check of `obj`; return the (object, path, names, access) it holds."""
        k = len(self.paths)
        v = f"v{k}"
        self.paths.append(path)
        self.lines.append(f"k = {k}; {v} = {access}")
        kind = type(obj)
        if kind in _SCALARS or isinstance(obj, _SCALARS):
            self.values[k] = obj
            value = self._const(obj)
            self._check(f"type({v}) is {self._const(kind)} and ({v} is {value} or {v} == {value})",
                        v)
            return None
        seen = self._seen.get(id(obj))
        if seen is not None:
            self._check(f"{v} is v{seen}", v)
            return None
        self._seen[id(obj)] = k
        if kind is Tensor:                      # which tensor, its place in the graph,
            node, data = obj._node, obj._data  # its array's shape and dtype, has it a grad
            place = ("is None" if node is None else "is not None and {v}._node.op is None"
                     if node.op is None else "is not None and {v}._node.op is not None")
            self._check(f"{v} is {self._const(obj)} and {v}._node {place.format(v=v)} and "
                        f"{v}._data.shape == {data.shape} and "
                        f"{v}._data.dtype == {self._const(data.dtype)} and "
                        f"({v}.grad is None) is {obj.grad is None}", v)
            self.owners.setdefault(id(data), (obj, path))
            self.tensors.add(id(obj))
            self.values[k] = obj
            self.facts[k] = _facts(obj)
            return None
        if kind is np.ndarray:
            self._check(f"{v} is {self._const(obj)} and {v}.shape == {obj.shape} and "
                        f"{v}.dtype == {self._const(obj.dtype)}", v)
            self.owners.setdefault(id(obj), (obj, path))
            return None
        if kind in (list, tuple, dict, set, frozenset, bytearray):
            return self._container(obj, kind, path, v)
        if kind is types.FunctionType:
            return self._function(obj, path, v)
        if kind is types.CellType:
            try:
                contents = obj.cell_contents
            except ValueError:
                self._check(f"_is_empty({v})", v)
                return None
            self._check(f"type({v}) is types.CellType", v)
            return [(contents, path, names, f"{v}.cell_contents")]
        parts = {types.MethodType: (("__self__", "self"), ("__func__", None)),
                 functools.partial: (("func", None), ("args", "args"), ("keywords", "keywords")),
                 staticmethod: (("__func__", None),), classmethod: (("__func__", None),),
                 property: (("fget", "getter"), ("fset", "setter"), ("fdel", "deleter"))}
        if kind in parts:
            self._check(f"type({v}) is {self._const(kind)}", v)
            return [(getattr(obj, attribute), path + ((label,) if label else ()), None,
                     f"{v}.{attribute}") for attribute, label in parts[kind]]
        if kind is types.ModuleType:
            return self._module(obj, path, names, v)
        if isinstance(obj, type):
            return self._class(obj, path, v)
        return self._object(obj, kind, path, v)

    def _const(self, value):
        """The name under which the check finds `value`."""
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        self.keep.append(value)
        return name

    def _check(self, condition, v):
        self.lines.append(f"if not ({condition}): return k, {v}")

    def _identity(self, obj, v):
        self._check(f"{v} is {self._const(obj)}", v)

    def _container(self, obj, kind, path, v):
        kind_is = f"type({v}) is {self._const(kind)}"
        if len(obj) > LARGEST:
            self._check(f"{kind_is} and len({v}) == {len(obj)}", v)
            self.large = self.large or (path, len(obj))
            return None
        if kind in (set, frozenset, bytearray):
            value = frozenset(obj) if kind is not bytearray else bytes(obj)
            self._check(f"{kind_is} and {type(value).__name__}({v}) == {self._const(value)}", v)
            return None
        if kind is dict:
            self._check(f"{kind_is} and tuple({v}) == {self._const(tuple(obj))}", v)
            return [(value, path + ([key],), None, f"{v}[{self._const(key)}]")
                    for key, value in obj.items()]
        self._check(f"{kind_is} and len({v}) == {len(obj)}", v)
        return [(value, path + ([i],), None, f"{v}[{i}]") for i, value in enumerate(obj)]

    def _function(self, f, path, v):
        """Your function: its code, closure, defaults and the globals it names. A library
        function: by identity (and what it wraps, for decorators)."""
        code = f.__code__
        if len(path) > 1 and is_library_file(code.co_filename):
            self._identity(f, v)
            wrapped = getattr(f, "__wrapped__", None)
            return [(wrapped, path, None, f"{v}.__wrapped__")] if wrapped is not None else None
        self._check(f"type({v}) is types.FunctionType and {v}.__code__ is {self._const(code)}",
                    v)
        global_names, attributes = code_names(code)
        children = [(f.__defaults__, path + ("defaults",), None, f"{v}.__defaults__"),
                    (f.__kwdefaults__, path + ("defaults",), None, f"{v}.__kwdefaults__")]
        for i, (name, cell) in enumerate(zip(code.co_freevars, f.__closure__ or ())):
            children.append((cell, path + (name,), None, f"{v}.__closure__[{i}]"))
        space = f.__globals__
        for name in global_names:
            value = space.get(name, _MISSING)
            children.append((value, path + (name,),
                             attributes if type(value) is types.ModuleType else None,
                             f"{v}.__globals__.get({name!r}, MISSING)"))
        return children

    def _module(self, module, path, names, v):
        """A library module by identity; your module by the attributes the code names."""
        self._identity(module, v)
        if names is None or _is_library_object(module):
            return None
        space = vars(module)
        return [(space.get(name, _MISSING), path + ("." + name,), None,
                 f"vars({v}).get({name!r}, MISSING)") for name in sorted(names)]

    def _class(self, cls, path, v):
        """A library class by identity; your class by its attributes and your bases."""
        self._identity(cls, v)
        if _is_library_object(cls):
            return None
        children = [(value, path + ("." + key,), None, f"vars({v}).get({key!r}, MISSING)")
                    for key, value in vars(cls).items() if key not in _SKIPPED]
        self._check(f"tuple(vars({v})) == {self._const(tuple(vars(cls)))}", v)
        children += [(base, path + (f"<base {base.__name__}>",), None, f"{v}.__bases__[{i}]")
                     for i, base in enumerate(cls.__bases__) if base is not object]
        return children

    def _object(self, obj, kind, path, v):
        """An nn.Module or an object of your class: its class, its attributes (and a
        module's `training` flag). Any other object: by identity."""
        if not isinstance(obj, Module) and _is_library_object(kind):
            self._identity(obj, v)
            if isinstance(obj, GENERATORS):
                self.generators.append(obj)
            return None
        space = getattr(obj, "__dict__", None)
        if space is None:
            self._identity(obj, v)
            return None
        kind_is = f"type({v}) is {self._const(kind)}"
        children = [] if _is_library_object(kind) else [(kind, path + ("<class>",), None,
                                                         f"type({v})")]
        if isinstance(obj, Module):             # set on the object or inherited
            children.append((obj.training, path + (".training",), None, f"{v}.training"))
        if len(space) > LARGEST:
            self._check(f"{kind_is} and len({v}.__dict__) == {len(space)}", v)
            self.large = self.large or (path, len(space))
            return children
        module = isinstance(obj, Module)
        names = tuple(key for key in space if not module or key != "training")
        listed = f"tuple({v}.__dict__) == {self._const(tuple(space))}"
        if module:      # the names as they were first, which skips the filter (0.3 us a module)
            listed += (f" or tuple(key for key in {v}.__dict__ if key != 'training') == "
                       f"{self._const(names)}")
        self._check(f"{kind_is} and ({listed})", v)
        return children + [(space[key], path + ("." + key,), None, f"{v}.__dict__[{key!r}]")
                           for key in names]

    # ------------------------------------------------------------ saying what changed

    def difference(self, found):
        """`found`, from `check`, in words: what changed, and from what to what."""
        k, now = found
        text = f"{render(self.paths[k])} changed"
        before = self.values.get(k, _MISSING)
        if type(now) in _SCALARS[:6] and before is not _MISSING:
            return f"{text} from {before!r} to {now!r}"
        if type(before) is Tensor and now is before:
            for what, value in _facts(now).items():
                was = self.facts[k][what]
                if value != was and type(value) is bool:
                    return f"{text}: it {'now' if value else 'no longer'} {what}"
                if value != was:
                    return f"{text}: its {what} is now {value} (was {was})"
        return text


def _facts(t):
    """What the check compares of a tensor besides which tensor it is, by name."""
    return {"requires grad": t.requires_grad, "is a leaf": t.is_leaf, "shape": t.shape,
            "dtype": t.dtype, "has a .grad": t.grad is not None}


def _is_empty(cell):
    try:
        cell.cell_contents
    except ValueError:
        return True
    return False


_MISSING = type("Missing", (), {"__repr__": lambda self: "<not defined>"})()


def render(path):
    """A path of the walk as text: `state['model'].layers[1].training`."""
    text = ""
    for part in path[1:]:
        if isinstance(part, list):
            text += f"[{part[0]!r}]"
        elif part.startswith((".", "<")):
            text += part
        else:
            text = f"{text} -> {part}" if text else part
    return text or "the step function"
