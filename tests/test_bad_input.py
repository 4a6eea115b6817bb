"""Bad input gets one clear line: every public entry point refuses what it cannot use.

Each row is something a new user might write: the code, the error it must raise (exactly
that class), and the function its one-line message must start with ("Linear: ..."). The
last column says what PyTorch does with the same code, checked when PyTorch is installed:
REFUSES (it raises too), ACCEPTS (tensorgrad is stricter on purpose; the comment says
why) or None (no PyTorch counterpart, or it only differs because numpy dtypes are not
torch dtypes). docs/errors.md holds the exact messages of the refusals met most often.
"""
import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import data, nn

REFUSES, ACCEPTS = "refuses", "accepts"

CASES = [
    # ---------------------------------------------------------------- nn.Linear
    ("nn.Linear(-1, 3)", ValueError, "Linear", REFUSES),
    ("nn.Linear(3, -2)", ValueError, "Linear", REFUSES),
    ("nn.Linear(3.0, 2)", TypeError, "Linear", REFUSES),
    ("nn.Linear('3', 2)", TypeError, "Linear", REFUSES),
    ("nn.Linear(3, None)", TypeError, "Linear", REFUSES),
    ("nn.Linear(3, 2)(tg.randn(4, 5))", ValueError, "Linear", REFUSES),
    ("nn.Linear(3, 2)(tg.randn(4, 2, 5))", ValueError, "Linear", REFUSES),
    ("nn.Linear(3, 2)(tg.tensor(5.0))", ValueError, "Linear", REFUSES),
    ("nn.Linear(3, 2)('x')", TypeError, "Linear", REFUSES),
    ("nn.Linear(3, 2)(None)", TypeError, "Linear", REFUSES),
    # ---------------------------------------------------------------- nn.Embedding
    ("nn.Embedding(5, 2)(tg.tensor([-1]))", IndexError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)(tg.tensor([5]))", IndexError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)(tg.tensor([[0, 1], [2, -5]]))", IndexError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)(tg.tensor(7))", IndexError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)(tg.tensor([1.0]))", TypeError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)(tg.tensor([True, False]))", TypeError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)('a')", TypeError, "Embedding", REFUSES),
    ("nn.Embedding(5, 2)([7])", IndexError, "Embedding", REFUSES),
    ("nn.Embedding(-1, 2)", ValueError, "Embedding", REFUSES),
    ("nn.Embedding(5, -2)", ValueError, "Embedding", REFUSES),
    ("nn.Embedding(5.0, 2)", TypeError, "Embedding", REFUSES),
    # ---------------------------------------------------------------- nn.BatchNorm1d
    ("nn.BatchNorm1d(-3)", ValueError, "BatchNorm1d", REFUSES),
    ("nn.BatchNorm1d(4.0)", TypeError, "BatchNorm1d", REFUSES),
    # a negative eps makes var + eps negative for a constant feature: NaN
    ("nn.BatchNorm1d(4, eps=-1.0)", ValueError, "BatchNorm1d", ACCEPTS),
    # momentum > 1 moves the running statistics past the batch's
    ("nn.BatchNorm1d(4, momentum=1.5)", ValueError, "BatchNorm1d", ACCEPTS),
    # PyTorch's cumulative average (momentum=None) is not implemented here
    ("nn.BatchNorm1d(4, momentum=None)", TypeError, "BatchNorm1d", ACCEPTS),
    ("nn.BatchNorm1d(4, eps='1e-5')", TypeError, "BatchNorm1d", ACCEPTS),
    ("nn.BatchNorm1d(4)(tg.zeros(3, 5))", ValueError, "BatchNorm1d", REFUSES),
    ("nn.BatchNorm1d(4)(tg.zeros(1, 4))", ValueError, "BatchNorm1d", REFUSES),
    ("nn.BatchNorm1d(4)(tg.zeros(4))", ValueError, "BatchNorm1d", REFUSES),
    ("nn.BatchNorm1d(4)(tg.zeros(2, 3, 4, 5))", ValueError, "BatchNorm1d", REFUSES),
    ("nn.BatchNorm1d(4)(None)", TypeError, "BatchNorm1d", REFUSES),
    # ---------------------------------------------------------------- Tanh, Flatten, Sequential
    ("nn.Tanh()('a')", TypeError, "Tanh", REFUSES),
    ("nn.Tanh()(None)", TypeError, "Tanh", REFUSES),
    ("nn.Flatten()(tg.ones(3))", IndexError, "flatten", REFUSES),
    ("nn.Flatten(2, 1)(tg.ones(2, 3, 4))", ValueError, "flatten", REFUSES),
    ("nn.Flatten(1.5)(tg.ones(2, 3))", TypeError, "flatten", REFUSES),
    ("nn.Flatten()('a')", TypeError, "Flatten", REFUSES),
    ("nn.Sequential(nn.Linear(2, 2), 'relu')", TypeError, "Sequential", REFUSES),
    ("nn.Sequential([nn.Linear(2, 2), nn.Tanh()])", TypeError, "Sequential", REFUSES),
    ("nn.Sequential(nn.Linear(2, 2), lambda x: x)", TypeError, "Sequential", REFUSES),
    ("nn.Sequential(nn.Tanh())[5]", IndexError, "Sequential", REFUSES),
    ("nn.Sequential(nn.Tanh())['a']", TypeError, "Sequential", REFUSES),
    ("nn.Sequential(nn.Linear(3, 2), nn.Linear(3, 2))(tg.ones(1, 3))", ValueError, "Linear",
     REFUSES),
    # ---------------------------------------------------------------- Module
    ("nn.Module()(tg.ones(2))", NotImplementedError, "Module", REFUSES),
    ("nn.Linear(3, 2).train('yes')", TypeError, "train", REFUSES),
    ("nn.Linear(3, 2).train(0)", TypeError, "train", REFUSES),
    ("nn.Linear(3, 2).train(None)", TypeError, "train", REFUSES),
    ("nn.Linear(3, 2).load_state_dict({'weight': np.zeros((2, 3))})", KeyError,
     "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict({'weight': np.zeros((2, 3)), 'bias': np.zeros(2), "
     "'scale': np.zeros(1)})", KeyError, "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict({'weight': np.zeros((3, 3)), 'bias': np.zeros(2)})",
     ValueError, "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict({'weight': np.zeros((2, 3)), 'bias': np.zeros(1)})",
     ValueError, "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict([1, 2])", TypeError, "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict(None)", TypeError, "load_state_dict", REFUSES),
    ("nn.Linear(3, 2).load_state_dict({'weight': np.full((2, 3), 'x'), 'bias': np.zeros(2)})",
     TypeError, "load_state_dict", None),
    ("nn.Linear(3, 2).load_state_dict(nn.Linear(3, 2, bias=False).state_dict())", KeyError,
     "load_state_dict", REFUSES),
    ("nn.BatchNorm1d(4).load_state_dict(nn.BatchNorm1d(5).state_dict())", ValueError,
     "load_state_dict", REFUSES),
    # ---------------------------------------------------------------- one_hot
    ("F.one_hot(tg.tensor([0, 5]), num_classes=3)", IndexError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([-1, 2]))", IndexError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([1., 2.]))", TypeError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([1, 2]), num_classes=2.5)", TypeError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([1, 2]), num_classes=-2)", ValueError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([1, 2]), num_classes=0)", IndexError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([1, 2]), num_classes='3')", TypeError, "one_hot", REFUSES),
    ("F.one_hot('ab')", TypeError, "one_hot", REFUSES),
    ("F.one_hot(tg.tensor([True, False]))", TypeError, "one_hot", REFUSES),
    # ---------------------------------------------------------------- softmax, log_softmax
    ("F.softmax(tg.randn(2, 3), dim=2)", IndexError, "softmax", REFUSES),
    ("F.softmax(tg.randn(2, 3), dim=-3)", IndexError, "softmax", REFUSES),
    ("F.softmax(tg.randn(2, 3), dim=1.0)", TypeError, "softmax", REFUSES),
    ("F.softmax(tg.randn(2, 3), dim=(0, 1))", TypeError, "softmax", REFUSES),
    # PyTorch guesses a dim with a deprecation warning; tensorgrad would use all of them
    ("F.softmax(tg.randn(2, 3), dim=None)", TypeError, "softmax", ACCEPTS),
    ("F.softmax('ab', dim=0)", TypeError, "softmax", REFUSES),
    ("F.log_softmax(tg.randn(2, 3), dim=-3)", IndexError, "log_softmax", REFUSES),
    ("F.log_softmax(tg.randn(2, 3), dim=(0, 1))", TypeError, "log_softmax", REFUSES),
    ("F.log_softmax(tg.randn(2, 3), dim='1')", TypeError, "log_softmax", REFUSES),
    ("F.log_softmax(None, dim=0)", TypeError, "log_softmax", REFUSES),
    # ---------------------------------------------------------------- cross_entropy
    ("F.cross_entropy(tg.randn(4, 27), tg.tensor([0, 1, 2, 27]))", IndexError, "cross_entropy",
     REFUSES),
    ("F.cross_entropy(tg.randn(4, 27), tg.tensor([-1, 1, 2, 3]))", IndexError, "cross_entropy",
     REFUSES),
    ("F.cross_entropy(tg.randn(4, 27), tg.tensor([0, 1]))", ValueError, "cross_entropy",
     REFUSES),
    ("F.cross_entropy(tg.randn(4, 27), tg.tensor([0., 1., 2., 3.]))", TypeError,
     "cross_entropy", REFUSES),
    # PyTorch also takes one unbatched row of logits, (C,)
    ("F.cross_entropy(tg.randn(27), tg.tensor([0]))", ValueError, "cross_entropy", ACCEPTS),
    ("F.cross_entropy(tg.randn(0, 27), tg.zeros(0, dtype=tg.int64))", ValueError,
     "cross_entropy", None),
    ("F.cross_entropy(tg.randn(4, 27), tg.tensor([0, 1, 2, 3]), reduction='avg')", ValueError,
     "cross_entropy", REFUSES),
    ("F.cross_entropy('ab', tg.tensor([0]))", TypeError, "cross_entropy", REFUSES),
    ("F.cross_entropy(tg.randn(4, 27), None)", TypeError, "cross_entropy", REFUSES),
    # PyTorch reads a float target of the logits' shape as class probabilities
    ("F.cross_entropy(tg.randn(4, 27), tg.randn(4, 27))", TypeError, "cross_entropy", ACCEPTS),
    # PyTorch takes (N, C, d1, ...) logits; here they are (N, C)
    ("F.cross_entropy(tg.randn(2, 3, 4), tg.zeros(2, 4, dtype=tg.int64))", ValueError,
     "cross_entropy", ACCEPTS),
    # ---------------------------------------------------------------- batch_norm
    ("F.batch_norm(tg.randn(4), None, None, training=True)", ValueError, "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(4, 3), tg.zeros(5), tg.ones(5))", ValueError, "batch_norm",
     REFUSES),
    ("F.batch_norm(tg.randn(4, 3), tg.zeros(3), tg.ones(3), weight=tg.ones(5), training=True)",
     ValueError, "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(4, 3), tg.zeros(3), tg.ones(3), bias=tg.ones(2))", ValueError,
     "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(4, 3), [0., 0., 0.], [1., 1., 1.], training=True)", TypeError,
     "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(1, 3), None, None, training=True)", ValueError, "batch_norm",
     REFUSES),
    ("F.batch_norm('ab', None, None)", TypeError, "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(4, 3), tg.zeros(3), tg.ones(3), training=True, momentum=None)",
     TypeError, "batch_norm", REFUSES),
    ("F.batch_norm(tg.randn(4, 3), tg.zeros(3), tg.ones(3), eps=-1.0)", ValueError,
     "batch_norm", REFUSES),
    # ---------------------------------------------------------------- elementwise functions
    ("F.tanh('a')", TypeError, "tanh", REFUSES),
    ("F.relu(None)", TypeError, "relu", REFUSES),
    ("F.sigmoid({})", TypeError, "sigmoid", REFUSES),
    ("F.gelu(tg.randn(3), approximate='fast')", ValueError, "gelu", REFUSES),
    ("F.gelu(tg.randn(3), approximate=None)", ValueError, "gelu", REFUSES),
    ("F.gelu('a')", TypeError, "gelu", REFUSES),
    ("F.softplus(None)", TypeError, "softplus", REFUSES),
    ("tg.exp('a')", TypeError, "exp", REFUSES),
    ("tg.log(None)", TypeError, "log", REFUSES),
    ("tg.sqrt({})", TypeError, "sqrt", REFUSES),
    # ---------------------------------------------------------------- tensor, as_tensor, from_numpy
    ("tg.tensor('abc')", TypeError, "tensor", REFUSES),
    ("tg.tensor(None)", TypeError, "tensor", REFUSES),
    ("tg.tensor([[1, 2], [3]])", ValueError, "tensor", REFUSES),
    ("tg.tensor(np.array(['a', 'b']))", TypeError, "tensor", REFUSES),
    ("tg.tensor(np.array([None]))", TypeError, "tensor", REFUSES),
    # complex numbers: PyTorch has them, tensorgrad does not
    ("tg.tensor(np.array([1 + 2j]))", TypeError, "tensor", ACCEPTS),
    ("tg.tensor([1., 2.], dtype=np.complex64)", TypeError, "tensor", None),
    ("tg.tensor([1., 2.], dtype='floot')", TypeError, "tensor", REFUSES),
    ("tg.tensor([1., 2.], dtype=str)", TypeError, "tensor", REFUSES),
    ("tg.tensor(np.ones(2), dtype='floot')", TypeError, "tensor", REFUSES),
    ("tg.tensor(object())", TypeError, "tensor", REFUSES),
    ("tg.tensor({'a': 1})", TypeError, "tensor", REFUSES),
    ("tg.tensor([1, 'a'])", TypeError, "tensor", REFUSES),
    ("tg.tensor([1, 2], requires_grad=True)", RuntimeError, "requires_grad", REFUSES),
    ("tg.as_tensor('abc')", TypeError, "as_tensor", REFUSES),
    ("tg.as_tensor([1., 2.], dtype='floot')", TypeError, "as_tensor", REFUSES),
    ("tg.from_numpy('abc')", TypeError, "from_numpy", REFUSES),
    ("tg.from_numpy(np.array(['a']))", TypeError, "from_numpy", REFUSES),
    # ---------------------------------------------------------------- zeros, ones, full, *_like
    ("tg.zeros(-1)", ValueError, "zeros", REFUSES),
    ("tg.zeros(2, -3)", ValueError, "zeros", REFUSES),
    ("tg.zeros(2.5)", TypeError, "zeros", REFUSES),
    ("tg.zeros('3')", TypeError, "zeros", REFUSES),
    ("tg.zeros((2, 3), 4)", TypeError, "zeros", REFUSES),
    ("tg.zeros(2, dtype='floot')", TypeError, "zeros", REFUSES),
    ("tg.zeros(2, dtype=str)", TypeError, "zeros", REFUSES),
    ("tg.zeros(2, dtype=tg.int64, requires_grad=True)", RuntimeError, "requires_grad", REFUSES),
    ("tg.ones(None)", TypeError, "ones", REFUSES),
    ("tg.ones((2, -1))", ValueError, "ones", REFUSES),
    ("tg.ones([2, 2.0])", TypeError, "ones", REFUSES),
    ("tg.full(3, 'a')", TypeError, "full", REFUSES),
    ("tg.full((2,), [1, 2])", TypeError, "full", REFUSES),
    ("tg.full((2, -1), 0.0)", ValueError, "full", REFUSES),
    ("tg.full((2,), None)", TypeError, "full", REFUSES),
    ("tg.full((2,), 1.0, dtype='floot')", TypeError, "full", REFUSES),
    ("tg.full(2.5, 1.0)", TypeError, "full", REFUSES),
    ("tg.zeros_like('abc')", TypeError, "zeros_like", REFUSES),
    ("tg.ones_like(None)", TypeError, "ones_like", REFUSES),
    ("tg.ones_like(tg.ones(2), dtype='floot')", TypeError, "ones_like", REFUSES),
    ("tg.full_like(tg.ones(2), 'a')", TypeError, "full_like", REFUSES),
    ("tg.full_like(tg.ones(2), [1, 2, 3])", TypeError, "full_like", REFUSES),
    ("tg.zeros_like(tg.ones(2, dtype=tg.int64), requires_grad=True)", RuntimeError,
     "requires_grad", REFUSES),
    # ---------------------------------------------------------------- arange
    ("tg.arange(0, 10, 0)", ValueError, "arange", REFUSES),
    ("tg.arange(10, 0)", ValueError, "arange", REFUSES),
    ("tg.arange(0, 10, -1)", ValueError, "arange", REFUSES),
    ("tg.arange('a')", TypeError, "arange", REFUSES),
    ("tg.arange(None)", TypeError, "arange", REFUSES),
    ("tg.arange(float('inf'))", ValueError, "arange", REFUSES),
    ("tg.arange(float('nan'))", ValueError, "arange", REFUSES),
    ("tg.arange(5, dtype='floot')", TypeError, "arange", REFUSES),
    ("tg.arange(5, requires_grad=True)", RuntimeError, "requires_grad", REFUSES),
    # ---------------------------------------------------------------- randn, rand, randint
    ("tg.randn(-2)", ValueError, "randn", REFUSES),
    ("tg.randn(2, 2.0)", TypeError, "randn", REFUSES),
    ("tg.randn(2, dtype=tg.int64)", TypeError, "randn", REFUSES),
    ("tg.randn(2, generator=5)", TypeError, "randn", REFUSES),
    ("tg.rand(-1, 2)", ValueError, "rand", REFUSES),
    ("tg.rand(2, dtype=tg.int64)", TypeError, "rand", REFUSES),
    ("tg.rand(2, dtype='floot')", TypeError, "rand", REFUSES),
    ("tg.rand(2, generator='seed')", TypeError, "rand", REFUSES),
    ("tg.randint(5, 5, (2,))", ValueError, "randint", REFUSES),
    ("tg.randint(0, 5)", TypeError, "randint", REFUSES),
    ("tg.randint(10, 5)", TypeError, "randint", REFUSES),
    ("tg.randint(2.5, (3,))", TypeError, "randint", REFUSES),
    ("tg.randint(10, (-1,))", ValueError, "randint", REFUSES),
    ("tg.randint(10)", TypeError, "randint", REFUSES),
    ("tg.randint(0, 10, (2,), generator=3)", TypeError, "randint", REFUSES),
    ("tg.randint(0, 10, (2.0,))", TypeError, "randint", REFUSES),
    ("tg.randint(0, 10, (2,), dtype='floot')", TypeError, "randint", REFUSES),
    # ---------------------------------------------------------------- multinomial
    # PyTorch then draws a category of weight 0
    ("tg.multinomial(tg.tensor([0., 1., 1.]), 3)", ValueError, "multinomial", ACCEPTS),
    ("tg.multinomial(tg.tensor([-1., 1.]), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([0.5, 0.5]), 0)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([0.5, 0.5]), -1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([0.5, 0.5]), 1.5)", TypeError, "multinomial", REFUSES),
    ("tg.multinomial(tg.ones(2, 2, 2), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([0., 0.]), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([1., float('nan')]), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([]), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor(1.), 1)", ValueError, "multinomial", REFUSES),
    ("tg.multinomial('abc', 1)", TypeError, "multinomial", REFUSES),
    ("tg.multinomial(tg.tensor([0.5, 0.5]), 1, generator=1)", TypeError, "multinomial",
     REFUSES),
    # ---------------------------------------------------------------- Generator, manual_seed
    ("tg.Generator().manual_seed('abc')", TypeError, "manual_seed", REFUSES),
    ("tg.manual_seed(None)", TypeError, "manual_seed", REFUSES),
    ("tg.manual_seed([1, 2])", TypeError, "manual_seed", REFUSES),
    # PyTorch truncates a float seed to an int; a seed is an integer here
    ("tg.manual_seed(1.5)", TypeError, "manual_seed", ACCEPTS),
    # PyTorch's first argument is the device; tensorgrad's is the seed
    ("tg.Generator('cpu')", TypeError, "Generator", ACCEPTS),
    ("tg.Generator().set_state(5)", TypeError, "set_state", REFUSES),
    ("tg.Generator().set_state({'a': 1})", ValueError, "set_state", REFUSES),
    # ---------------------------------------------------------------- SGD
    ("tg.optim.SGD([w], lr=-0.1)", ValueError, "SGD", REFUSES),
    ("tg.optim.SGD([w], lr='0.1')", TypeError, "SGD", REFUSES),
    ("tg.optim.SGD([w], lr=None)", TypeError, "SGD", REFUSES),
    # PyTorch's SGD lets a NaN learning rate through (its Adam does not)
    ("tg.optim.SGD([w], lr=float('nan'))", ValueError, "SGD", ACCEPTS),
    ("tg.optim.SGD([w], lr=0.1, momentum=-0.5)", ValueError, "SGD", REFUSES),
    ("tg.optim.SGD([w], lr=0.1, momentum='0.9')", TypeError, "SGD", REFUSES),
    ("tg.optim.SGD([w], lr=0.1, weight_decay=-1.0)", ValueError, "SGD", REFUSES),
    ("tg.optim.SGD(w, lr=0.1)", TypeError, "SGD", REFUSES),
    # PyTorch warns, then updates the tensor twice per step
    ("tg.optim.SGD([w, w], lr=0.1)", ValueError, "SGD", ACCEPTS),
    ("tg.optim.SGD([w * 2], lr=0.1)", ValueError, "SGD", REFUSES),
    # PyTorch keeps tensors that do not require grad (frozen layers); here
    # Module.parameters() already leaves those out, so one in the list is a mistake
    ("tg.optim.SGD([tg.ones(2)], lr=0.1)", ValueError, "SGD", ACCEPTS),
    ("tg.optim.SGD([tg.ones(2, dtype=tg.int64)], lr=0.1)", ValueError, "SGD", ACCEPTS),
    ("tg.optim.SGD([1.0], lr=0.1)", TypeError, "SGD", REFUSES),
    ("tg.optim.SGD(nn.Linear(2, 2), lr=0.1)", TypeError, "SGD", REFUSES),
    ("tg.optim.SGD(None, lr=0.1)", TypeError, "SGD", REFUSES),
    # parameter groups are not implemented here
    ("tg.optim.SGD([{'params': [w]}], lr=0.1)", TypeError, "SGD", ACCEPTS),
    ("tg.optim.SGD([], lr=0.1)", ValueError, "SGD", REFUSES),
    ("tg.optim.SGD(iter([]), lr=0.1)", ValueError, "SGD", REFUSES),
    ("tg.optim.SGD([w], lr=0.1, lr_schedule=0.01)", TypeError, "SGD", None),
    ("tg.optim.SGD([w], lr=0.1, lr_schedule=lambda step: -0.1)", ValueError, "SGD", None),
    ("tg.optim.SGD([w], lr=0.1, lr_schedule=lambda step: None)", TypeError, "SGD", None),
    ("opt = tg.optim.SGD([w], lr=0.1, lr_schedule=lambda step: 0.1 if step < 1 else -1) ⏎ "
     "opt.step() ⏎ opt.step()", ValueError, "SGD", None),
    # ---------------------------------------------------------------- Adam
    ("tg.optim.Adam([w], lr=-1e-3)", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w], betas=(1.0, 0.999))", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w], betas=(0.9, -0.1))", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w], betas=0.9)", TypeError, "Adam", REFUSES),
    ("tg.optim.Adam([w], betas=(0.9,))", TypeError, "Adam", REFUSES),
    ("tg.optim.Adam([w], betas=('a', 0.9))", TypeError, "Adam", REFUSES),
    ("tg.optim.Adam([w], eps=-1e-8)", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w], eps=float('nan'))", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w], weight_decay=-0.1)", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam([w, w])", ValueError, "Adam", ACCEPTS),
    ("tg.optim.Adam([w.tanh()])", ValueError, "Adam", REFUSES),
    ("tg.optim.Adam(w)", TypeError, "Adam", REFUSES),
    # ---------------------------------------------------------------- optimizer state
    ("tg.optim.SGD([w], lr=0.1).load_state_dict({})", KeyError, "load_state_dict", REFUSES),
    ("tg.optim.SGD([w], lr=0.1, momentum=0.9).load_state_dict({'steps': np.array(1)})",
     KeyError, "load_state_dict", None),
    ("tg.optim.SGD([w], lr=0.1).load_state_dict(tg.optim.Adam([w]).state_dict())", KeyError,
     "load_state_dict", None),
    ("tg.optim.Adam([w]).load_state_dict({'steps': np.array(1), 'm.0': np.zeros(1), "
     "'v.0': np.zeros(3)})", ValueError, "load_state_dict", None),
    ("tg.optim.Adam([w]).load_state_dict({'steps': np.array(-1), 'm.0': np.zeros(3), "
     "'v.0': np.zeros(3)})", ValueError, "load_state_dict", None),
    ("tg.optim.SGD([w], lr=0.1).load_state_dict({'steps': 'x'})", TypeError,
     "load_state_dict", None),
    ("tg.optim.SGD([w], lr=0.1).load_state_dict([1])", TypeError, "load_state_dict", REFUSES),
    # ---------------------------------------------------------------- reductions
    ("x.sum(2)", IndexError, "sum", REFUSES),
    ("x.sum(dim=1.0)", TypeError, "sum", REFUSES),
    ("x.sum(dim='a')", TypeError, "sum", REFUSES),
    ("x.sum(dim=True)", TypeError, "sum", REFUSES),
    ("x.sum(dim=(0, 0))", ValueError, "sum", REFUSES),
    ("x.sum(dim=(0, -2))", ValueError, "sum", REFUSES),
    # PyTorch reduces over every dimension for dim=(), numpy over none: ambiguous
    ("x.sum(dim=())", ValueError, "sum", ACCEPTS),
    ("x.mean(dim=[0, 5])", IndexError, "mean", REFUSES),
    ("x.mean(dim=1.5)", TypeError, "mean", REFUSES),
    ("x.mean(dim=[])", ValueError, "mean", ACCEPTS),
    ("x.var(dim=(1, 1))", ValueError, "var", REFUSES),
    ("x.std(dim=3)", IndexError, "std", REFUSES),
    ("x.std(dim=())", ValueError, "std", ACCEPTS),
    ("x.logsumexp(3)", IndexError, "logsumexp", REFUSES),
    ("x.logsumexp(dim=(0, 0))", ValueError, "logsumexp", REFUSES),
    ("x.max(dim=(0, 1))", TypeError, "max", REFUSES),
    ("x.max(dim=2)", IndexError, "max", REFUSES),
    ("x.min(dim=1.0)", TypeError, "min", REFUSES),
    ("x.argmax(dim=2)", IndexError, "argmax", REFUSES),
    ("x.argmax(dim=-3)", IndexError, "argmax", REFUSES),
    ("x.argmin(dim=(0, 1))", TypeError, "argmin", REFUSES),
    ("tg.ones(0).max()", ValueError, "max", REFUSES),
    ("tg.ones(0).min()", ValueError, "min", REFUSES),
    ("tg.ones(0, 3).argmax()", ValueError, "argmax", REFUSES),
    ("tg.ones(0).argmin()", ValueError, "argmin", REFUSES),
    # ---------------------------------------------------------------- movement
    ("x.view(-1, -1)", ValueError, "view", REFUSES),
    ("x.view(-2, 3)", ValueError, "view", REFUSES),
    ("x.view('a')", TypeError, "view", REFUSES),
    ("x.view(None)", TypeError, "view", REFUSES),
    ("x.view(4, -1)", ValueError, "reshape", REFUSES),
    ("x.reshape(2.0, 3)", TypeError, "reshape", REFUSES),
    ("x.reshape((2, 3), 1)", TypeError, "reshape", REFUSES),
    ("x.reshape(-1, 2, -1)", ValueError, "reshape", REFUSES),
    ("x.reshape(5)", ValueError, "reshape", REFUSES),
    ("x.permute(0, 0)", ValueError, "permute", REFUSES),
    ("x.permute(0, 2)", IndexError, "permute", REFUSES),
    ("x.permute(-3, 0)", IndexError, "permute", REFUSES),
    ("x.permute(0)", ValueError, "permute", REFUSES),
    ("x.permute(0, 1.0)", TypeError, "permute", REFUSES),
    ("x.permute(0, 1, 2)", ValueError, "permute", REFUSES),
    ("x.transpose(0, 2)", IndexError, "transpose", REFUSES),
    ("x.transpose(-3, 0)", IndexError, "transpose", REFUSES),
    ("x.transpose(0, 1.0)", TypeError, "transpose", REFUSES),
    ("x.squeeze(2)", IndexError, "squeeze", REFUSES),
    ("x.squeeze(1.0)", TypeError, "squeeze", REFUSES),
    ("x.unsqueeze(3)", IndexError, "unsqueeze", REFUSES),
    ("x.unsqueeze(-4)", IndexError, "unsqueeze", REFUSES),
    ("x.unsqueeze(1.5)", TypeError, "unsqueeze", REFUSES),
    ("x.unsqueeze(None)", TypeError, "unsqueeze", REFUSES),
    ("x.expand(4, 3)", ValueError, "expand", REFUSES),
    ("x.expand(3)", ValueError, "expand", REFUSES),
    ("x.expand(-1, -1, 3)", ValueError, "expand", REFUSES),
    ("x.expand(2, -2)", ValueError, "expand", REFUSES),
    ("x.expand(2, 3.0)", TypeError, "expand", REFUSES),
    ("x.expand_as(tg.ones(4, 3))", ValueError, "expand", REFUSES),
    ("x.expand_as('a')", TypeError, "expand_as", REFUSES),
    ("x.flatten(0, 5)", IndexError, "flatten", REFUSES),
    ("x.flatten(-3)", IndexError, "flatten", REFUSES),
    ("x.flatten(1.5)", TypeError, "flatten", REFUSES),
    ("tg.ones(2, 3, 4).flatten(2, 0)", ValueError, "flatten", REFUSES),
    ("tg.flatten(x, 0, 2)", IndexError, "flatten", REFUSES),
    # ---------------------------------------------------------------- conversion and the rest
    ("x.item()", ValueError, "item", REFUSES),
    ("tg.ones(0).item()", ValueError, "item", REFUSES),
    ("int(x)", ValueError, "item", REFUSES),
    ("len(tg.tensor(1.0))", TypeError, "len", REFUSES),
    ("list(range(tg.tensor(2.5)))", TypeError, "index", REFUSES),
    ("x.to('floot')", TypeError, "to", REFUSES),
    ("x.to('cuda')", RuntimeError, "to", REFUSES),
    ("x.to(str)", TypeError, "to", REFUSES),
    ("x.to(5)", TypeError, "to", REFUSES),
    ("x.to(np.complex64)", TypeError, "to", None),
    ("x.size(2)", IndexError, "size", REFUSES),
    ("x.size(1.0)", TypeError, "size", REFUSES),
    ("tg.ones(2, dtype=tg.int64).requires_grad_()", RuntimeError, "requires_grad", REFUSES),
    ("i = tg.arange(3) ⏎ i.requires_grad = True", RuntimeError, "requires_grad", REFUSES),
    ("x.retain_grad()", RuntimeError, "retain_grad", REFUSES),
    ("(w * 2).requires_grad_(False)", RuntimeError, "requires_grad", REFUSES),
    ("x.name = 5", TypeError, "name", None),
    ("tg.ones(2) @ tg.ones(3)", ValueError, "matmul", REFUSES),
    ("x ** 'a'", TypeError, "pow", REFUSES),
    ("tg.ones(3, 4) + tg.ones(5)", ValueError, "add", REFUSES),
    ("x.backward()", RuntimeError, "backward", REFUSES),
    ("x[5]", IndexError, "index", REFUSES),
    ("x[tg.tensor([1.5])]", IndexError, "index", REFUSES),
    # ---------------------------------------------------------------- devices
    ("tg.zeros(2, device='cuda')", RuntimeError, "zeros", REFUSES),
    ("tg.tensor([1, 2], device='cuda:0')", RuntimeError, "tensor", REFUSES),
    ("tg.arange(3, device='mps')", RuntimeError, "arange", REFUSES),
    ("tg.randn(2, device='cuda')", RuntimeError, "randn", REFUSES),
    ("tg.ones_like(x, device='cuda')", RuntimeError, "ones_like", REFUSES),
    ("tg.randperm(3, device='cuda')", RuntimeError, "randperm", REFUSES),
    ("tg.linspace(0, 1, 3, device='cuda')", RuntimeError, "linspace", REFUSES),
    ("x.to('cpu', 'cuda')", RuntimeError, "to", REFUSES),
    ("x.cuda()", RuntimeError, "cuda", REFUSES),
    # PyTorch makes the device object; tensorgrad refuses it at once (it could not use it)
    ("tg.device('cuda')", RuntimeError, "device", ACCEPTS),
    ("tg.zeros(2, device=5)", TypeError, "zeros", None),
    ("tg.cuda.manual_seed_all('a')", TypeError, "cuda.manual_seed_all", REFUSES),
    # ---------------------------------------------------------------- masks, triangles, where
    ("x.masked_fill(tg.ones(2, 3), 0.0)", TypeError, "masked_fill", REFUSES),
    ("x.masked_fill(x > 0, tg.ones(2))", ValueError, "masked_fill", REFUSES),
    ("x.masked_fill(tg.ones(4, dtype=tg.bool), 0.0)", ValueError, "masked_fill", REFUSES),
    ("x.masked_fill(x > 0, 'a')", TypeError, "masked_fill", REFUSES),
    ("tg.ones(3, dtype=tg.long).masked_fill(tg.ones(3) > 0, float('-inf'))", ValueError,
     "masked_fill", REFUSES),
    ("tg.ones(3).masked_fill_(tg.ones(2, 3) > 0, 1.0)", ValueError, "masked_fill_", REFUSES),
    ("w.masked_fill_(w > 0, 0.0)", RuntimeError, "masked_fill_", REFUSES),
    ("tg.tril(tg.ones(3))", ValueError, "tril", REFUSES),
    ("tg.triu(x, diagonal=0.5)", TypeError, "triu", REFUSES),
    ("tg.where(tg.ones(3), 1.0, 0.0)", TypeError, "where", REFUSES),
    ("tg.where(x > 0, x, tg.ones(4))", ValueError, "where", REFUSES),
    ("tg.where(tg.ones(4) > 0, x, 0.0)", ValueError, "where", REFUSES),
    # ---------------------------------------------------------------- roll, topk, gather, split
    ("tg.roll(x, (1, 2), 0)", ValueError, "roll", REFUSES),
    ("tg.roll(x, 1, 2)", IndexError, "roll", REFUSES),
    ("tg.roll(x, 1.5)", TypeError, "roll", REFUSES),
    ("tg.topk(x, 4)", ValueError, "topk", REFUSES),
    ("tg.topk(x, -1)", ValueError, "topk", REFUSES),
    ("tg.topk(x, 1, dim=2)", IndexError, "topk", REFUSES),
    ("tg.topk(tg.ones(3) > 0, 1)", TypeError, "topk", REFUSES),
    ("x.gather(1, tg.tensor([[0, 3]]))", IndexError, "gather", REFUSES),
    ("x.gather(1, tg.tensor([0, 1]))", TypeError, "gather", REFUSES),
    ("x.gather(1, tg.zeros(3, 1, dtype=tg.long))", ValueError, "gather", REFUSES),
    ("x.split(0, 1)", ValueError, "split", REFUSES),
    ("x.split([1, 1], 1)", ValueError, "split", REFUSES),
    ("x.chunk(0)", ValueError, "chunk", REFUSES),
    # ---------------------------------------------------------------- remainder, ranges, histogram
    ("tg.tensor([True]) % tg.tensor([True])", TypeError, "remainder", REFUSES),
    ("x % 'a'", TypeError, "remainder", REFUSES),
    ("tg.linspace(0, 1, -1)", ValueError, "linspace", REFUSES),
    ("tg.linspace(0, 1, 2.5)", TypeError, "linspace", REFUSES),
    ("tg.linspace('a', 1, 5)", TypeError, "linspace", REFUSES),
    ("tg.randperm(-1)", ValueError, "randperm", REFUSES),
    ("tg.randperm(3, dtype=tg.long, requires_grad=True)", RuntimeError, "requires_grad",
     REFUSES),
    ("tg.histogram(tg.tensor([1, 2]))", TypeError, "histogram", REFUSES),
    ("tg.histogram(x, bins=0)", ValueError, "histogram", REFUSES),
    ("tg.histogram(x, weight=tg.ones(3))", ValueError, "histogram", REFUSES),
    ("F.cross_entropy(tg.randn(3, 4), tg.tensor([0, -1, 4]), ignore_index=-1)", IndexError,
     "cross_entropy", REFUSES),
    ("F.cross_entropy(tg.randn(3, 4), tg.tensor([0, 1, 2]), ignore_index=0.5)", TypeError,
     "cross_entropy", REFUSES),
    ("tg.inference_mode('yes')", TypeError, "inference_mode", None),
    # ---------------------------------------------------------------- the names data set
    ("data.build_dataset(['emma'], 0, stoi)", ValueError, "build_dataset", None),
    ("data.build_dataset(['emma'], 3.5, stoi)", TypeError, "build_dataset", None),
    ("data.build_dataset(['emma'], '3', stoi)", TypeError, "build_dataset", None),
    ("data.build_dataset(['emma!'], 3, stoi)", ValueError, "build_dataset", None),
    ("data.build_dataset(['em.ma'], 3, stoi)", ValueError, "build_dataset", None),
    ("data.build_dataset('emma', 3, stoi)", TypeError, "build_dataset", None),
    ("data.build_dataset([5], 3, stoi)", TypeError, "build_dataset", None),
    ("data.build_dataset(['emma'], 3, None)", TypeError, "build_dataset", None),
    ("data.split_words(['a', 'b'], fractions=(0.9, 0.8))", ValueError, "split_words", None),
    ("data.split_words(['a', 'b'], fractions=(0.8,))", ValueError, "split_words", None),
    ("data.split_words(['a', 'b'], fractions=(0.8, 1.5))", ValueError, "split_words", None),
    ("data.split_words('emma')", TypeError, "split_words", None),
    ("data.vocabulary(['a.b'])", ValueError, "vocabulary", None),
    ("data.vocabulary('emma')", TypeError, "vocabulary", None),
    ("data.vocabulary([1, 2])", TypeError, "vocabulary", None),
]


