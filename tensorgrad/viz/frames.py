"""Frames for module calls: which call of which module recorded each op of a drawing.

Each op's node notes the module call that recorded it (`Node.module_call`: the pair
(module, the call it was made in), set by `nn.Module.__call__` around forward).
`module_groups` turns those notes into the frames of `viz.draw(loss, modules=model)`: one
per call of the model or of a module inside it, nested as the calls were; a module not
opened is drawn as a single node.
"""
import collections

from ..nn import Module


class Group(collections.namedtuple("Group", "label collapsed parent module")):
    """A frame of the drawing (or, `collapsed`, a single node): its label, the group it
    sits in (`parent`, an index, or None), the module whose call it is (or None)."""


def module_groups(order, model, opened, first=0):
    """({node: group index}, [Group]): a group per call of `model` or of a module inside
    it, holding the op nodes of `order` recorded in that call's forward and not in a call
    inside it. A call of a module not `opened` is collapsed, with the calls inside it.
    Group indices start at `first`."""
    if model is None:
        if opened:
            raise ValueError("draw: open= names modules of the model given as modules=")
        return {}, []
    if not isinstance(model, Module):
        raise TypeError(f"draw: modules must be a Module (the model whose calls to frame), "
                        f"got {type(model).__name__}")
    names = {id(m): name for name, m in model.named_modules()}
    opened = _opened(list(names.values()), opened, model)
    group_of, groups = {}, []
    group_of_call, calls = {}, collections.Counter()        # id(call) -> group index
    for node in order:
        chain, call = [], node.module_call if node.op is not None else None
        while call is not None:                 # the calls it was made in, innermost first
            if id(call[0]) in names:
                chain.append(call)
            call = call[1]
        group = None
        for call in reversed(chain):            # outermost first
            parent, group = group, group_of_call.get(id(call))
            if group is None:
                group = group_of_call[id(call)] = first + len(groups)
                module, name = call[0], names[id(call[0])]
                calls[id(module)] += 1
                label = f"{name}: {type(module).__name__}" if name else type(module).__name__
                if calls[id(module)] > 1:
                    label += f" (call {calls[id(module)]})"
                groups.append(Group(label, name not in opened, parent, module))
            if groups[group - first].collapsed:
                break
        if group is not None:
            group_of[node] = group
    if not groups:
        raise ValueError(f"draw: no op in the graph was recorded by a call of "
                         f"{type(model).__name__} or a module inside it (modules= is the "
                         "model whose forward made the graph)")
    return group_of, groups


def _opened(names, opened, model):
    """The dotted names of the modules to draw open: those in `opened` (True: all) and the
    modules holding them; the model itself ('')."""
    if opened is True:
        return set(names)
    opened = [opened] if isinstance(opened, str) else list(opened or ())
    for name in opened:
        if name not in names:
            raise ValueError(f"draw: open={name!r} names no module of {type(model).__name__}; "
                             f"its modules: {', '.join(n for n in names if n) or 'none'}")
    parts = [name.split(".") for name in opened]
    return {""} | {".".join(p[:i]) for p in parts for i in range(1, len(p) + 1)}
