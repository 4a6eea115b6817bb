"""Tensor: a numpy array, plus the node that records how it was made.

Every differentiable method ends in `apply(op, *inputs, **attrs)`: run the op's forward on
the input arrays and, if recording is on and some input requires grad, record a Node for the
backward pass. Methods that are not primitives in the op table (var, softmax, unsqueeze...)
are composites of ones that are, and need no backward of their own.
"""
import math
import weakref

import numpy as np

from . import ops
from .arrays import (DEFAULT_FLOAT, DEFAULT_INT, can_hold, index_steps, normalize_dim,
                     result_float, result_type)
from .grad_mode import _anomaly, _grad_enabled, check_finite, creation_site
from .graph import Node, backpropagate, leaf_node
from .versions import check_unshared, memory_owner, note_inplace_change, note_sharing
from .checks import NUMBER_KINDS, as_dtype, index_range, int_arg, nonzero_divisor, shown
from .devices import CPU, device_arg, is_device
from .movement import Movement
from .reductions import Reductions

named_tensors = weakref.WeakSet()   # the live tensors that have a name: drawings label the
                                    # inputs that need no gradient (a graph keeps only their
                                    # arrays) and show the values of named intermediates


def as_array(data, dtype=None, op="tensor"):
    """`data` (a Tensor, array, number or nested list of numbers) as a new numpy array.

    Without a dtype, Python floats become float32 and Python ints int64, as in PyTorch;
    numpy arrays keep their dtype. Strings, objects and complex numbers are refused.
    """
    if dtype is not None:
        dtype = as_dtype(dtype, op)
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, (np.ndarray, np.generic)):
        array = np.array(data, dtype=dtype)
    else:
        try:
            array = np.array(data, dtype=dtype)
        except (ValueError, TypeError) as e:       # ragged lists, or strings to a number dtype
            raise _like(e, f"{op}: cannot make a tensor from {type(data).__name__}: "
                           f"{e}") from None
        if dtype is None and array.dtype.kind == "f":
            array = array.astype(DEFAULT_FLOAT)
    if array.dtype.kind not in NUMBER_KINDS:
        raise TypeError(f"{op}: cannot make a tensor from {type(data).__name__} holding "
                        f"{array.dtype} values; expected numbers")
    return array


def values_of(x):
    """The numpy array of a Tensor, not copied, even if it requires grad (for reading inside
    tensorgrad, which never writes to it), or `np.asarray(x)` of anything else."""
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def apply(op, *inputs, **attrs):
    """Run `op` forward on the inputs' arrays; record a node if any input requires grad.

    Returns the output as a Tensor; for an op whose forward also computes values on the
    side (`op.extras`, var's x - mean), (the Tensor, {name: value}), for the callers that
    use them too (batchnorm's running statistics take the batch mean and variance there).
    """
    arrays = tuple([t._data for t in inputs])
    try:
        out = op.forward(*arrays, **attrs)
    except (ValueError, IndexError, TypeError) as e:
        raise _explain(op, arrays, e) from None
    extras = None
    if op.extras:
        out, *values = out
        extras = dict(zip(op.extras, values))
    if type(out) is not np.ndarray:
        out = np.asarray(out)                              # numpy gives 0-d results as scalars
    node = None
    if _grad_enabled[0]:
        parents = tuple([t._node for t in inputs])
        if any(parents):                                   # some input requires grad
            node = Node(op, attrs, arrays, out, extras, parents)
    if _anomaly[-1]:
        site = creation_site()
        check_finite(op.name, "forward", arrays, out, site)
        if node is not None:
            node.site = site
    result = Tensor._wrap(out, node)
    if out.base is not None:                               # a view: of an input?
        _note_views(result, inputs)
    return result if extras is None else (result, extras)


def _note_views(result, inputs):
    """Record that `result` shares memory with the inputs whose memory it views."""
    owner = memory_owner(result._data)
    sharing = [t for t in inputs if memory_owner(t._data) is owner]
    if sharing:
        note_sharing(owner, result, *sharing)


def _explain(op, arrays, error):
    """The same exception, its message prefixed with the op and its operands' shapes."""
    message = str(error)
    if message.startswith(op.name + ":"):
        return error
    shapes = " and ".join(str(a.shape) for a in arrays)
    if "broadcast" in message and len(arrays) == 2:
        message = ("shapes cannot be broadcast together (aligned from the right, each pair "
                   "of sizes must match or one be 1)")
    return _like(error, f"{op.name}: operand shapes {shapes}: {message}")


def _like(error, message):
    """A new exception of `error`'s built-in kind (numpy's subclasses take other arguments)."""
    kind = next(k for k in (IndexError, ValueError, TypeError) if isinstance(error, k))
    return kind(message)


