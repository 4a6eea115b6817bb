"""`save` and `load`: tensors, state dicts and plain data in a safetensors file, no pickle.

    tensorgrad.save(model.state_dict(), "model.safetensors")
    model.load_state_dict(tensorgrad.load("model.safetensors"))

The file is a standard safetensors file (https://github.com/huggingface/safetensors): an
8-byte header length, a JSON header naming each tensor's dtype, shape and byte range, then
the raw bytes. Loading one parses JSON and copies bytes; nothing in it can run code, unlike
the pickles `torch.save` writes. Each tensor is stored under its path in the saved object
(`"layers.0.weight"`, `"optimizer.m.1"`), so PyTorch reads a saved state dict with
`safetensors.torch.load_file(path)`. The structure around the tensors (nested dicts, lists,
tuples, numbers, strings, None) is kept as JSON in the header's metadata, under
"tensorgrad.structure", so `load` gives back an object equal to the one saved: Tensors as
Tensors (with their requires_grad), numpy arrays as arrays, and a tensor saved twice (tied
weights) as one tensor. A safetensors file written elsewhere (by
`safetensors.torch.save_file`, say) loads as a dict of tensors by name.
"""
import json
import os

import numpy as np

from .checks import NUMBER_KINDS, shown
from .tensor import Tensor

FORMAT = "tensorgrad.save"
VERSION = 1
SAVABLE = ("tensors, numpy arrays, numbers, strings, None, and lists, tuples and dicts of "
           "them")


# ---------------------------------------------------------------- saving

def save(obj, f):
    """Write `obj` to `f` (a path, or a file object opened for binary writing).

    `obj` may hold tensors, numpy arrays, numbers, strings and None, nested in dicts,
    lists and tuples: a `state_dict()`, or a checkpoint dict with several. Anything else
    (a Module, a function) is refused, naming where in `obj` it is. A path is written
    whole or not at all (to a temporary file, then renamed).
    """
    import safetensors.numpy
    arrays, seen = {}, {}
    structure = _encode(obj, "", arrays, seen, set())
    metadata = {"format": FORMAT, "version": str(VERSION),
                "tensorgrad.structure": json.dumps(structure)}
    data = safetensors.numpy.save(arrays, metadata=metadata)
    if hasattr(f, "write"):
        f.write(data)
        return
    path = _path(f, "save")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError as e:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise type(e)(f"save: cannot write {path} ({e.strerror or e})") from None


def _encode(obj, where, arrays, seen, open_containers):
    """`obj` as JSON-ready structure; its arrays go into `arrays` under their path.

    Nodes: JSON's own None, bools, numbers, strings and lists; {"tuple": [...]};
    {"dict": [[key, value], ...]} (keys of any savable kind, in order); and
    {"tensor": name, "requires_grad": bool}, {"ndarray": name}, {"scalar": name} for the
    arrays. `seen` maps the id of each array saved so far to its node, so that one saved
    twice is stored once; `open_containers` catches a list that contains itself.
    """
    if obj is None or (isinstance(obj, (bool, int, float, str))
                       and not isinstance(obj, np.generic)):       # np.float64 is a float
        return obj
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        if id(obj) not in seen:
            seen[id(obj)] = _encode_array(obj, where, arrays)
        return seen[id(obj)]
    if not isinstance(obj, (list, tuple, dict)):
        hint = ("; save its state_dict() instead" if hasattr(obj, "state_dict") else "")
        raise TypeError(f"save: cannot save {shown(obj)} at {where or 'the top'}: "
                        f"tensorgrad.save keeps {SAVABLE}{hint}")
    if id(obj) in open_containers:
        raise ValueError(f"save: the {type(obj).__name__} at {where or 'the top'} contains "
                         "itself")
    open_containers.add(id(obj))
    if isinstance(obj, dict):
        node = {"dict": [[_encode(k, f"{where}[{k!r}]", arrays, seen, open_containers),
                          _encode(v, _join(where, k), arrays, seen, open_containers)]
                         for k, v in obj.items()]}
    else:
        items = [_encode(v, _join(where, i), arrays, seen, open_containers)
                 for i, v in enumerate(obj)]
        node = {"tuple": items} if isinstance(obj, tuple) else items
    open_containers.discard(id(obj))
    return node


def _encode_array(obj, where, arrays):
    array = obj._data if isinstance(obj, Tensor) else np.asarray(obj)
    if array.dtype.kind not in NUMBER_KINDS:
        raise TypeError(f"save: cannot save the {array.dtype} array at {where or 'the top'}: "
                        "arrays must hold bools, integers or floats")
    name, n = where or "tensor", 1
    while name in arrays:                   # {"a.b": x, "a": {"b": y}} name two arrays alike
        n += 1
        name = f"{where or 'tensor'}#{n}"
    arrays[name] = np.require(array, requirements="C")     # (ascontiguousarray makes 0-d 1-d)
    if isinstance(obj, Tensor):
        return {"tensor": name, "requires_grad": obj.requires_grad}
    return {"scalar" if isinstance(obj, np.generic) else "ndarray": name}


