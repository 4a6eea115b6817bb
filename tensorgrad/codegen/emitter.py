"""The Emitter: collects a generated function's statements, names and constants, and the
passes over them (reusing values already computed, computing once what two statements
share, freeing arrays after their last use)."""
import ast
import itertools
import keyword
import re

import numpy as np

from .hooks import derived_constants
from ..tensor import Tensor
from .rules import CodegenError, forward_source

_ALLOCATE = {"zeros", "ones", "zeros_like", "ones_like", "empty", "full", "copy", "array"}


def python_literal(value):
    """A Python value as source: repr, but infinities and NaN as numpy's names (`inf` is
    not a name the generated code has)."""
    if isinstance(value, float) and not np.isfinite(value):
        return "np.nan" if np.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
    return repr(value)


class _SumForm(ast.NodeTransformer):
    """Sums written `x.sum(axis=..., keepdims=...)` in standalone code, which is read, and
    `np.add.reduce(x, axis=..., keepdims=...)` in compiled code, which is run: the same
    reduction, without numpy's Python wrapper around it."""

    def __init__(self, readable):
        self.readable = readable

    def visit_Call(self, node):
        self.generic_visit(node)
        keywords = {k.arg for k in node.keywords}
        if not keywords <= {"axis", "keepdims"}:
            return node
        f = node.func
        if (self.readable and ast.unparse(f) == "np.add.reduce" and len(node.args) == 1):
            return ast.Call(ast.Attribute(node.args[0], "sum", ast.Load()), [], node.keywords)
        if not self.readable and isinstance(f, ast.Attribute) and f.attr == "sum" \
                and not node.args and ast.unparse(f.value) != "np":
            return ast.Call(ast.parse("np.add.reduce", mode="eval").body, [f.value],
                            node.keywords)
        return node


class _Reuse(ast.NodeTransformer):
    """Replaces each subexpression found in `known` (by its ast.dump) with the name holding
    its value, innermost first. Changes the tree it visits."""

    def __init__(self, known):
        self.known = known

    def visit(self, node):
        node = self.generic_visit(node)
        found = self.known.get(ast.dump(node))
        return ast.Name(found[0], ast.Load()) if found else node


def _changed_names(statement):
    """The names a statement that is not a plain assignment changes or deletes."""
    changed = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            changed.add(node.id)
        elif isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if (isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute)
                    and first.func.attr == "reshape"):
                first = first.func.value                # np.add.at(x.reshape(-1), ...)
            if isinstance(first, ast.Name):
                changed.add(first.id)                   # np.add.at(x, ...)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            changed.add(node.value.id)
    return changed


def identifier(name, fallback):
    """`name` made a valid Python identifier ('model.hidden.weight' -> model_hidden_weight)."""
    text = re.sub(r"\W", "_", name or "") or fallback
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "_" + text
    return text


