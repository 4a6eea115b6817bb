"""The op table's rules as source code: each rule run once on stand-ins that write down what
is computed with them, instead of computing it.

Generated code (tensorgrad.codegen) and drawings (tensorgrad.viz) need each op's forward and
gradient as text. Rather than keep a second copy of every rule as text, which could drift
from the one that runs, they run the rule itself: `Expr` stands in for an array, and every
operator, numpy function (through numpy's own dispatch, `__array_ufunc__` and
`__array_function__`) and method applied to it builds a Python expression instead of a
value. So `Tanh.grad_x(g, out)` returns the expression `g * (1 - out * out)`, the very
computation the engine runs, in the same order: generated code is bit-exact with the engine
by construction.

Values known while writing (attributes such as `dims`, the shapes of inputs, numbers) are
used as they are: a rule's Python `if` on a shape picks its branch, and arithmetic on known
numbers is done at once, in their dtype, as the engine does it (`b - 1` for a constant
exponent b becomes one literal). Rules that write into arrays (scatter-adds, `put_along_axis`)
cannot be written this way; codegen keeps an explicit source form for those few.
"""
import ast
import re

import numpy as np

ATOMS = (ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.Subscript)


class NotWritable(Exception):
    """A rule did something a stand-in cannot write down (it read a value, or wrote into an
    array)."""


class Expr:
    """A stand-in for an array: the source of an expression, and what is known about it.

    `node` is the expression (a Python AST node); `shape` and `dtype` are known for the
    arrays a rule is given (its inputs, output and `g`) and their transposes, None for what
    it computes; `value` is the number itself for a known 0-d constant; `transposed`, for
    `x.T`, is `x` (so that `x.T.T` is written `x`).
    """

    __array_priority__ = 1000

    def __init__(self, node, writer, shape=None, dtype=None, value=None):
        self.node, self.writer, self.shape, self.dtype, self.value = node, writer, shape, dtype, value
        self.transposed = None

    # ------------------------------------------------------------ what is known

    @property
    def ndim(self):
        if self.shape is None:
            raise NotWritable("the shape of a computed value is not known while writing")
        return len(self.shape)

    def __bool__(self):
        raise NotWritable("a rule took the truth value of an array")

    def __array__(self, dtype=None, copy=None):
        raise NotWritable("a rule turned a stand-in into an array")

    def __len__(self):
        if self.shape is None:
            raise NotWritable("len() of a computed value")
        return self.shape[0]

    # ------------------------------------------------------------ operators

    def _binary(self, op, other, reverse=False):
        known = _value(self), _value(other)
        if None not in known:                   # both numbers: computed now, in their dtype
            a, b = (known[1], known[0]) if reverse else known
            return self.writer.constant(_PYTHON[type(op)](a, b))
        left, right = (other, self) if reverse else (self, other)
        return self.writer.expr(ast.BinOp(self.writer.ast(left), op, self.writer.ast(right)))

    def _compare(self, op, other):
        known = _value(self), _value(other)
        if None not in known:
            return bool(_PYTHON[type(op)](*known))
        return self.writer.expr(ast.Compare(self.writer.ast(self), [op], [self.writer.ast(other)]))

    __add__ = lambda s, o: s._binary(ast.Add(), o)                     # noqa: E731
    __radd__ = lambda s, o: s._binary(ast.Add(), o, True)              # noqa: E731
    __sub__ = lambda s, o: s._binary(ast.Sub(), o)                     # noqa: E731
    __rsub__ = lambda s, o: s._binary(ast.Sub(), o, True)              # noqa: E731
    __mul__ = lambda s, o: s._binary(ast.Mult(), o)                    # noqa: E731
    __rmul__ = lambda s, o: s._binary(ast.Mult(), o, True)             # noqa: E731
    __truediv__ = lambda s, o: s._binary(ast.Div(), o)                 # noqa: E731
    __rtruediv__ = lambda s, o: s._binary(ast.Div(), o, True)          # noqa: E731
    __pow__ = lambda s, o: s._binary(ast.Pow(), o)                     # noqa: E731
    __rpow__ = lambda s, o: s._binary(ast.Pow(), o, True)              # noqa: E731
    __matmul__ = lambda s, o: s._binary(ast.MatMult(), o)              # noqa: E731
    __rmatmul__ = lambda s, o: s._binary(ast.MatMult(), o, True)       # noqa: E731
    __and__ = lambda s, o: s._binary(ast.BitAnd(), o)                  # noqa: E731
    __or__ = lambda s, o: s._binary(ast.BitOr(), o)                    # noqa: E731
    __eq__ = lambda s, o: s._compare(ast.Eq(), o)                      # noqa: E731
    __ne__ = lambda s, o: s._compare(ast.NotEq(), o)                   # noqa: E731
    __lt__ = lambda s, o: s._compare(ast.Lt(), o)                      # noqa: E731
    __le__ = lambda s, o: s._compare(ast.LtE(), o)                     # noqa: E731
    __gt__ = lambda s, o: s._compare(ast.Gt(), o)                      # noqa: E731
    __ge__ = lambda s, o: s._compare(ast.GtE(), o)                     # noqa: E731
    __hash__ = object.__hash__

    def __neg__(self):
        if self.value is not None:
            return self.writer.constant(-self.value)
        return self.writer.expr(ast.UnaryOp(ast.USub(), self.node))

    # ------------------------------------------------------------ methods and indexing

    def _method(self, name, *args, **kwargs):
        return self.writer.call(ast.Attribute(self.node, name), args, kwargs)

    def reshape(self, *shape):
        return self._method("reshape", *shape)

    def transpose(self, *axes):
        return self._method("transpose", *axes)

    def swapaxes(self, a, b):
        return self._method("swapaxes", a, b)

    @property
    def T(self):
        if self.transposed is not None:
            return self.transposed
        t = self.writer.expr(ast.Attribute(self.node, "T"))
        t.shape = None if self.shape is None else self.shape[::-1]
        t.dtype, t.transposed = self.dtype, self
        return t

    def sum(self, **kwargs):
        return self._method("sum", **kwargs)

    def max(self, **kwargs):
        return self._method("max", **kwargs)

    def min(self, **kwargs):
        return self._method("min", **kwargs)

    def squeeze(self, *axes):
        return self._method("squeeze", *axes)

    def astype(self, dtype):
        return self._method("astype", dtype)

    def copy(self):
        return self._method("copy")

    def __getitem__(self, index):
        return self.writer.expr(ast.Subscript(self.node, self.writer.index(index)))

    def __setitem__(self, index, value):
        raise NotWritable("a rule wrote into an array")

    # ------------------------------------------------------------ numpy's functions

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if kwargs.get("out") is not None or method == "at":       # np.add.at(x, ...)
            raise NotWritable("a rule wrote into an array")
        function = ast.Attribute(ast.Name("np"), ufunc.__name__)
        if method != "__call__":
            function = ast.Attribute(function, method)
        return self.writer.call(function, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func in WRITE_INTO_FIRST:            # the call's result is not the array written
            raise NotWritable(f"a rule wrote into an array (np.{func.__name__})")
        if func is np.where and isinstance(args[0], bool) and isinstance(args[2], Expr) and (
                not args[0]):
            return args[2]                      # np.where(False, c, x) is x: known now
        return self.writer.call(ast.Attribute(ast.Name("np"), func.__name__), args, kwargs)


WRITE_INTO_FIRST = (np.put_along_axis, np.put, np.place, np.putmask, np.copyto,
                    np.fill_diagonal)

_PYTHON = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.true_divide, ast.Pow: np.power, ast.MatMult: np.matmul,
           ast.BitAnd: np.bitwise_and, ast.BitOr: np.bitwise_or, ast.Eq: np.equal,
           ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
           ast.Gt: np.greater, ast.GtE: np.greater_equal}


