"""Containers: modules that hold other modules, named as PyTorch names them (Sequential's
and ModuleList's by position, "0", "1", ...; ModuleDict's by key)."""
from ..checks import shown
from .modules import Module


class _Modules(Module):
    """Modules held in a list, named by position ("0", "1", ...) as PyTorch names them:
    the common part of Sequential and ModuleList."""

    item = "module"                 # what an error message calls each of them

    def __init__(self, modules):
        self.layers = []
        for module in modules:
            self.append(module)

    def append(self, module):
        """Add `module` at the end; returns self."""
        self.layers.append(self._checked(module, len(self.layers)))
        return self

    def _checked(self, module, i):
        if not isinstance(module, Module):
            hint = ("; pass the layers as separate arguments, Sequential(*layers)"
                    if isinstance(module, (list, tuple)) else "")
            raise TypeError(f"{type(self).__name__}: {self.item} {i} is a "
                            f"{type(module).__name__}, not a Module{hint}")
        return module

    def named_children(self):
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def __getitem__(self, i):
        try:
            found = self.layers[i]
        except IndexError:
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for "
                             f"{len(self.layers)} {self.item}s") from None
        except TypeError:
            raise TypeError(f"{type(self).__name__}: index must be an int or a slice, got "
                            f"{shown(i)}") from None
        return self._of(found) if isinstance(i, slice) else found

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


class Sequential(_Modules):
    """Layers applied one after another."""

    item = "layer"

    def __init__(self, *layers):
        super().__init__(layers)

    @classmethod
    def _of(cls, layers):
        return cls(*layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ModuleList(_Modules):
    """A list of modules whose parameters belong to the module holding it (a plain list
    of modules works here too, but PyTorch code writes this)."""

    def __init__(self, modules=()):
        super().__init__(modules)

    @classmethod
    def _of(cls, modules):
        return cls(modules)

    def extend(self, modules):
        """Add each of `modules` at the end; returns self."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put `module` before position `index`."""
        self.layers.insert(index, self._checked(module, index))

    def __setitem__(self, i, module):
        self.layers[i] = self._checked(module, i)


class ModuleDict(Module):
    """Modules by name, in the order they were added: `d["key"]` or `d.key`, and their
    parameters are named `key.weight`, as in PyTorch."""

    def __init__(self, modules=None):
        self._modules = {}
        if modules is not None:
            self.update(modules)

    def update(self, modules):
        """Add each (name, module) of a dict or of a list of pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

    def __setitem__(self, key, module):
        if not isinstance(key, str) or "." in key or not key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without dots, got "
                           f"{shown(key)}")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {key} is a {type(module).__name__}, not a Module")
        self._modules[key] = module

    def __getitem__(self, key):
        try:
            return self._modules[key]
        except KeyError:
            raise KeyError(f"ModuleDict: no module {key!r}; the keys are "
                           f"{list(self._modules)}") from None

    def __getattr__(self, name):            # only for names that are not attributes
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return modules[name]
        raise AttributeError(f"ModuleDict has no attribute or module {name!r}")

    def __delitem__(self, key):
        del self._modules[key]

    def pop(self, key):
        """Remove the module `key` and return it."""
        return self._modules.pop(key)

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def named_children(self):
        return iter(list(self._modules.items()))