class Emitter:
    """Collects the statements of one generated function and the names it uses."""

    def __init__(self, inputs, standalone, constants=None):
        self.lines, self.used = [], set()
        self.standalone = standalone
        self.constants = constants  # array -> how the code may have it (see `const`)
        self.args = []              # (argument name, array) of constant inputs
        self.arg_of = {}            # id(array) -> argument name
        self.globals = {}           # name -> object, for ops called through the op table
        for name, value in inputs.items():
            array = value._data if isinstance(value, Tensor) else value
            self.arg_of[id(array)] = self.fresh(identifier(name, "x"))
            self.args.append((self.arg_of[id(array)], array))
        self.inputs = set(self.arg_of)  # ids of the arrays given as `inputs`
        self.derived = {}           # id(array) -> its name, for constants rebuilt in the code
        self.values = {}            # id(array) -> the name of the graph value it is
        self.effects = []           # tensors the code updates in place (running statistics)
        self.saved = {}             # node -> {step: name}: what a fused op or var saved
        self.steps_of = {}          # node -> the name of the dict of its steps, for effects
        self.helpers = {}           # name -> function the inlined fused kernels call
        self.known = {}             # ast.dump of an expression -> (its name, names it reads)
        self.aliases = set()        # names given to a value another name already holds
        self.prologue = []          # checks of the arguments, run before anything else

    def fresh(self, base):
        name, k = base, 1
        while name in self.used or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def line(self, text, shape=None):
        text = self.rewrite(text)
        self.lines.append(text if shape is None else f"{text:<48s}  # {shape}")

    def rewrite(self, text):
        """`text` with its sums in this code's form, and with every expression computed
        before (the same operation on the same arrays) replaced by the name that holds it:
        the mean a variance needs is the mean already computed. The values are the same,
        bit for bit; the work is done once."""
        body = ast.parse(text).body
        if not body:
            return text                                 # a blank line or a comment
        statement = body[0]
        before = ast.dump(statement)
        statement = _SumForm(self.standalone).visit(statement)
        if ast.dump(statement) != before:
            text = ast.unparse(statement)
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            changed = _changed_names(statement)        # x[i] = v, x *= v, del x, add.at(x)
            if changed & self.aliases and not isinstance(statement, ast.Delete):
                raise AssertionError(f"codegen: '{text}' would change a shared array")
            for name in changed:
                self.forget(name)
            return text
        name, value = statement.targets[0].id, statement.value
        before = ast.dump(value)
        value = _Reuse(self.known).visit(value)
        if ast.dump(value) != before:
            text = f"{name} = {ast.unparse(value)}"
            if isinstance(value, ast.Name):
                self.aliases.add(name)
        self.forget(name)
        used = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        allocates = any(isinstance(n, ast.Call) and getattr(n.func, "attr", None) in _ALLOCATE
                        for n in ast.walk(value))      # a new array, to be filled: not shared
        if not isinstance(value, (ast.Name, ast.Constant)) and not allocates and name not in used:
            self.known[ast.dump(value)] = (name, used)
        return text

    def forget(self, name):
        """`name` is assigned again, changed in place or deleted: reuse nothing through it."""
        self.known = {k: v for k, v in self.known.items() if v[0] != name and name not in v[1]}

    def let(self, base, expr):
        name = self.fresh(base)
        self.line(f"{name} = {expr}")
        return name

    # ------------------------------------------------------------ constants

    def const(self, array, hint="const"):
        """Source for a constant array: a literal, `np.arange(n)`, or a function argument.

        A graph value read as a constant (`h.detach()`) is the name that holds it. With
        `constants` (code that is run again on new values: `compile`), `constants(array)`
        says what else an array may be: True for one made from Python numbers during the
        step (written as a literal), False for one the code must read anew at every call
        (an argument), or how the step computed it outside the graph (computed again, see
        `_replay`); it raises CodegenError for an array that can be none of these.
        """
        array = np.asarray(array)
        key = id(array)
        if key in self.arg_of:
            return self.arg_of[key]
        if key in self.derived:
            return self.derived[key]
        if key in self.values:
            return self.values[key]
        recipe = derived_constants.get(key)
        if recipe is not None and recipe[0]() is array:
            return self._rebuild(array, recipe)
        kind = True if self.constants is None else self.constants(array)
        if type(kind) is tuple:
            return self._replay(array, kind)
        if kind:
            if array.ndim == 0:
                return self.literal(array)
            if (array.ndim == 1 and array.dtype.kind in "iu"
                    and np.array_equal(array, np.arange(len(array)))):
                return f"np.arange({len(array)})"
        name = self.fresh(identifier(hint, "const"))
        self.arg_of[id(array)] = name
        self.args.append((name, array))
        return name

    @staticmethod
    def literal(array):
        """A 0-d array's value as a Python literal of its dtype."""
        value = array.item()
        if isinstance(value, float) and np.isfinite(value):
            return str(array.dtype.type(value))
        return python_literal(value)

    def _rebuild(self, array, recipe):
        """A constant computed from other arrays (a one-hot of the targets): computed again."""
        _, kind, sources = recipe
        if kind == "one_hot":                   # of cross_entropy's targets, F.one_hot's
            index, = sources
            name = self.fresh("one_hot")
            self.derived[id(array)] = name
            target = self.const(index, "target")
            if index.ndim == 1:
                self.line(f"{name} = np.zeros({array.shape}, np.{array.dtype})", array.shape)
                self.line(f"{name}[np.arange({len(index)}), {target}] = 1")
            else:                               # row `target` of the identity, for each
                self.line(f"{name} = np.eye({array.shape[-1]}, dtype=np.{array.dtype})"
                          f"[{target}]", array.shape)
            return name
        raise CodegenError(f"codegen: no recipe for a constant made by {kind!r}")

    def repeat_check(self, check, arguments):
        """In code run again on new values: the call `check(*arguments.values())` the step
        made of the values in some arrays (`checks.VALUE_CHECKS`), made again by the code
        at every call, if it reads any of those arrays anew (an argument, the state, or
        computed from them). It comes first in the code when it reads only arguments;
        otherwise right after its arrays are computed (`CompiledStep` then undoes what the
        code changed before, should it raise). An array that can be none of these (made by
        numpy in the step) is refused: the code could not check it."""
        arrays = [a for a in arguments.values() if isinstance(a, np.ndarray)]
        if self.constants is None or not any(map(self._read_anew, arrays)):
            return                              # the values are written in: checked once
        names = {what: self.const(a, what) for what, a in arguments.items()
                 if isinstance(a, np.ndarray)}
        values = [names[what] if what in names else
                  python_literal(a) if isinstance(a, (str, int, float, bool, type(None))) else
                  self.globals_name(a, what) for what, a in arguments.items()]
        text = f"{self.globals_name(check, check.__name__)}({', '.join(values)})"
        if text in self.prologue or text in self.lines:
            return
        parameters = {name for name, _ in self.args}
        if all(n in parameters or not n.isidentifier() for n in names.values()):
            self.prologue.append(text)
            return
        made = [k for k, line in enumerate(self.lines)    # not through `line`: the check
                if line.split(" = ", 1)[0] in names.values()]   # changes no array
        self.lines.insert(max(made) + 1 if made else len(self.lines), text)

    def _read_anew(self, array):
        """Whether the code reads the values of `array` anew at every call, rather than
        having them written into it (made from Python numbers in the step)."""
        key = id(array)
        if key in self.inputs or key in self.derived or key in self.values:
            return True
        recipe = derived_constants.get(key)
        if recipe is not None and recipe[0]() is array:
            return True
        try:
            return self.constants(array) is not True
        except CodegenError:
            raise CodegenError(
                f"codegen: the step checks the values of a {array.dtype} array of shape "
                f"{array.shape} that it made in a way generated code cannot repeat (with "
                "numpy, from a list...): the code could not make the same check; pass it "
                "as a tensor argument, or make it before the step") from None

    def _replay(self, array, how):
        """An array the step computed outside the graph, from arguments, the state it reads,
        graph values or Python numbers, computed again the same way: an op of the table,
        a cast or a comparison (`watch.Watch` saw how)."""
        kind, *parts = how
        if kind == "op":
            op, attrs, inputs = parts
            node = _Replayed(op, attrs, inputs, array)
            expr = forward_source(self, node, [self.const(a) for a in inputs])
            if expr is None:
                raise CodegenError(f"codegen: '{op.name}' outside the graph has no source form")
        elif kind == "cast":
            source, dtype = parts
            expr = f"{self.const(source)}.astype(np.{dtype})"
        else:
            ufunc, a, b = parts
            b = self.const(b) if isinstance(b, np.ndarray) else python_literal(b)
            expr = f"np.{ufunc.__name__}({self.const(a)}, {b})"
        name = self.fresh("const")
        self.derived[id(array)] = name
        self.line(f"{name} = {expr}", array.shape)
        return name

    def index(self, index, as_value=False):
        """Source for a numpy index: ints, slices, None, ..., integer and boolean arrays; as
        a value (a function's argument) rather than inside brackets with `as_value`."""
        items = index if isinstance(index, tuple) else (index,)
        parts = []
        for item in items:
            if item is None:
                parts.append("None")
            elif item is Ellipsis:
                parts.append("...")
            elif isinstance(item, slice) and as_value:   # `:` is written only in brackets
                parts.append(f"slice({item.start}, {item.stop}, {item.step})")
            elif isinstance(item, slice):                # 1: stays 1:, never the index 1
                start, stop = ("" if v is None else str(v) for v in (item.start, item.stop))
                parts.append(f"{start}:{stop}" + ("" if item.step is None else f":{item.step}"))
            elif isinstance(item, (int, np.integer)):
                parts.append(str(int(item)))
            else:
                self._fixed_mask(item)
                parts.append(self.const(item, "index"))
        text = parts[0] + "," if isinstance(index, tuple) and len(parts) == 1 else ", ".join(parts)
        return f"({text})" if as_value and isinstance(index, tuple) else text

    def _fixed_mask(self, item):
        """In code run again on new values, a boolean mask must be a constant written into
        the code: how many elements it picks, which sets the shapes the code is written
        for, depends on its values."""
        if self.constants is None or np.asarray(item).dtype != np.bool_:
            return
        try:
            fixed = self.constants(item) is True
        except CodegenError:
            fixed = False
        if not fixed:
            raise CodegenError(
                f"codegen: the graph indexes with a boolean mask of shape {np.shape(item)} whose "
                "values can change; the shape of the result depends on them (use "
                "multiplication by the mask, or an integer index)")

    # ------------------------------------------------------------ ops without a source form

    def generic(self, node, what):
        """Call the op's own function (fused ops), or refuse in standalone code."""
        name = node.op.name
        if self.standalone:
            raise CodegenError(
                f"codegen: op '{name}' has no source form for standalone code yet; "
                f"{what} of '{name}' cannot be written as plain numpy (compile() can still "
                "run it, through the op table)")
        op = self.globals_name(node.op, identifier(name, "op"))
        attrs = self.globals_name(node.attrs, f"{op}_attrs")
        return op, attrs

    def globals_name(self, value, base):
        for key, v in self.globals.items():
            if v is value:
                return key
        name = self.fresh("_" + base.lstrip("_"))
        self.globals[name] = value
        return name