def _value(x):
    """The number `x` is, if known while writing (a Python number, a known constant)."""
    if isinstance(x, Expr):
        return x.value
    if isinstance(x, (bool, int, float, np.generic)):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    return None


class Writer:
    """Writes one rule: makes its stand-ins and turns what they record into source text.

    `name_of(array, hint)` names an array the rule reads that is not a stand-in (an index
    array, a constant): generated code passes it in as an argument.
    """

    def __init__(self, name_of=None):
        self.name_of = name_of

    def array(self, name, shape=None, dtype=None):
        """A stand-in called `name` for an array of `shape` and `dtype`."""
        return Expr(ast.Name(name), self, tuple(shape) if shape is not None else None,
                    np.dtype(dtype) if dtype is not None else None)

    def constant(self, value):
        """A known number as a stand-in (0-d arrays keep their dtype, for exact arithmetic)."""
        value = value if isinstance(value, np.generic) else np.asarray(value)[()]
        return Expr(self.ast(value), self, (), getattr(value, "dtype", None), value)

    def expr(self, node):
        return Expr(node, self)

    def call(self, function, args, kwargs):
        """A call, written as numpy code is usually written: `keepdims=False` (numpy's
        default) left out, and one axis given as a number rather than a 1-tuple."""
        name = ast.unparse(function)
        args = [_one_axis(a) if k == 1 and name in AXIS_SECOND else a for k, a in enumerate(args)]
        kwargs = {k: _one_axis(v) if k == "axis" else v for k, v in kwargs.items()
                  if not (k == "keepdims" and v is False)}
        return self.expr(ast.Call(function, [self.ast(a) for a in args],
                                  [ast.keyword(k, self.ast(v)) for k, v in kwargs.items()]))

    # ------------------------------------------------------------ values as source

    def ast(self, value):
        """A value a rule used, as an expression."""
        if isinstance(value, Expr):
            return value.node
        if isinstance(value, (bool, type(None), type(Ellipsis))):
            return ast.Constant(value)
        if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
            return self._number(value)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return self._number(value[()])
        if isinstance(value, tuple):
            return ast.Tuple([self.ast(v) for v in value])
        if isinstance(value, list):
            return ast.List([self.ast(v) for v in value])
        if isinstance(value, slice):
            return ast.Slice(*(None if v is None else self.ast(v)
                               for v in (value.start, value.stop, value.step)))
        if isinstance(value, (np.dtype, type)) and np.dtype(value).kind in "biuf":
            return ast.Attribute(ast.Name("np"), np.dtype(value).name)
        if isinstance(value, np.ndarray) and self.name_of is not None:
            return ast.Name(self.name_of(value, "const"))
        raise NotWritable(f"cannot write {type(value).__name__} {value!r:.40} as source")

    def index(self, index):
        """An index (ints, slices, None, ..., arrays) as a subscript."""
        if isinstance(index, tuple):
            return ast.Tuple([self.ast(i) for i in index]) if index else ast.Tuple([])
        return self.ast(index)

    @staticmethod
    def _number(value):
        if isinstance(value, np.floating):       # the shortest digits that give it back
            value = float(str(value))            # in its own dtype (0.032258064 in float32)
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, float) and not np.isfinite(value):
            name = "nan" if np.isnan(value) else "inf"
            node = ast.Attribute(ast.Name("np"), name)
            return ast.UnaryOp(ast.USub(), node) if value < 0 else node
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            return ast.UnaryOp(ast.USub(), ast.Constant(-value))    # (-2.0) ** x, not -2.0 ** x
        return ast.Constant(value)