def namespace(lib):
    """Names the cases use, from tensorgrad or from PyTorch."""
    if lib is tg:
        w, x = tg.ones(3, requires_grad=True), tg.ones(2, 3)
        stoi, _ = data.vocabulary(["emma", "ava"])
        return {"tg": tg, "F": F, "nn": nn, "np": np, "w": w, "x": x, "data": data,
                "stoi": stoi}
    return {"tg": lib, "F": lib.nn.functional, "nn": lib.nn, "np": np,
            "w": lib.ones(3, requires_grad=True), "x": lib.ones(2, 3)}


def run(code, lib=tg):
    exec(code.replace(" ⏎ ", "\n"), namespace(lib))


def message(error):
    """The error's message (a KeyError's str() adds quotes around it)."""
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)


def test_there_are_many_cases_and_no_two_alike():
    assert len(CASES) >= 160
    assert len({code for code, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("code, kind, name, torch_does", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(code, kind, name, torch_does):
    with pytest.raises(Exception) as info:
        run(code)
    assert type(info.value) is kind, f"{type(info.value).__name__}: {info.value}"
    text = message(info.value)
    assert text.startswith(name + ": "), text
    assert "\n" not in text and len(text) < 300, text


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")   # F.softmax(dim=None)
@pytest.mark.parametrize("code, torch_does",
                         [(c[0], c[3]) for c in CASES if c[3] is not None],
                         ids=[c[0] for c in CASES if c[3] is not None])
def test_pytorch_does_what_the_table_says(code, torch_does):
    torch = pytest.importorskip("torch")
    refused = False
    with pytest.warns() if "[w, w]" in code else _nothing():     # PyTorch warns on duplicates
        try:
            run(code, torch)
        except Exception:
            refused = True
    assert refused == (torch_does == REFUSES)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- what the checks let through

def test_dims_sizes_and_indices_that_are_fine_still_work():
    x = tg.arange(6.0).reshape(2, 3)
    assert x.sum(dim=[0, 1]).item() == 15 and x.sum(np.int64(-1)).shape == (2,)
    assert x.permute(-1, 0).tolist() == x.T.tolist() == x.transpose(-1, -2).tolist()
    assert x.unsqueeze(-1).shape == (2, 3, 1) and x.flatten(-2, -1).shape == (6,)
    assert tg.tensor(1.0).flatten().shape == (1,) and tg.tensor(1.0).sum(-1).item() == 1
    assert tg.ones(1, 3).expand(2, -1, 3).shape == (2, 1, 3)
    assert tg.ones(1, 3).expand(4, -1).shape == (4, 3)
    assert x.view(-1).shape == (6,) and x.view(3, -1).shape == (3, 2)
    assert tg.zeros(0, 3).shape == (0, 3) and tg.ones((2,)).shape == (2,)
    emb = nn.Embedding(5, 2)
    assert emb(np.array([[0, 4]])).shape == (1, 2, 2) and emb([1, 2]).shape == (2, 2)


def test_to_none_or_the_same_dtype_is_the_tensor_itself():
    x = tg.ones(2)
    assert x.to(None) is x and x.to(tg.float32) is x and x.to("float32") is x


def test_a_negative_seed_is_read_modulo_2_64_as_in_pytorch():
    a = tg.randn(4, generator=tg.Generator().manual_seed(-1))
    b = tg.randn(4, generator=tg.Generator(2**64 - 1))
    assert a.tolist() == b.tolist()
    torch = pytest.importorskip("torch")
    assert torch.Generator().manual_seed(-1).initial_seed() == 2**64 - 1


def test_full_takes_its_dtype_from_the_fill_value_as_pytorch():
    torch = pytest.importorskip("torch")
    for fill in (True, 3, 2.5):
        ours, theirs = tg.full((2,), fill).dtype, torch.full((2,), fill).dtype
        assert str(theirs) == f"torch.{ours}", (fill, ours, theirs)


def test_a_linear_layer_without_inputs_is_its_bias_as_in_pytorch():
    layer = nn.Linear(0, 3)
    assert layer(tg.ones(2, 0)).tolist() == [[0.0] * 3] * 2


def test_batch_norm_takes_per_feature_parameters_as_rows():
    x = tg.randn(8, 3, generator=tg.Generator().manual_seed(0))
    gain, shift = tg.tensor([0.5, 1.0, 2.0]), tg.tensor([0.0, 1.0, -1.0])
    flat = F.batch_norm(x, None, None, gain, shift, training=True)
    rows = F.batch_norm(x, None, None, gain.view(1, 3), shift.view(1, 3), training=True)
    np.testing.assert_allclose(rows.numpy(), flat.numpy(), rtol=1e-6)


def test_a_refused_load_leaves_the_model_and_optimizer_as_they_were():
    layer = nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    with pytest.raises(ValueError, match="bias has shape"):
        layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(5)})
    np.testing.assert_array_equal(layer.weight.numpy(), before)
    opt = tg.optim.Adam(layer.parameters())
    with pytest.raises(ValueError, match="v.1 has shape"):
        opt.load_state_dict({"steps": np.array(3), "m.0": np.ones((2, 3)), "v.0": np.ones((2, 3)),
                             "m.1": np.ones(2), "v.1": np.ones(3)})
    assert opt.steps == 0 and not opt.m[0].any()


def test_a_tensor_shared_by_two_layers_is_one_parameter():
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    second.weight = first.weight                          # tied weights
    model = nn.Sequential(first, second)
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "1.bias"]
    tg.optim.SGD(model.parameters(), lr=0.1)              # no "same tensor twice" refusal