class _Replayed:
    """An op applied outside the graph, in the form the source rules read (a Node's)."""

    def __init__(self, op, attrs, inputs, out):
        self.op, self.attrs, self.inputs, self.out = op, attrs, inputs, out
        self.parents, self.name = (None,) * len(inputs), None
        self.shapes = tuple(a.shape for a in inputs)
        self.dtypes = tuple(a.dtype for a in inputs)
        self.out_shape, self.out_dtype = out.shape, out.dtype
        self.extras = None


def compute_once(lines, used):
    """`lines` with each subexpression that two statements compute alike (the same numpy
    operation on the same arrays, none of them assigned or changed between) computed once,
    into a name of its own, before the first: a fused op's gradient and its bias'
    gradient both sum `bnraw * dhpreact` over the batch. `Emitter.rewrite` reuses a value
    a statement assigned to a name; this finds the ones that were parts of expressions.
    The values are the same, bit for bit (measured on makemore's step: 5 us of 140 saved).
    The new names are `sum5`, `common1`, ..., none of `used` (which they join)."""
    lines = list(lines)
    k = 0
    while k < len(lines):
        statement = _assignment(lines[k])
        hoisted = None
        if statement is not None:
            for part in _parts(statement.value):
                later = _recomputed(lines, k, part, statement.targets[0].id)
                if later:
                    hoisted = part
                    break
        if hoisted is None:
            k += 1
            continue
        base = "sum" if ast.unparse(hoisted).startswith("np.add.reduce(") else "common"
        name = next(f"{base}{n}" for n in itertools.count(1) if f"{base}{n}" not in used)
        used.add(name)
        dump = ast.dump(hoisted)
        for m in [k] + later:
            lines[m] = _replaced(lines[m], dump, name)
        lines.insert(k, f"{name} = {ast.unparse(hoisted)}")
    return lines