AXIS_SECOND = ("np.expand_dims", "np.squeeze")


def _one_axis(value):
    """(0,) as 0: the same axis argument, as it is usually written."""
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def write(results, fresh):
    """Source for `results` (a dict {name: Expr}): the statements that bind what is used more
    than once to a new name (from `fresh(hint)`), then each result's expression. Returns
    (statements, {name: expression text})."""
    uses = {}

    def count(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr) and not isinstance(child, (ast.Name, ast.Constant)):
                uses[id(child)] = uses.get(id(child), 0) + 1
                if uses[id(child)] == 1:
                    count(child)

    roots = [e.node if isinstance(e, Expr) else Writer().ast(e) for e in results.values()]
    for root in roots:
        count(ast.Expression(root))
    statements, named = [], {}

    def bind(node):
        """`node` with every subexpression used more than once replaced by its name."""
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, field, [bind_child(v) for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, bind_child(value))
        return node

    def bind_child(child):
        if not isinstance(child, ast.expr) or isinstance(child, (ast.Name, ast.Constant)):
            return bind(child) if isinstance(child, ast.AST) else child
        if uses.get(id(child), 0) > 1 and not _cheap(child):
            if id(child) not in named:
                expression = _unparse(bind(child))
                named[id(child)] = name = fresh("t")
                statements.append(f"{name} = {expression}")
            return ast.Name(named[id(child)])
        return bind(child)

    texts = {}
    for key, root in zip(results, roots):
        texts[key] = _unparse(bind_child(root) if isinstance(root, ast.expr) else root)
    return statements, texts


def _unparse(node):
    """Source of `node`, with a negative literal exponent written `x ** -0.5`, as people
    write it (ast.unparse writes `x ** (-0.5)`; Python reads both the same way)."""
    return re.sub(r"\*\* \((-[0-9.e+-]+)\)", r"** \1", ast.unparse(node))


def _cheap(node):
    """Worth writing twice rather than naming: a name, a number, an attribute of them."""
    return isinstance(node, (ast.Name, ast.Constant, ast.Attribute)) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))


def gradient_texts(node):
    """{input name: the source of its gradient rule} for the inputs of `node` that need a
    gradient, in the names of the rule's parameters (`g * (1 - out * out)` for tanh), for
    drawings. Rules a stand-in cannot write down are left out."""
    from .graph import rule_arguments
    op, w = node.op, Writer(name_of=lambda array, hint: "index" if hint == "const" else hint)
    names = [f"{op.inputs[0]}[{k}]" for k in range(len(node.parents))] if op.variadic else list(
        op.inputs)
    inputs = [w.constant(a) if a is not None and a.ndim == 0 else w.array(n, s, d)
              for n, a, s, d in zip(names, node.inputs, node.shapes, node.dtypes)]
    out = w.array("out", node.out_shape, node.out_dtype)
    extras = {name: w.array(name) for name in op.extras}
    texts = {}
    for i, (name, parent) in enumerate(zip(names, node.parents)):
        if parent is None:
            continue
        rule = op.grads[0 if op.variadic else i]
        try:
            texts[name] = rule_text(rule, w.array("g", node.out_shape, node.out_dtype),
                                    *rule_arguments(node, i, inputs, out, extras))
        except NotWritable:
            pass
    return texts


def rule_text(function, *args, **kwargs):
    """The source of one rule's result: `function` run on `args`, stand-ins among them
    (made with a `Writer`). Statements for shared parts come first, joined by '; '."""
    result = function(*args, **kwargs)
    counter = iter(range(1, 1000))
    statements, texts = write({"result": result}, lambda hint: f"{hint}{next(counter)}")
    return "; ".join(statements + [texts["result"]])