def _operands(op, a, b):
    """`a` and `b` as two Tensors of one dtype, by PyTorch's rules (`result_type`).

    Python numbers are "weak": they take the tensor's dtype (0.1 * float32 stays float32),
    except that a float number with an integer tensor gives the default float dtype. 0-d
    tensors are weak against tensors with dimensions, in the same way. Division makes
    integers floats (the default float dtype), after that promotion.
    """
    if op in _REFUSED:
        _REFUSED[op](a, b)          # (before a Python bool takes the tensor's dtype)
    if not isinstance(a, Tensor):
        a = _constant(op, a, b)
    if not isinstance(b, Tensor):
        b = _constant(op, b, a)
    da, db = a._data.dtype, b._data.dtype
    if da is not db and da != db:
        dtype = tensors_result_type((a, b))
        a, b = a._cast(dtype), b._cast(dtype)
    if op is ops.Div and a._data.dtype.kind != "f":
        a, b = a._cast(DEFAULT_FLOAT), b._cast(DEFAULT_FLOAT)
    return a, b


def _dtype_of(x):
    """The dtype of an operand, or object for what is not a number (refused later)."""
    if isinstance(x, Tensor):
        return x._data.dtype
    return np.asarray(x).dtype if isinstance(x, (bool, int, float, np.generic, np.ndarray, list,
                                                 tuple)) else np.dtype(object)


def _no_bool_subtraction(a, b):
    if _dtype_of(a).kind == "b" or _dtype_of(b).kind == "b":
        raise TypeError("sub: subtraction with a bool tensor is not supported (as in PyTorch); "
                        "to invert a mask use ~mask")


def _no_bool_power(a, b):
    if _dtype_of(a).kind == "b" and isinstance(b, Tensor) and b._data.dtype.kind == "b":
        raise TypeError("pow: a bool tensor to the power of a bool tensor is not supported (as "
                        "in PyTorch); convert one of them with .long() or .float()")


def _same_dtype_matmul(a, b):
    da, db = _dtype_of(a), _dtype_of(b)
    if da.kind not in NUMBER_KINDS or db.kind not in NUMBER_KINDS:
        return                                          # not numbers: refused later
    if da != db:
        raise TypeError(f"matmul: {da} @ {db}: the operands need the same dtype (as in "
                        "PyTorch); convert one with .to(dtype)")
    if da.kind == "b":
        raise TypeError("matmul: bool tensors cannot be multiplied (as in PyTorch); convert "
                        "with .float()")


def _no_bool_remainder(a, b):
    if _dtype_of(a).kind == "b" and _dtype_of(b).kind == "b":
        raise TypeError("remainder: not defined for two bool operands (as in PyTorch); "
                        "convert one of them with .long()")


# Binary ops PyTorch refuses for some dtypes, where numpy would answer: refused here too.
_REFUSED = {ops.Sub: _no_bool_subtraction, ops.Pow: _no_bool_power,
            ops.MatMul: _same_dtype_matmul, ops.Remainder: _no_bool_remainder}


def tensors_result_type(tensors):
    """The dtype an op on these tensors gives: `arrays.result_type`, with 0-d tensors weak."""
    return result_type([t._data.dtype for t in tensors if t._data.ndim],
                       [t._data.dtype for t in tensors if not t._data.ndim])


def _constant(op, value, other):
    """A non-tensor operand of a binary op, as a Tensor that needs no gradient."""
    if isinstance(value, (bool, int, float, np.generic)):
        if isinstance(value, (float, np.floating)):
            dtype = result_float(other._data.dtype)
        elif isinstance(value, (bool, np.bool_)):
            dtype = other._data.dtype
        else:
            dtype = other._data.dtype if other._data.dtype.kind != "b" else DEFAULT_INT
        return Tensor._wrap(np.asarray(value, dtype), None)
    if isinstance(value, np.ndarray):
        return Tensor._wrap(value, None)
    if isinstance(value, (list, tuple)):
        return Tensor._wrap(as_array(value, op=op.name), None)
    raise TypeError(f"{op.name}: unsupported operand of type {type(value).__name__} "
                    f"({value!r:.40}); expected a Tensor, a numpy array or a number")


def unary(op, t):
    """`op` applied to the tensor `t`: refused for the dtype kinds the op does not take (as
    PyTorch refuses neg and abs of bools); integers made the default float first for the
    ops that say `floats` (exp, log ...)."""
    kind = t._data.dtype.kind
    if kind not in op.kinds:
        raise TypeError(f"{op.name}: not defined for {t._data.dtype} tensors (as in PyTorch); "
                        "convert with .long() or .float() first")
    return apply(op, t._cast(DEFAULT_FLOAT) if op.floats and kind != "f" else t)