_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _assignment(line):
    """The statement of `line` if it assigns one name (with no names of its own: no lambda,
    no comprehension), else None."""
    body = ast.parse(line).body
    if len(body) == 1 and isinstance(body[0], ast.Assign) and len(body[0].targets) == 1 \
            and isinstance(body[0].targets[0], ast.Name) \
            and not any(isinstance(n, _SCOPES) for n in ast.walk(body[0])):
        return body[0]
    return None


def _parts(value):
    """The subexpressions of `value` worth computing once, largest first: numpy calls
    (other than allocations) and arithmetic on at least one array name; none from a part
    that is evaluated only on a condition (`a if c else b`, `and`, `or`)."""
    queue = [value]
    while queue:
        node = queue.pop(0)
        if isinstance(node, (ast.IfExp, ast.BoolOp)):
            continue
        queue += ast.iter_child_nodes(node)
        if node is value:
            continue
        if isinstance(node, ast.Call):
            f = ast.unparse(node.func)
            if not f.startswith("np.") or f.split(".")[-1] in _ALLOCATE:
                continue
        elif not isinstance(node, (ast.BinOp, ast.UnaryOp)):
            continue
        if any(isinstance(n, ast.Name) and n.id != "np" for n in ast.walk(node)):
            yield node


def _recomputed(lines, k, part, target):
    """The lines after k that compute `part` again, before any of the names it reads is
    assigned, changed or deleted (line k assigning `target` counts)."""
    names = {n.id for n in ast.walk(part) if isinstance(n, ast.Name)}
    if target in names:
        return []
    dump, found = ast.dump(part), []
    for m in range(k + 1, len(lines)):
        body = ast.parse(lines[m]).body
        if not body:
            continue
        if any(isinstance(n, _SCOPES) for n in ast.walk(body[0])):
            break                               # its own names: not looked into
        statement = _assignment(lines[m])
        if statement is not None and any(ast.dump(n) == dump for n in ast.walk(statement.value)
                                         if n is not statement.value):
            found.append(m)
        changed = {statement.targets[0].id} if statement is not None else _changed_names(body[0])
        if changed & names:
            break
    return found


def _replaced(line, dump, name):
    """`line` with every subexpression whose ast.dump is `dump` replaced by `name`, and its
    shape comment kept."""
    text, comment = line, ""
    shape = re.search(r"\s+# \([\d, ]*\)$", line)
    if shape:
        text, comment = line[:shape.start()], shape.group().strip()
    statement = _Reuse({dump: (name, set())}).visit(ast.parse(text))
    text = ast.unparse(statement)
    return f"{text:<48s}  {comment}" if comment else text


def free_early(lines):
    """`lines` with `del name` after the last statement that reads each array the function
    made: memory is given back as soon as possible (the big temporaries of a large batch),
    as the engine frees a gradient once it has been passed on."""
    last, made = {}, set()
    for k, line in enumerate(lines):
        for node in ast.walk(ast.parse(line)):
            if isinstance(node, ast.Name):
                last[node.id] = k
                if isinstance(node.ctx, ast.Store):
                    made.add(node.id)
    dead = {}
    for name in made:
        dead.setdefault(last[name], []).append(name)
    out = []
    for k, line in enumerate(lines):
        out.append(line)
        if k in dead and not line.startswith("return "):
            out.append(f"del {', '.join(sorted(dead[k]))}")
    return out
