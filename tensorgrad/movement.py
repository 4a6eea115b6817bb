"""Tensor's movement ops: reshape, view, flatten, unsqueeze, squeeze, expand, permute,
transpose, .T, roll, split, chunk (and matmul's method form).

A mixin of `Tensor` (tensor.py): each method applies ops of the table to `self` through
`self._apply`, so this file needs nothing of tensor.py and the imports stay one-way.
"""
from . import ops
from .arrays import normalize_dim, normalize_dims
from .checks import int_arg, int_args, shape_arg, shown, split_sizes


class Movement:
    """Tensor's movement ops: methods that rearrange its elements (see the module docstring)."""

    __slots__ = ()

    def reshape(self, *shape):
        """The same values in a new shape; one size may be -1 (inferred)."""
        return self._apply(ops.Reshape, shape=shape_arg("reshape", shape, inferred=1))

    def view(self, *shape):
        """The same as `reshape` (numpy decides whether a copy is needed)."""
        return self._apply(ops.Reshape, shape=shape_arg("view", shape, inferred=1))

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dimensions start_dim..end_dim into one."""
        start, end = (normalize_dim(d, self.ndim, "flatten") for d in (start_dim, end_dim))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"in a tensor of shape {self.shape}")
        if self.ndim == 0:
            return self.reshape(1)
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim):
        """Insert a dimension of size 1 at `dim`."""
        if not -self.ndim - 1 <= int_arg(dim, "unsqueeze", "dim") <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with "
                             f"{self.ndim} dimensions")
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        """Remove dimensions of size 1 (only `dim`, if given)."""
        dims = normalize_dims(dim, self.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        return self if shape == self.shape else self.reshape(shape)

    def expand(self, *sizes):
        """Broadcast size-1 dimensions to `sizes` without copying; -1 keeps a size.

        New dimensions go in front, as in broadcasting; there -1 has no size to keep.
        """
        sizes = int_args("expand", "sizes", sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: the shape {sizes} has fewer dimensions than the "
                             f"tensor's {self.shape}")
        if any(n < -1 or (n == -1 and i < lead) for i, n in enumerate(sizes)):
            raise ValueError(f"expand: sizes must be 0 or more, or -1 to keep a dimension "
                             f"of the tensor, got {sizes} for a tensor of shape {self.shape}")
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
        if any(n != 1 and n != m for n, m in zip(self.shape, shape[lead:])):
            raise ValueError(f"expand: cannot expand a tensor of shape {self.shape} to "
                             f"{sizes}: only dimensions of size 1 can grow")
        return self._apply(ops.Expand, shape=shape)

    def expand_as(self, other):
        """Broadcast to the shape of `other`."""
        if not isinstance(other, type(self)):
            raise TypeError(f"expand_as: expected a Tensor, got {shown(other)}")
        return self.expand(other.shape)

    def permute(self, *dims):
        """Reorder the dimensions."""
        dims = int_args("permute", "dims", dims)
        axes = (tuple(normalize_dim(d, self.ndim, "permute") for d in dims)
                if len(dims) == self.ndim else None)
        if axes is None or sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} "
                             f"dimensions of a tensor of shape {self.shape}")
        return self._apply(ops.Permute, dims=axes)

    def transpose(self, dim0, dim1):
        """Swap two dimensions."""
        dim0, dim1 = (normalize_dim(d, self.ndim, "transpose") for d in (dim0, dim1))
        dims = list(range(self.ndim))
        if dims:
            dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self):
        """The dimensions in reverse order (the transpose of a matrix)."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def matmul(self, other):
        """Matrix product, as `self @ other`."""
        return self @ other

    def roll(self, shifts, dims=None):
        """The elements shifted by `shifts` along `dims` (ints or tuples of ints, as many of
        one as of the other); those pushed off the end come back at the start. Without
        `dims`, over the flattened tensor, keeping its shape."""
        if dims is None:
            shifts = int_args("roll", "shifts", (shifts,))
            if len(shifts) != 1:
                raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
            return self._apply(ops.Roll, shifts=shifts[0], dims=None)
        shifts, dims = int_args("roll", "shifts", (shifts,)), int_args("roll", "dims", (dims,))
        if len(shifts) != len(dims):
            raise ValueError(f"roll: {len(shifts)} shifts {shifts} for {len(dims)} dims "
                             f"{dims}; give one shift per dim")
        dims = tuple(normalize_dim(d, self.ndim, "roll") for d in dims)
        return self._apply(ops.Roll, shifts=shifts, dims=dims)

    def split(self, split_size_or_sections, dim=0):
        """The tensor cut along `dim` into pieces of `split_size_or_sections` (an int; the
        last piece may be shorter) or of the sizes in a list: a tuple of views."""
        axis = normalize_dim(dim, self.ndim, "split")
        start, pieces = 0, []
        for size in split_sizes(split_size_or_sections, self.shape[axis], "split"):
            pieces.append(self._apply(ops.GetItem, index=(slice(None),) * axis
                                + (slice(start, start + size),)))
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        """The tensor cut along `dim` into `chunks` pieces of equal size (the last may be
        smaller, and there may be fewer), as `torch.chunk`."""
        chunks = int_arg(chunks, "chunk", "chunks", low=1)
        n = self.shape[normalize_dim(dim, self.ndim, "chunk")]
        return self.split(max(-(-n // chunks), 1), dim)