def _binary(op, a, b):
    a, b = _operands(op, a, b)
    if op is ops.Remainder:                 # the one binary op that divides integers
        nonzero_divisor(b._data, op.name)
    return apply(op, a, b)


def _as_index(index):
    """A user's index with Tensors, ranges and lists turned into numpy arrays, checked."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item._data
        elif isinstance(item, range):
            item = np.arange(item.start, item.stop, item.step, dtype=DEFAULT_INT)
        elif isinstance(item, list):
            item = np.asarray([i._data if isinstance(i, Tensor) else i for i in item])
            if item.size == 0:
                item = item.astype(DEFAULT_INT)
        if isinstance(item, np.ndarray) and item.dtype.kind not in "biu":
            raise IndexError(f"index: tensors used as indices must hold integers or booleans, "
                             f"not {item.dtype}")
        out.append(item)
    return tuple(out) if isinstance(index, tuple) else out[0]


_SYMBOLS = {ops.Add: "+", ops.Sub: "-", ops.Mul: "*", ops.Div: "/"}


def _set_steps(x, steps, value):
    """A copy of `x` with `value` written at the index `steps` (see arrays.index_steps), in
    the graph: x[first][then] = value is x[first] = (x[first] with [then] = value)."""
    if len(steps) == 1:
        return apply(ops.SetItem, x, value, index=steps[0])
    first, then = steps
    part = apply(ops.GetItem, x, index=first)
    return apply(ops.SetItem, x, apply(ops.SetItem, part, value, index=then), index=first)


def where(condition, a, b):
    """`a` where `condition` is True, `b` elsewhere (torch.where): `a` and `b` tensors or
    numbers, promoted to one dtype as for `a + b`; the three shapes broadcast together."""
    condition = _bool_mask(condition, "where", "condition")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor(a)                               # two numbers: the first sets the dtype
    a, b = _operands(ops.Where, a, b)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: the shapes of condition {condition.shape}, input {a.shape} "
                         f"and other {b.shape} cannot be broadcast together") from None
    return apply(ops.Where, a, b, condition=condition)


def _bool_mask(mask, op, what="mask"):
    """The bool array of a mask (a Tensor or numpy array of bools): PyTorch refuses masks
    of other dtypes rather than read them as truth values, and so does tensorgrad."""
    array = mask._data if isinstance(mask, Tensor) else mask
    if not isinstance(array, np.ndarray) or array.dtype != np.bool_:
        got = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else shown(mask)
        raise TypeError(f"{op}: {what} must be a bool tensor (such as x > 0), got {got}")
    return array


class Tensor(Reductions, Movement):
    """An n-dimensional array of numbers that records the ops applied to it.

    Its values are a numpy array (`numpy()`). A tensor `requires_grad` when it has a node
    in the graph: leaves you mark (parameters), and every result of an op on such a tensor.
    After `loss.backward()`, leaves (and tensors that called `retain_grad()`) hold their
    gradient in `.grad`, a Tensor of the same shape.

    Its methods are here, but for two groups in files of their own, as mixins: the
    reductions and ops along a dim (reductions.py: sum, mean, var, max, softmax ...) and
    the movement ops (movement.py: reshape, view, permute, expand, split ...).
    """

    __slots__ = ("_data", "_node", "grad", "_name", "_untracked", "__weakref__")

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        self._data = as_array(data, dtype)
        self._node = None
        self.grad = None
        self._name = None
        self._untracked = False     # True for `.data`: its in-place changes go unnoted
        if requires_grad:
            self.requires_grad = True
        if name is not None:
            self.name = name

    @classmethod
    def _wrap(cls, array, node):
        """A tensor around an existing array, without copying or checking (engine use)."""
        t = object.__new__(cls)
        t._data, t._node, t.grad, t._name, t._untracked = array, node, None, None, False
        return t

    def _apply(self, op, *others, **attrs):
        """`apply(op, self, *others, **attrs)`: how the mixins (reductions.py, movement.py)
        apply ops without importing this module."""
        return apply(op, self, *others, **attrs)

    # ------------------------------------------------------------ attributes

    @property
    def data(self):
        """This tensor's values as a tensor outside the graph, sharing the memory (PyTorch's
        `.data`): `p.data += -lr * p.grad` updates `p`.

        Unlike `detach()`, in-place changes made through it are not noted on the version
        clock (as in PyTorch): backward cannot tell that a value it needs was changed this
        way. Use it to update parameters, not values a pending backward reads.
        """
        note_sharing(self._data)
        t = Tensor._wrap(self._data, None)
        t._untracked = True
        return t

    @data.setter
    def data(self, value):
        """Replace the values by those of the tensor `value` (its shape and dtype too; the
        memory is shared), outside the graph."""
        if not isinstance(value, Tensor):
            raise TypeError(f"data: must be set to a Tensor, not {type(value).__name__}")
        if self._node is not None and value._data.dtype.kind != "f":
            raise RuntimeError(f"data: a tensor that requires grad holds floating point values, "
                            f"not {value.dtype}")
        note_sharing(value._data)
        self._replace_data(value._data, "data")

    def _replace_data(self, array, caller):
        """Make `array` the values. A leaf that requires grad gets a new node when the shape
        or dtype changes: the graphs recorded before keep the old one, which describes the
        values they read (and whose gradient `.grad` refuses if its shape is no longer the
        tensor's). The values of a tensor computed by an op keep their shape and dtype."""
        old, node = self._data, self._node
        changed = node is not None and (array.shape != old.shape or array.dtype != old.dtype)
        if changed and node.op is not None:
            raise RuntimeError(f"{caller}: cannot change the shape or dtype of a tensor "
                               f"computed by an op ({old.shape} {old.dtype} to {array.shape} "
                               f"{array.dtype}); detach() it first")
        self._data = array
        if changed:
            self._node = leaf_node(self)

    @property
    def name(self):
        """An optional name (a string), shown by `repr` and in drawings of the graph.

        Setting it also names the tensor's graph node, so a drawing of anything computed
        from this tensor labels it (`tensorgrad.viz`).
        """
        return self._name

    @name.setter
    def name(self, value):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"name: expected a string or None, got {type(value).__name__}")
        self._name = value
        if value is not None:
            named_tensors.add(self)
        if self._node is not None:
            self._node.name = value

    shape = property(lambda self: self._data.shape, doc="The size of each dimension (a tuple).")
    dtype = property(lambda self: self._data.dtype, doc="The numpy dtype of the values.")
    ndim = property(lambda self: self._data.ndim, doc="The number of dimensions.")

    def size(self, dim=None):
        """The shape, or the size of dimension `dim`."""
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim, "size")]

    def dim(self):
        """The number of dimensions."""
        return self._data.ndim

    def numel(self):
        """The number of elements."""
        return self._data.size

    nelement = numel

    @property
    def requires_grad(self):
        """Whether backward computes a gradient for this tensor (it has a graph node)."""
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and self._node is None:
            if self._data.dtype.kind != "f":
                raise RuntimeError(f"requires_grad: only floating-point tensors can require "
                                   f"gradients; this one is {self.dtype}")
            self._node = leaf_node(self)
        elif not flag and self._node is not None:
            if self._node.op is not None:
                raise RuntimeError("requires_grad: cannot turn off on a tensor computed by an "
                                   "op; use .detach() for a copy outside the graph")
            self._node = None

    def requires_grad_(self, flag=True):
        """Set `requires_grad` in place and return the tensor."""
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self):
        """True unless the tensor was computed by a recorded op."""
        return self._node is None or self._node.op is None

    @property
    def grad_fn(self):
        """The graph node that computed this tensor, or None for leaves."""
        return None if self.is_leaf else self._node

    def retain_grad(self):
        """Keep this intermediate's gradient in `.grad` after backward (leaves always do)."""
        if self._node is None:
            raise RuntimeError("retain_grad: this tensor does not require grad, so it gets none")
        if self._node.op is not None:
            self._node.tensor = weakref.ref(self)

    @property
    def retains_grad(self):
        """True if `retain_grad()` was called on this (non-leaf) tensor."""
        return not self.is_leaf and self._node.tensor is not None

    # ------------------------------------------------------------ conversion

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor has a single value; this one "
                             f"has shape {self.shape}")
        return self._data.item()

    def tolist(self):
        """The values as (nested) Python lists."""
        return self._data.tolist()

    def numpy(self):
        """The underlying numpy array (shared, not copied).

        For a tensor that requires grad it is a read-only view (PyTorch refuses outright): a
        write through it would change a value the backward pass may need without it
        knowing. `.detach().numpy()` gives a writable array, as in PyTorch.
        """
        note_sharing(self._data)
        if self._node is None:
            return self._data
        view = self._data.view()
        view.flags.writeable = False
        return view

    def detach(self):
        """A tensor sharing this one's values (the same memory), outside the graph."""
        t = Tensor._wrap(self._data, None)
        note_sharing(self._data, self, t)
        return t

    def clone(self):
        """A copy of the values that stays in the graph."""
        return apply(ops.Copy, self)

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
        """The tensor in another dtype: `to(dtype)`, `to(device)`, `to(device, dtype)`,
        `to(other)` (other's dtype), or by keyword. The device must be the CPU ("cpu",
        `tensorgrad.device("cpu")`): tensorgrad has no other. Itself if nothing changes
        (unless `copy`); float casts stay in the graph."""
        if len(args) > 2:
            raise TypeError(f"to: expected to(dtype), to(device) or to(device, dtype), got "
                            f"{len(args)} arguments")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg._data.dtype
            elif is_device(arg):
                device = arg
            else:
                dtype = arg
        device_arg(device, "to")
        out = self._cast(dtype)
        return out.clone() if copy and out is self else out

    def _cast(self, dtype):
        """The tensor in `dtype` (itself if already so, or if None); float casts stay in
        the graph."""
        if dtype is None or dtype is self._data.dtype:
            return self
        dtype = as_dtype(dtype, "to")
        if self._data.dtype == dtype:
            return self
        if self._node is not None and dtype.kind == "f":
            return apply(ops.Cast, self, dtype=dtype)
        return Tensor._wrap(self._data.astype(dtype), None)

    def cpu(self):
        """The tensor itself: it is on the CPU, where tensorgrad computes."""
        return self

    def cuda(self, device=None):
        """Refused: tensorgrad runs on the CPU only."""
        device_arg("cuda", "cuda")

    device = property(lambda self: CPU, doc="Where the values live: always the CPU.")
    is_cuda = property(lambda self: False, doc="False: tensorgrad runs on the CPU only.")

    def float(self):
        """The tensor as float32."""
        return self._cast(np.float32)

    def double(self):
        """The tensor as float64."""
        return self._cast(np.float64)

    def long(self):
        """The tensor as int64 (outside the graph)."""
        return self._cast(np.int64)

    def int(self):
        """The tensor as int32 (outside the graph)."""
        return self._cast(np.int32)

    def bool(self):
        """The tensor as bools: True where an element is not zero."""
        return self._cast(np.bool_)

    def contiguous(self):
        """The tensor itself: numpy handles memory layout."""
        return self

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self.numpy() if not copy else self._data.copy()

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len: a 0-d tensor has no length")
        return len(self._data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is "
                               "ambiguous; use .all() or .any()")
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError(f"index: only a one-element integer tensor can be used as an "
                            f"index, not a {self.dtype} tensor of shape {self.shape}")
        return int(self._data)

    def __format__(self, spec):
        """A 0-d tensor formats as its number (`f"{loss:.4f}"`, `f"{loss}"`), as in PyTorch;
        other tensors take no format spec."""
        if self._data.ndim == 0:
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"format: a format spec ({spec!r}) applies to a 0-d tensor, not "
                            f"to one of shape {self.shape}; format t.item() or t.tolist()")
        return str(self)

    def __repr__(self):
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extras = [body]
        if self._data.dtype not in (DEFAULT_FLOAT, DEFAULT_INT, np.bool_):
            extras.append(f"dtype={self._data.dtype}")
        if self.name:
            extras.append(f"name={self.name!r}")
        if self._node is not None:
            extras.append("requires_grad=True" if self.is_leaf
                          else f"grad_fn=<{self._node.op.name}>")
        return "tensor(" + ", ".join(extras) + ")"

    __hash__ = object.__hash__

    # ------------------------------------------------------------ backward

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor with respect to every leaf it depends on.

        For a single-element tensor (a loss) `gradient` defaults to 1. Gradients add up in
        `.grad` across calls; set `p.grad = None` (or call `zero_grad()`) to reset them.
        `retain_graph=True` keeps the graph for another backward. `create_graph=True`
        records the backward pass in the graph, so the gradients (tensors in the graph
        themselves) can be differentiated again; it keeps the graph unless
        `retain_graph=False`. `inputs` (tensors) limits the gradients to those tensors'
        `.grad`.
        """
        root = dict([self._initial_grad(gradient, "backward", create_graph)])
        retain = create_graph if retain_graph is None else bool(retain_graph)
        if not create_graph and inputs is None:
            backpropagate(root, retain)
            return
        from . import higher      # (it builds on Tensor: imported on first use)
        higher.backward_into(root, retain, create_graph, inputs, "backward")

    def _initial_grad(self, gradient, name, keep_tensor=False):
        """(this tensor's node, the gradient backward starts from), checked; a gradient
        given as a tensor stays one with `keep_tensor` (a recorded backward pass)."""
        if self._node is None:
            raise RuntimeError(f"{name}: this tensor does not require grad: no tensor it "
                               "was computed from has requires_grad=True (or it was "
                               "computed under no_grad())")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"{name}: the tensor has shape {self.shape}; without a "
                                   "gradient argument backward() needs a single element "
                                   "(a loss); pass gradient= of the same shape otherwise")
            return self._node, np.ones_like(self._data)
        if keep_tensor and isinstance(gradient, Tensor):
            g = gradient.to(self.dtype)
        else:
            g = np.asarray(as_array(gradient), dtype=self._data.dtype)
        if g.shape != self.shape:
            raise ValueError(f"{name}: gradient has shape {g.shape} but the tensor has shape "
                             f"{self.shape}")
        return self._node, g

    # ------------------------------------------------------------ elementwise

    def __add__(self, other):
        return _binary(ops.Add, self, other)

    def __radd__(self, other):
        return _binary(ops.Add, other, self)

    def __sub__(self, other):
        return _binary(ops.Sub, self, other)

    def __rsub__(self, other):
        return _binary(ops.Sub, other, self)

    def __mul__(self, other):
        return _binary(ops.Mul, self, other)

    def __rmul__(self, other):
        return _binary(ops.Mul, other, self)

    def __truediv__(self, other):
        return _binary(ops.Div, self, other)

    def __rtruediv__(self, other):
        return _binary(ops.Div, other, self)

    def __pow__(self, other):
        out = _binary(ops.Pow, self, other)
        if self._data.dtype.kind == _dtype_of(other).kind == "b" != out._data.dtype.kind:
            return out._cast(self._data.dtype)      # bool ** True: numpy says int8, PyTorch bool
        return out

    def __rpow__(self, other):
        return _binary(ops.Pow, other, self)

    def __matmul__(self, other):
        return _binary(ops.MatMul, self, other)

    def __rmatmul__(self, other):
        return _binary(ops.MatMul, other, self)

    def __mod__(self, other):
        return _binary(ops.Remainder, self, other)

    def __rmod__(self, other):
        return _binary(ops.Remainder, other, self)

    def remainder(self, other):
        """self % other, with the sign of `other` (Python's convention, as PyTorch)."""
        return _binary(ops.Remainder, self, other)

    def __neg__(self):
        return unary(ops.Neg, self)

    def __abs__(self):
        return self.abs()

    def __invert__(self):
        """~mask: the logical not of a bool tensor (bitwise not of an integer tensor)."""
        return Tensor._wrap(np.invert(self._data), None)

    def logical_not(self):
        """A bool tensor: True where the element is zero (False)."""
        return Tensor._wrap(np.logical_not(self._data), None)

    def _floating(self):
        """Integer tensors as the default float dtype (for exp, log, /, ...)."""
        return self if self._data.dtype.kind == "f" else self._cast(DEFAULT_FLOAT)

    def _float_only(self, name):
        """The tensor itself if floating point; PyTorch refuses integer and bool tensors for
        `name` (mean, var, softmax ...) and so does tensorgrad, rather than pick a dtype."""
        if self._data.dtype.kind != "f":
            raise TypeError(f"{name}: needs a floating-point tensor, got {self.dtype} (PyTorch "
                            "refuses it too); convert with .float() first")
        return self

    def _not_bool(self, name):
        if self._data.dtype.kind == "b":
            raise TypeError(f"{name}: not defined for bool tensors (as in PyTorch); convert "
                            "with .long() or .float() first")
        return self

    def exp(self):
        """e to the power of each element."""
        return unary(ops.Exp, self)

    def log(self):
        """Natural logarithm of each element."""
        return unary(ops.Log, self)

    def log10(self):
        """Base-10 logarithm of each element (a composite: log(x) / log(10))."""
        return self.log() * (1 / math.log(10))

    def tanh(self):
        """Hyperbolic tangent of each element."""
        return unary(ops.Tanh, self)

    def sqrt(self):
        """Square root of each element."""
        return unary(ops.Sqrt, self)

    def abs(self):
        """Absolute value of each element."""
        return unary(ops.Abs, self)

    def sigmoid(self):
        """1 / (1 + exp(-x)) for each element, computed without overflow."""
        return unary(ops.Sigmoid, self)

    def relu(self):
        """max(x, 0) for each element."""
        return unary(ops.Relu, self)

    def pow(self, exponent):
        """Each element to the power `exponent` (a number or a tensor)."""
        return self ** exponent

    def square(self):
        """Each element squared (bools become int64, as in PyTorch)."""
        return self * self if self._data.dtype.kind != "b" else self ** 2

    # ------------------------------------------------------------ selection

    def where(self, condition, other):
        """This tensor where `condition` holds, `other` elsewhere (`torch.where(condition,
        self, other)`)."""
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        """A copy with `value` (a number or a 0-d tensor) wherever the bool `mask`, which
        broadcasts with the tensor, is True: attention's `wei.masked_fill(tril == 0,
        float('-inf'))`. The gradient does not reach the filled elements."""
        mask = _bool_mask(mask, "masked_fill")
        try:
            np.broadcast_shapes(mask.shape, self.shape)
        except ValueError:
            raise ValueError(f"masked_fill: the mask of shape {mask.shape} does not "
                             f"broadcast with the tensor's shape {self.shape}") from None
        return apply(ops.Where, self._fill_value(value, "masked_fill"), self, condition=mask)

    def _fill_value(self, value, op):
        """`value` as a 0-d tensor of this tensor's dtype (one that requires grad keeps its
        gradient path); refused if it is not one number or the dtype cannot hold it."""
        if isinstance(value, Tensor):
            if value.ndim:
                raise ValueError(f"{op}: value must be a number or a 0-d tensor, got a "
                                 f"tensor of shape {value.shape}")
            return value._cast(self._data.dtype)
        if not isinstance(value, (bool, int, float, np.generic)):
            raise TypeError(f"{op}: value must be a number or a 0-d tensor, got "
                            f"{shown(value)}")
        if self._data.dtype.kind != "f" and not math.isfinite(value):
            raise ValueError(f"{op}: value {value} cannot be held by a tensor of dtype "
                             f"{self.dtype}")
        return Tensor(value, dtype=self._data.dtype)

    def tril(self, diagonal=0):
        """The lower triangle of the last two dimensions: the elements on and below
        `diagonal` (0 the main one, 1 the one above), zeros above (a causal mask)."""
        return apply(ops.Tril, self._matrices("tril"), diagonal=int_arg(diagonal, "tril",
                                                                         "diagonal"))

    def triu(self, diagonal=0):
        """The upper triangle of the last two dimensions: on and above `diagonal`."""
        return apply(ops.Triu, self._matrices("triu"), diagonal=int_arg(diagonal, "triu",
                                                                         "diagonal"))

    def _matrices(self, op):
        if self.ndim < 2:
            raise ValueError(f"{op}: needs a tensor of at least 2 dimensions (a matrix, or a "
                             f"batch of them), got shape {self.shape}")
        return self

    # ------------------------------------------------------------ comparisons (no gradient)

    def _compare(self, other, ufunc):
        b = other._data if isinstance(other, Tensor) else other
        try:
            return Tensor._wrap(np.asarray(ufunc(self._data, b)), None)
        except ValueError as e:
            raise ValueError(f"{ufunc.__name__}: operand shapes {self.shape} and "
                             f"{np.shape(b)}: {e}") from None

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def all(self):
        """A bool tensor: whether every element is true (non-zero)."""
        return Tensor._wrap(np.asarray(np.all(self._data)), None)

    def any(self):
        """A bool tensor: whether any element is true (non-zero)."""
        return Tensor._wrap(np.asarray(np.any(self._data)), None)

    # ------------------------------------------------------------ indexing

    def __getitem__(self, index):
        out = self
        for step in index_steps(_as_index(index)):       # PyTorch's reading of the index
            out = apply(ops.GetItem, out, index=step)
        return out

    def __setitem__(self, index, value):
        steps = index_steps(_as_index(index))
        if index is False:           # y[False] = v: PyTorch writes nothing and records nothing
            return
        if self._records_inplace(value, "setitem"):
            value = value if isinstance(value, Tensor) else _constant(ops.SetItem, value, self)
            self._rebase(_set_steps(self, steps, value._cast(self.dtype)))
            return
        self._note_change()
        target = self._data
        try:
            for step in steps[:-1]:
                target = target[step]                     # a basic index: a view
            target[steps[-1]] = value._data if isinstance(value, Tensor) else value
        except (IndexError, ValueError, TypeError) as e:
            raise _like(e, f"setitem: on a tensor of shape {self.shape}: {e}") from None

    def gather(self, dim, index):
        """out[i][j] = self[i][index[i][j]] for dim=1 (and so on): the elements `index` (an
        int64 tensor with as many dimensions) picks along `dim`. Differentiable: repeated
        picks add up their gradients."""
        axis = normalize_dim(dim, self.ndim, "gather")
        index = index._data if isinstance(index, Tensor) else np.asarray(index)
        if index.dtype != np.int64 or index.ndim != self.ndim:
            raise TypeError(f"gather: index must be an int64 tensor with {self.ndim} "
                            f"dimensions, got {index.dtype} of shape {index.shape}")
        if any(n > m for d, (n, m) in enumerate(zip(index.shape, self.shape)) if d != axis):
            raise ValueError(f"gather: index of shape {index.shape} is larger than the "
                             f"tensor's {self.shape} outside dim {dim}")
        index_range(index, self.shape[axis], "gather", "index")
        grids = list(np.indices(index.shape, sparse=True))
        grids[axis] = index
        return apply(ops.GetItem, self, index=tuple(grids))

    # ------------------------------------------------------------ in place

    def _records_inplace(self, other, name):
        """Whether an in-place change must be recorded in the graph (checking it is allowed).

        Outside no_grad, changing a leaf that requires grad is refused: its gradient would
        describe a value it no longer holds. Any other tensor in the graph gets a new node and
        a new array, while ops that already read the old value keep their node (see
        autograd.py); refused, too, when other tensors share the old array (they would keep
        the old values). A tensor that is not floating point holds no gradient: its values
        are written directly.
        """
        other_grad = isinstance(other, Tensor) and other._node is not None
        if not _grad_enabled[0] or (self._node is None and not other_grad):
            return False
        if self._node is not None and self._node.op is None:
            raise RuntimeError(f"{name}: in-place change of a leaf tensor that requires grad; "
                               "update parameters inside `with tensorgrad.no_grad():` or "
                               "through `.data`")
        if self._data.dtype.kind != "f":
            return False
        check_unshared(self, name)
        return True

    def _note_change(self):
        """Note an in-place change of the values on the version clock (unless made through
        `.data`, as in PyTorch)."""
        if not self._untracked:
            note_inplace_change(self._data)

    def _rebase(self, result):
        """Make this tensor object hold `result` (value and graph node) after an in-place op.

        A retained gradient moves with the tensor to its new value: the old node stops
        delivering to `.grad`, or the tensor would also receive the old value's gradient.
        """
        retained = self._node is not None and self._node.tensor is not None
        if retained:
            self._node.tensor = None
        self._data, self._node = result._data, result._node
        self._node.name = self._name
        if retained:
            self._node.tensor = weakref.ref(self)

    def _inplace(self, op, ufunc, other):
        name = op.name + "_"
        a, b = _operands(op, self, other)
        if not can_hold(self._data.dtype, a._data.dtype):
            raise TypeError(f"{name}: the result is {a.dtype}, which a tensor of dtype "
                            f"{self.dtype} cannot hold in place; write it out of place "
                            f"(x = x {_SYMBOLS[op]} y)")
        if self._records_inplace(other, name):
            self._rebase(apply(op, a, b)._cast(self.dtype))     # in place keeps the dtype
            return self
        b = other._data if isinstance(other, Tensor) else other
        self._note_change()
        try:
            ufunc(self._data, b, out=self._data)
        except (ValueError, TypeError) as e:
            raise _like(e, f"{op.name}_: cannot update a {self.dtype} tensor of shape "
                          f"{self.shape} in place with {np.shape(b)}: {e}") from None
        return self

    def __iadd__(self, other):
        return self._inplace(ops.Add, np.add, other)

    def __isub__(self, other):
        return self._inplace(ops.Sub, np.subtract, other)

    def __imul__(self, other):
        return self._inplace(ops.Mul, np.multiply, other)

    def __itruediv__(self, other):
        return self._inplace(ops.Div, np.true_divide, other)

    def fill_(self, value):
        """Set every element to `value`, in place."""
        self[...] = value
        return self

    def zero_(self):
        """Set every element to zero, in place."""
        return self.fill_(0)

    def masked_fill_(self, mask, value):
        """`masked_fill` in place: the mask must broadcast to the tensor's own shape."""
        mask = _bool_mask(mask, "masked_fill_")
        if np.broadcast_shapes(mask.shape, self.shape) != self.shape:
            raise ValueError(f"masked_fill_: the mask of shape {mask.shape} does not "
                             f"broadcast to the tensor's shape {self.shape} (in place, the "
                             "tensor cannot grow)")
        value = self._fill_value(value, "masked_fill_")
        if self._records_inplace(value, "masked_fill_"):
            self._rebase(apply(ops.Where, value, self, condition=mask))
            return self
        note_inplace_change(self._data)
        np.copyto(self._data, value._data, where=mask)
        return self

    # ------------------------------------------------------------ numpy interoperation

    _COMPARE_UFUNCS = (np.equal, np.not_equal, np.less, np.less_equal, np.greater,
                       np.greater_equal)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        """numpy calls this for `ndarray (op) Tensor` and `np.exp(t)`.

        Arithmetic returns a Tensor that stays in the graph. An update of a numpy array in
        place (`p.data += -lr * p.grad`) writes into that array, as asked.
        """
        arrays = [x._data if isinstance(x, Tensor) else x for x in inputs]
        if out is not None:
            for o in out:
                if isinstance(o, Tensor):
                    o._note_change()
            out = tuple(o._data if isinstance(o, Tensor) else o for o in out)
            return getattr(ufunc, method)(*arrays, out=out, **kwargs)
        if method == "__call__" and not kwargs:
            op = ops.BY_UFUNC.get(ufunc)           # the op table says which ufunc is which
            if op is not None and len(inputs) == 2:
                return _binary(op, *inputs)
            if op is not None:
                return unary(op, inputs[0])
            if ufunc in self._COMPARE_UFUNCS:
                return Tensor._wrap(np.asarray(ufunc(*arrays)), None)
        raise TypeError(f"numpy's {ufunc.__name__} has no gradient rule in tensorgrad; use "
                        "the Tensor method, or t.numpy() to leave the graph")