def _join(where, key):
    """The path of an item: dotted, as PyTorch names state-dict entries."""
    return f"{where}.{key}" if where else str(key)


# ---------------------------------------------------------------- loading

def load(f, map_location=None, *, weights_only=None, mmap=None):
    """Read what `save` wrote to `f` (a path, or a file object opened for binary reading).

    A safetensors file written by another program loads as a dict of tensors by name.
    Anything else (a pickle from `torch.save`, a missing or damaged file) is refused in one
    line naming the file. `map_location` may be None or "cpu" (a function or dict is
    accepted and has nothing to do): tensors live on the CPU. `weights_only` and `mmap`
    are accepted for PyTorch's sake; loading never unpickles, whatever their value.
    """
    import safetensors.numpy
    _check_location(map_location)
    data, where = _read(f)
    header = _header(data, where)
    try:
        arrays = safetensors.numpy.load(data)
    except Exception as e:                      # safetensors' own error type, or a numpy one
        raise ValueError(f"load: {where} is a damaged safetensors file ({e})") from None
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        return {name: Tensor._wrap(arrays[name], None) for name in header
                if name != "__metadata__"}
    if metadata.get("version") != str(VERSION):
        raise ValueError(f"load: {where} was written by a newer tensorgrad (format version "
                         f"{metadata.get('version')}); this one reads version {VERSION}")
    try:
        return _decode(json.loads(metadata["tensorgrad.structure"]), arrays, {})
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"load: {where} is a damaged tensorgrad.save file (its structure "
                         f"does not match its tensors: {type(e).__name__} {e})") from None


def _decode(node, arrays, loaded):
    if isinstance(node, list):
        return [_decode(item, arrays, loaded) for item in node]
    if not isinstance(node, dict):
        return node
    if "tuple" in node:
        return tuple(_decode(item, arrays, loaded) for item in node["tuple"])
    if "dict" in node:
        return {_decode(k, arrays, loaded): _decode(v, arrays, loaded) for k, v in node["dict"]}
    kind = next((k for k in ("tensor", "ndarray", "scalar") if k in node), None)
    if kind is None:
        raise ValueError(f"unknown node {node!r:.60}")
    name = node[kind]
    if name not in loaded:              # one object per stored array: tied weights stay tied
        array = arrays[name]
        if kind == "tensor":
            loaded[name] = Tensor._wrap(array, None).requires_grad_(node["requires_grad"])
        else:
            loaded[name] = array[()] if kind == "scalar" else array
    return loaded[name]


def _read(f):
    """The bytes of `f` and how to name it in an error."""
    if hasattr(f, "read"):
        data, where = f.read(), getattr(f, "name", None) or f"the {type(f).__name__}"
        if not isinstance(data, bytes):
            raise TypeError(f"load: {where} gave {type(data).__name__}, not bytes; open the "
                            "file in binary mode, open(path, 'rb')")
        return data, where
    path = _path(f, "load")
    try:
        with open(path, "rb") as file:
            return file.read(), path
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no file at {path}") from None
    except OSError as e:
        raise type(e)(f"load: cannot read {path} ({e.strerror or e})") from None


def _header(data, where):
    """The JSON header of a safetensors file, or a one-line refusal saying what it is."""
    not_ours = (f"load: {where} is not a file that tensorgrad.save (or safetensors) wrote: "
                "it is ")
    if data[:2] == b"PK":
        raise ValueError(not_ours + "a zip archive, as torch.save and numpy.savez write; "
                         "tensorgrad never unpickles (a pickle can run code): save "
                         "tensors in PyTorch with safetensors.torch.save_file")
    if data[:1] == b"\x80":
        raise ValueError(not_ours + "a pickle; tensorgrad never unpickles (a pickle can run "
                         "code): save tensors in PyTorch with safetensors.torch.save_file")
    size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + size]) if 2 <= size <= len(data) - 8 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ValueError(not_ours + f"{len(data)} bytes starting {data[:16]!r}")
    return header


def _path(f, op):
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"{op}: expected a path or a binary file object, got {shown(f)}")
    return os.fspath(f)


def _check_location(map_location):
    """Only the CPU exists here: map_location may name it, or be a function or dict (as
    PyTorch takes), which has no other device to map to."""
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return
    name = map_location if isinstance(map_location, str) else str(map_location)
    if name.split(":")[0] != "cpu":
        raise ValueError(f"load: map_location={map_location!r} names a device tensorgrad "
                         "does not have; it computes with numpy on the CPU (use 'cpu' or "
                         "leave it out)")


__all__ = ["save", "load"]
