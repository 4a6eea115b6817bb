"""The sweep's cases that fail today, by the mechanism behind them.

Each entry of KNOWN_FAILURES maps a case id to one line naming its mechanism. tests/test_sweep.py
marks these cases xfail(strict=True): a fix that makes one pass turns it into an XPASS failure,
and the id must then be removed from here. `python -m tests.sweep` prints the groups with the
cases' details. Each group below starts with its reason and a minimal reproducer
(`import tensorgrad as tg`, `import tensorgrad.nn.functional as F`).
"""

# mechanism: (reason, minimal reproducer, case ids)
MECHANISMS = {}

MECHANISMS['inplace-breaks-views'] = (
    'an in-place op recorded in the graph rebinds the tensor to a new array and node '
    '(Tensor._rebase), so views taken before it (view, reshape, slices, transpose, '
    'detach, ...) keep the old values and stay out of the graph; PyTorch writes through '
    'the shared memory',
    'x = tg.tensor([1., 2.], requires_grad=True); b = x * 1; v = b.view(2); b += 1; v  # [1, 2], PyTorch [2, 3]',
    """
views/graph: v = b.view(12); b += 1
views/graph: v = b.view(12); v += 1
views/graph: v = b.view(12); b *= 2
views/graph: v = b.view(12); v *= 2
views/graph: v = b.view(12); b /= 2
views/graph: v = b.view(12); v /= 2
views/graph: v = b.view(12); b -= w
views/plain: v = b.view(12); b -= w
views/graph: v = b.view(12); v -= w
views/plain: v = b.view(12); v -= w
views/graph: v = b.view(12); b[0] = 5
views/graph: v = b.view(12); v[0] = 5
views/graph: v = b.view(12); b[0] = w
views/plain: v = b.view(12); b[0] = w
views/graph: v = b.view(12); v[0] = w
views/plain: v = b.view(12); v[0] = w
views/graph: v = b.view(12); b.zero_()
views/graph: v = b.view(12); v.zero_()
views/graph: v = b.reshape(4, 3); b += 1
views/graph: v = b.reshape(4, 3); v += 1
views/graph: v = b.reshape(4, 3); b *= 2
views/graph: v = b.reshape(4, 3); v *= 2
views/graph: v = b.reshape(4, 3); b /= 2
views/graph: v = b.reshape(4, 3); v /= 2
views/graph: v = b.reshape(4, 3); b -= w
views/plain: v = b.reshape(4, 3); b -= w
views/graph: v = b.reshape(4, 3); v -= w
views/plain: v = b.reshape(4, 3); v -= w
views/graph: v = b.reshape(4, 3); b[0] = 5
views/graph: v = b.reshape(4, 3); v[0] = 5
views/graph: v = b.reshape(4, 3); b[0] = w
views/plain: v = b.reshape(4, 3); b[0] = w
views/graph: v = b.reshape(4, 3); v[0] = w
views/plain: v = b.reshape(4, 3); v[0] = w
views/graph: v = b.reshape(4, 3); b.zero_()
views/graph: v = b.reshape(4, 3); v.zero_()
views/graph: v = b[1]; b += 1
views/graph: v = b[1]; v += 1
views/graph: v = b[1]; b *= 2
views/graph: v = b[1]; v *= 2
views/graph: v = b[1]; b /= 2
views/graph: v = b[1]; v /= 2
views/graph: v = b[1]; b -= w
views/plain: v = b[1]; b -= w
views/graph: v = b[1]; v -= w
views/plain: v = b[1]; v -= w
views/graph: v = b[1]; v[0] = 5
views/plain: v = b[1]; b[0] = w
views/graph: v = b[1]; v[0] = w
views/plain: v = b[1]; v[0] = w
views/graph: v = b[1]; b.zero_()
views/graph: v = b[1]; v.zero_()
views/graph: v = b[:, 1:3]; b += 1
views/graph: v = b[:, 1:3]; v += 1
views/graph: v = b[:, 1:3]; b *= 2
views/graph: v = b[:, 1:3]; v *= 2
views/graph: v = b[:, 1:3]; b /= 2
views/graph: v = b[:, 1:3]; v /= 2
views/graph: v = b[:, 1:3]; b -= w
views/plain: v = b[:, 1:3]; b -= w
views/graph: v = b[:, 1:3]; v -= w
views/plain: v = b[:, 1:3]; v -= w
views/graph: v = b[:, 1:3]; b[0] = 5
views/graph: v = b[:, 1:3]; v[0] = 5
views/graph: v = b[:, 1:3]; b[0] = w
views/plain: v = b[:, 1:3]; b[0] = w
views/graph: v = b[:, 1:3]; v[0] = w
views/plain: v = b[:, 1:3]; v[0] = w
views/graph: v = b[:, 1:3]; b.zero_()
views/graph: v = b[:, 1:3]; v.zero_()
views/graph: v = b[::2]; b += 1
views/graph: v = b[::2]; v += 1
views/graph: v = b[::2]; b *= 2
views/graph: v = b[::2]; v *= 2
views/graph: v = b[::2]; b /= 2
views/graph: v = b[::2]; v /= 2
views/graph: v = b[::2]; b -= w
views/plain: v = b[::2]; b -= w
views/graph: v = b[::2]; v -= w
views/plain: v = b[::2]; v -= w
views/graph: v = b[::2]; b[0] = 5
views/graph: v = b[::2]; v[0] = 5
views/graph: v = b[::2]; b[0] = w
views/plain: v = b[::2]; b[0] = w
views/graph: v = b[::2]; v[0] = w
views/plain: v = b[::2]; v[0] = w
views/graph: v = b[::2]; b.zero_()
views/graph: v = b[::2]; v.zero_()
views/graph: v = b.T; b += 1
views/graph: v = b.T; v += 1
views/graph: v = b.T; b *= 2
views/graph: v = b.T; v *= 2
views/graph: v = b.T; b /= 2
views/graph: v = b.T; v /= 2
views/graph: v = b.T; b -= w
views/plain: v = b.T; b -= w
views/graph: v = b.T; v -= w
views/plain: v = b.T; v -= w
views/graph: v = b.T; b[0] = 5
views/graph: v = b.T; v[0] = 5
views/graph: v = b.T; b[0] = w
views/plain: v = b.T; b[0] = w
views/graph: v = b.T; v[0] = w
views/plain: v = b.T; v[0] = w
views/graph: v = b.T; b.zero_()
views/graph: v = b.T; v.zero_()
views/graph: v = b.transpose(0, 1); b += 1
views/graph: v = b.transpose(0, 1); v += 1
views/graph: v = b.transpose(0, 1); b *= 2
views/graph: v = b.transpose(0, 1); v *= 2
views/graph: v = b.transpose(0, 1); b /= 2
views/graph: v = b.transpose(0, 1); v /= 2
views/graph: v = b.transpose(0, 1); b -= w
views/plain: v = b.transpose(0, 1); b -= w
views/graph: v = b.transpose(0, 1); v -= w
views/plain: v = b.transpose(0, 1); v -= w
views/graph: v = b.transpose(0, 1); b[0] = 5
views/graph: v = b.transpose(0, 1); v[0] = 5
views/graph: v = b.transpose(0, 1); b[0] = w
views/plain: v = b.transpose(0, 1); b[0] = w
views/graph: v = b.transpose(0, 1); v[0] = w
views/plain: v = b.transpose(0, 1); v[0] = w
views/graph: v = b.transpose(0, 1); b.zero_()
views/graph: v = b.transpose(0, 1); v.zero_()
views/graph: v = b.detach(); b += 1
views/graph: v = b.detach(); b *= 2
views/graph: v = b.detach(); b /= 2
views/graph: v = b.detach(); b -= w
views/plain: v = b.detach(); b -= w
views/graph: v = b.detach(); v -= w
views/plain: v = b.detach(); v -= w
views/graph: v = b.detach(); b[0] = 5
views/graph: v = b.detach(); b[0] = w
views/plain: v = b.detach(); b[0] = w
views/graph: v = b.detach(); v[0] = w
views/plain: v = b.detach(); v[0] = w
views/graph: v = b.detach(); b.zero_()
views/graph: v = b.unsqueeze(0); b += 1
views/graph: v = b.unsqueeze(0); v += 1
views/graph: v = b.unsqueeze(0); b *= 2
views/graph: v = b.unsqueeze(0); v *= 2
views/graph: v = b.unsqueeze(0); b /= 2
views/graph: v = b.unsqueeze(0); v /= 2
views/graph: v = b.unsqueeze(0); b -= w
views/plain: v = b.unsqueeze(0); b -= w
views/graph: v = b.unsqueeze(0); v -= w
views/plain: v = b.unsqueeze(0); v -= w
views/graph: v = b.unsqueeze(0); b[0] = 5
views/graph: v = b.unsqueeze(0); v[0] = 5
views/graph: v = b.unsqueeze(0); b[0] = w
views/plain: v = b.unsqueeze(0); b[0] = w
views/graph: v = b.unsqueeze(0); v[0] = w
views/plain: v = b.unsqueeze(0); v[0] = w
views/graph: v = b.unsqueeze(0); b.zero_()
views/graph: v = b.unsqueeze(0); v.zero_()
views/graph: v = b.flatten(); b += 1
views/graph: v = b.flatten(); v += 1
views/graph: v = b.flatten(); b *= 2
views/graph: v = b.flatten(); v *= 2
views/graph: v = b.flatten(); b /= 2
views/graph: v = b.flatten(); v /= 2
views/graph: v = b.flatten(); b -= w
views/plain: v = b.flatten(); b -= w
views/graph: v = b.flatten(); v -= w
views/plain: v = b.flatten(); v -= w
views/graph: v = b.flatten(); b[0] = 5
views/graph: v = b.flatten(); v[0] = 5
views/graph: v = b.flatten(); b[0] = w
views/plain: v = b.flatten(); b[0] = w
views/graph: v = b.flatten(); v[0] = w
views/plain: v = b.flatten(); v[0] = w
views/graph: v = b.flatten(); b.zero_()
views/graph: v = b.flatten(); v.zero_()
views/graph: v = b[None]; b += 1
views/graph: v = b[None]; v += 1
views/graph: v = b[None]; b *= 2
views/graph: v = b[None]; v *= 2
views/graph: v = b[None]; b /= 2
views/graph: v = b[None]; v /= 2
views/graph: v = b[None]; b -= w
views/plain: v = b[None]; b -= w
views/graph: v = b[None]; v -= w
views/plain: v = b[None]; v -= w
views/graph: v = b[None]; b[0] = 5
views/graph: v = b[None]; v[0] = 5
views/graph: v = b[None]; b[0] = w
views/plain: v = b[None]; b[0] = w
views/graph: v = b[None]; v[0] = w
views/plain: v = b[None]; v[0] = w
views/graph: v = b[None]; b.zero_()
views/graph: v = b[None]; v.zero_()
views/graph: v = b[...]; b += 1
views/graph: v = b[...]; v += 1
views/graph: v = b[...]; b *= 2
views/graph: v = b[...]; v *= 2
views/graph: v = b[...]; b /= 2
views/graph: v = b[...]; v /= 2
views/graph: v = b[...]; b -= w
views/plain: v = b[...]; b -= w
views/graph: v = b[...]; v -= w
views/plain: v = b[...]; v -= w
views/graph: v = b[...]; b[0] = 5
views/graph: v = b[...]; v[0] = 5
views/graph: v = b[...]; b[0] = w
views/plain: v = b[...]; b[0] = w
views/graph: v = b[...]; v[0] = w
views/plain: v = b[...]; v[0] = w
views/graph: v = b[...]; b.zero_()
views/graph: v = b[...]; v.zero_()
views/graph: v = b.permute(1, 0); b += 1
views/graph: v = b.permute(1, 0); v += 1
views/graph: v = b.permute(1, 0); b *= 2
views/graph: v = b.permute(1, 0); v *= 2
views/graph: v = b.permute(1, 0); b /= 2
views/graph: v = b.permute(1, 0); v /= 2
views/graph: v = b.permute(1, 0); b -= w
views/plain: v = b.permute(1, 0); b -= w
views/graph: v = b.permute(1, 0); v -= w
views/plain: v = b.permute(1, 0); v -= w
views/graph: v = b.permute(1, 0); b[0] = 5
views/graph: v = b.permute(1, 0); v[0] = 5
views/graph: v = b.permute(1, 0); b[0] = w
views/plain: v = b.permute(1, 0); b[0] = w
views/graph: v = b.permute(1, 0); v[0] = w
views/plain: v = b.permute(1, 0); v[0] = w
views/graph: v = b.permute(1, 0); b.zero_()
views/graph: v = b.permute(1, 0); v.zero_()
views/graph: v = b.expand(2, 3, 4); b += 1
views/graph: v = b.expand(2, 3, 4); b *= 2
views/graph: v = b.expand(2, 3, 4); b /= 2
views/graph: v = b.expand(2, 3, 4); b -= w
views/plain: v = b.expand(2, 3, 4); b -= w
views/graph: v = b.expand(2, 3, 4); b[0] = 5
views/graph: v = b.expand(2, 3, 4); v[0] = 5
views/graph: v = b.expand(2, 3, 4); b[0] = w
views/plain: v = b.expand(2, 3, 4); b[0] = w
views/graph: v = b.expand(2, 3, 4); v[0] = w
views/plain: v = b.expand(2, 3, 4); v[0] = w
views/graph: v = b.expand(2, 3, 4); b.zero_()
""")

MECHANISMS['expanded-view-write'] = (
    'an in-place op on an expanded view is computed; PyTorch refuses (several elements '
    'share one memory location)',
    'b = tg.zeros(3, 4, requires_grad=True) * 1; v = b.expand(2, 3, 4); v += 1  # PyTorch raises',
    """
views/graph: v = b.expand(2, 3, 4); v += 1
views/graph: v = b.expand(2, 3, 4); v *= 2
views/graph: v = b.expand(2, 3, 4); v /= 2
views/graph: v = b.expand(2, 3, 4); v -= w
views/plain: v = b.expand(2, 3, 4); v -= w
views/graph: v = b.expand(2, 3, 4); v.zero_()
""")

MECHANISMS['index-int-as-advanced'] = (
    'getitem/setitem pass the index to numpy, which treats an int (or a Python bool, or a'
    ' 0-d int tensor) next to an advanced index as advanced too, so with a slice between '
    'them the advanced dims go first; PyTorch treats ints as basic indices '
    '(tensor._as_index, ops.GetItem, ops.SetItem)',
    'tg.zeros(3, 4, 5)[0, :, [0, 1]].shape  # (2, 4); PyTorch (4, 2)',
    """
index/x[0,:,[0,1]]
setitem/y[0,:,[0,1]] = shaped
index/x[0,:,tensor([0, 2])]
setitem/y[0,:,tensor([0, 2])] = shaped
index/x[0,:,mask]
setitem/y[0,:,mask] = shaped
index/x[0,1:,[0,1]]
setitem/y[0,1:,[0,1]] = shaped
index/x[0,1:,tensor([0, 2])]
setitem/y[0,1:,tensor([0, 2])] = shaped
index/x[0,1:,mask]
setitem/y[0,1:,mask] = shaped
index/x[tensor(1),:,[0,1]]
setitem/y[tensor(1),:,[0,1]] = shaped
index/x[tensor(1),:,tensor([0, 2])]
setitem/y[tensor(1),:,tensor([0, 2])] = shaped
index/x[tensor(1),:,mask]
setitem/y[tensor(1),:,mask] = shaped
index/x[tensor(1),1:,[0,1]]
setitem/y[tensor(1),1:,[0,1]] = shaped
index/x[tensor(1),1:,tensor([0, 2])]
setitem/y[tensor(1),1:,tensor([0, 2])] = shaped
index/x[tensor(1),1:,mask]
setitem/y[tensor(1),1:,mask] = shaped
index/x[0,1:100,[1,1,0]]
index/x[2,::2,False]
index/x[-1,0:0,[-1,0]]
index/x[0,:2,mask]
setitem/y[0,:2,mask] = shaped
index/x[tensor(1),1:100,mask]
setitem/y[tensor(1),1:100,mask] = shaped
index/x[2,:2,[1,1,0]]
index/x[1,1:100,tensor([1, 1])]
index/brief x[0,:,[0,1]]
index/brief x[None,0,...,[1,1]]
""")

MECHANISMS['setitem-empty-selection'] = (
    'setitem with an empty selection (y[False] = v) still records v in the graph: v gets '
    'a zero gradient instead of None, a fresh y starts requiring grad; PyTorch leaves '
    'both untouched',
    'w = tg.ones(2, requires_grad=True); y = tg.zeros(2); y[False] = w[:0].reshape(0, 2); y.requires_grad  # True; PyTorch False',
    """
setitem/y[False] = shaped
setitem/y[False] = scalar
setitem/y[False] = fresh
""")

MECHANISMS['promotion-0d-tensor'] = (
    'type promotion ignores dimensionality: a 0-d tensor raises the result dtype like a '
    'dimensioned one (arrays.promote); in PyTorch a 0-d tensor decides only the category,'
    ' as a Python number does',
    '(tg.ones(3) + tg.tensor(1.0, dtype=tg.float64)).dtype  # float64; PyTorch float32',
    """
dtypes/int32[3] + int64[]
dtypes/int64[] + int32[3]
dtypes/float32[3] + float64[]
dtypes/float64[] + float32[3]
dtypes/int32[3] - int64[]
dtypes/int64[] - int32[3]
dtypes/float32[3] - float64[]
dtypes/float64[] - float32[3]
dtypes/int32[3] * int64[]
dtypes/int64[] * int32[3]
dtypes/float32[3] * float64[]
dtypes/float64[] * float32[3]
dtypes/float32[3] / float64[]
dtypes/float64[] / float32[3]
dtypes/int32[3] ** int64[]
dtypes/int64[] ** int32[3]
dtypes/float32[3] ** float64[]
dtypes/float64[] ** float32[3]
""")

MECHANISMS['bool-arithmetic'] = (
    'arithmetic on bool tensors that PyTorch refuses (subtraction with a bool operand, '
    "pow of bools, abs, relu, matmul of bools) is computed with numpy's bool rules",
    'tg.tensor([True, False]) - tg.tensor([1, 2])  # answers; PyTorch raises',
    """
dtypes/bool[3] - int32[3]
dtypes/bool[3] - int32[]
dtypes/bool[3] - int64[3]
dtypes/bool[3] - int64[]
dtypes/bool[3] - float32[3]
dtypes/bool[3] - float32[]
dtypes/bool[3] - float64[3]
dtypes/bool[3] - float64[]
dtypes/bool[3] - 2
dtypes/bool[3] - 1.5
dtypes/bool[] - int32[3]
dtypes/bool[] - int32[]
dtypes/bool[] - int64[3]
dtypes/bool[] - int64[]
dtypes/bool[] - float32[3]
dtypes/bool[] - float32[]
dtypes/bool[] - float64[3]
dtypes/bool[] - float64[]
dtypes/bool[] - 2
dtypes/bool[] - 1.5
dtypes/int32[3] - bool[3]
dtypes/int32[3] - bool[]
dtypes/int32[3] - True
dtypes/int32[] - bool[3]
dtypes/int32[] - bool[]
dtypes/int32[] - True
dtypes/int64[3] - bool[3]
dtypes/int64[3] - bool[]
dtypes/int64[3] - True
dtypes/int64[] - bool[3]
dtypes/int64[] - bool[]
dtypes/int64[] - True
dtypes/float32[3] - bool[3]
dtypes/float32[3] - bool[]
dtypes/float32[3] - True
dtypes/float32[] - bool[3]
dtypes/float32[] - bool[]
dtypes/float32[] - True
dtypes/float64[3] - bool[3]
dtypes/float64[3] - bool[]
dtypes/float64[3] - True
dtypes/float64[] - bool[3]
dtypes/float64[] - bool[]
dtypes/float64[] - True
dtypes/True - int32[3]
dtypes/True - int32[]
dtypes/True - int64[3]
dtypes/True - int64[]
dtypes/True - float32[3]
dtypes/True - float32[]
dtypes/True - float64[3]
dtypes/True - float64[]
dtypes/2 - bool[3]
dtypes/2 - bool[]
dtypes/1.5 - bool[3]
dtypes/1.5 - bool[]
dtypes/bool[3] ** bool[3]
dtypes/bool[3] ** bool[]
dtypes/bool[] ** bool[3]
dtypes/bool[] ** bool[]
dtypes/True ** bool[3]
dtypes/True ** bool[]
inplace-dtypes/a = int32[3] (outside graph); a -= bool[3]
inplace-dtypes/a = int32[3] (outside graph); a -= bool[]
inplace-dtypes/a = int32[3] (outside graph); a -= True
inplace-dtypes/a = int64[3] (outside graph); a -= bool[3]
inplace-dtypes/a = int64[3] (outside graph); a -= bool[]
inplace-dtypes/a = int64[3] (outside graph); a -= True
inplace-dtypes/a = float32[3] (in graph); a -= bool[3]
inplace-dtypes/a = float32[3] (outside graph); a -= bool[3]
inplace-dtypes/a = float32[3] (in graph); a -= bool[]
inplace-dtypes/a = float32[3] (outside graph); a -= bool[]
inplace-dtypes/a = float32[3] (in graph); a -= True
inplace-dtypes/a = float32[3] (outside graph); a -= True
inplace-dtypes/a = float64[3] (in graph); a -= bool[3]
inplace-dtypes/a = float64[3] (outside graph); a -= bool[3]
inplace-dtypes/a = float64[3] (in graph); a -= bool[]
inplace-dtypes/a = float64[3] (outside graph); a -= bool[]
inplace-dtypes/a = float64[3] (in graph); a -= True
inplace-dtypes/a = float64[3] (outside graph); a -= True
unary-dtypes/x.abs() [bool]
unary-dtypes/x.relu() [bool]
unary-dtypes/x @ x [bool]
dtypes/bool 2x3 @ bool [3]
""")

MECHANISMS['bool-result-dtypes'] = (
    "numpy's result dtypes for bools leak through: bool ** True is int8, bool.square() "
    'stays bool; PyTorch gives bool and int64',
    '(tg.tensor([True, False]) ** True).dtype  # int8; PyTorch bool',
    """
dtypes/bool[3] ** True
dtypes/bool[] ** True
unary-dtypes/x.square() [bool]
""")

MECHANISMS['integer-input-accepted'] = (
    'mean/var/std/softmax of integer or bool tensors and argmax/argmin of bool tensors '
    'are computed (Tensor._floating casts to float32); PyTorch refuses',
    'tg.tensor([1, 2, 3]).mean()  # 2.0; PyTorch raises',
    """
reductions/bool 2x3 .mean()
reductions/bool 2x3 .mean(0, keepdim=False)
reductions/bool 2x3 .mean(0, keepdim=True)
reductions/bool 2x3 .mean(-1, keepdim=False)
reductions/bool 2x3 .mean(-1, keepdim=True)
reductions/int32 2x3 .mean()
reductions/int32 2x3 .mean(0, keepdim=False)
reductions/int32 2x3 .mean(0, keepdim=True)
reductions/int32 2x3 .mean(-1, keepdim=False)
reductions/int32 2x3 .mean(-1, keepdim=True)
reductions/int64 2x3 .mean()
reductions/int64 2x3 .mean(0, keepdim=False)
reductions/int64 2x3 .mean(0, keepdim=True)
reductions/int64 2x3 .mean(-1, keepdim=False)
reductions/int64 2x3 .mean(-1, keepdim=True)
reductions/bool 2x3 .var()
reductions/bool 2x3 .var(0, keepdim=False)
reductions/bool 2x3 .var(0, keepdim=True)
reductions/bool 2x3 .var(-1, keepdim=False)
reductions/bool 2x3 .var(-1, keepdim=True)
reductions/int32 2x3 .var()
reductions/int32 2x3 .var(0, keepdim=False)
reductions/int32 2x3 .var(0, keepdim=True)
reductions/int32 2x3 .var(-1, keepdim=False)
reductions/int32 2x3 .var(-1, keepdim=True)
reductions/int64 2x3 .var()
reductions/int64 2x3 .var(0, keepdim=False)
reductions/int64 2x3 .var(0, keepdim=True)
reductions/int64 2x3 .var(-1, keepdim=False)
reductions/int64 2x3 .var(-1, keepdim=True)
reductions/bool 2x3 .std()
reductions/bool 2x3 .std(0, keepdim=False)
reductions/bool 2x3 .std(0, keepdim=True)
reductions/bool 2x3 .std(-1, keepdim=False)
reductions/bool 2x3 .std(-1, keepdim=True)
reductions/int32 2x3 .std()
reductions/int32 2x3 .std(0, keepdim=False)
reductions/int32 2x3 .std(0, keepdim=True)
reductions/int32 2x3 .std(-1, keepdim=False)
reductions/int32 2x3 .std(-1, keepdim=True)
reductions/int64 2x3 .std()
reductions/int64 2x3 .std(0, keepdim=False)
reductions/int64 2x3 .std(0, keepdim=True)
reductions/int64 2x3 .std(-1, keepdim=False)
reductions/int64 2x3 .std(-1, keepdim=True)
reductions/bool 2x3 .argmax()
reductions/bool 2x3 .argmax(0, keepdim=False)
reductions/bool 2x3 .argmax(0, keepdim=True)
reductions/bool 2x3 .argmax(-1, keepdim=False)
reductions/bool 2x3 .argmax(-1, keepdim=True)
reductions/bool 2x3 .argmin()
reductions/bool 2x3 .argmin(0, keepdim=False)
reductions/bool 2x3 .argmin(0, keepdim=True)
reductions/bool 2x3 .argmin(-1, keepdim=False)
reductions/bool 2x3 .argmin(-1, keepdim=True)
unary-dtypes/F.softmax(x, -1) [int32]
unary-dtypes/F.softmax(x, -1) [int64]
""")

MECHANISMS['matmul-mixed-dtypes'] = (
    'matmul (and so nn.Linear) promotes operands of different dtypes; PyTorch requires '
    'one dtype and refuses',
    'tg.ones(2, 3, dtype=tg.int64) @ tg.ones(3)  # answers; PyTorch raises',
    """
dtypes/bool 2x3 @ int32 [3]
dtypes/bool 2x3 @ int64 [3]
dtypes/bool 2x3 @ float32 [3]
dtypes/bool 2x3 @ float64 [3]
dtypes/int32 2x3 @ bool [3]
dtypes/int32 2x3 @ int64 [3]
dtypes/int32 2x3 @ float32 [3]
dtypes/int32 2x3 @ float64 [3]
dtypes/int64 2x3 @ bool [3]
dtypes/int64 2x3 @ int32 [3]
dtypes/int64 2x3 @ float32 [3]
dtypes/int64 2x3 @ float64 [3]
dtypes/float32 2x3 @ bool [3]
dtypes/float32 2x3 @ int32 [3]
dtypes/float32 2x3 @ int64 [3]
dtypes/float32 2x3 @ float64 [3]
dtypes/float64 2x3 @ bool [3]
dtypes/float64 2x3 @ int32 [3]
dtypes/float64 2x3 @ int64 [3]
dtypes/float64 2x3 @ float32 [3]
nn/Linear(3, 2) on float64 input
nn/Linear(3, 2) on int64 input
""")

MECHANISMS['cat-first-dtype'] = (
    "cat/stack cast every tensor to the first one's dtype (functional.cat): float tensors"
    ' requiring grad cast to an integer dtype drop out of the graph, float32 with float64'
    ' is float32; PyTorch promotes',
    'w = tg.ones(2, requires_grad=True); tg.cat([tg.tensor([1, 2]), w]).dtype  # int64, and w gets no gradient; PyTorch float32',
    """
cat-stack/cat([bool, int32])
cat-stack/stack([bool, int32])
cat-stack/stack([bool, int32], dim=-1)
cat-stack/cat([bool 2x3, int32 2x3], dim=1)
cat-stack/cat([bool, int64])
cat-stack/stack([bool, int64])
cat-stack/stack([bool, int64], dim=-1)
cat-stack/cat([bool 2x3, int64 2x3], dim=1)
cat-stack/cat([bool, float32])
cat-stack/stack([bool, float32])
cat-stack/stack([bool, float32], dim=-1)
cat-stack/cat([bool 2x3, float32 2x3], dim=1)
cat-stack/cat([bool, float64])
cat-stack/stack([bool, float64])
cat-stack/stack([bool, float64], dim=-1)
cat-stack/cat([bool 2x3, float64 2x3], dim=1)
cat-stack/cat([int32, int64])
cat-stack/stack([int32, int64])
cat-stack/stack([int32, int64], dim=-1)
cat-stack/cat([int32 2x3, int64 2x3], dim=1)
cat-stack/cat([int32, float32])
cat-stack/stack([int32, float32])
cat-stack/stack([int32, float32], dim=-1)
cat-stack/cat([int32 2x3, float32 2x3], dim=1)
cat-stack/cat([int32, float64])
cat-stack/stack([int32, float64])
cat-stack/stack([int32, float64], dim=-1)
cat-stack/cat([int32 2x3, float64 2x3], dim=1)
cat-stack/cat([int64, float32])
cat-stack/stack([int64, float32])
cat-stack/stack([int64, float32], dim=-1)
cat-stack/cat([int64 2x3, float32 2x3], dim=1)
cat-stack/cat([int64, float64])
cat-stack/stack([int64, float64])
cat-stack/stack([int64, float64], dim=-1)
cat-stack/cat([int64 2x3, float64 2x3], dim=1)
cat-stack/cat([float32, float64])
cat-stack/stack([float32, float64])
cat-stack/stack([float32, float64], dim=-1)
cat-stack/cat([float32 2x3, float64 2x3], dim=1)
cat-stack/cat([int64, float32, float64])
cat-stack/cat([int64, float64, float32])
cat-stack/cat([float32, int64, float64])
cat-stack/cat([float32, float64, int64])
""")

MECHANISMS['cat-0d'] = (
    "cat of 0-d tensors fails inside normalize_dims with 'not enough values to unpack'; "
    'PyTorch: zero-dimensional tensors cannot be concatenated',
    'tg.cat([tg.tensor(1.0), tg.tensor(2.0)])  # ValueError: not enough values to unpack',
    """
cat-stack/cat([bool[], bool[]])
cat-stack/cat([int32[], int32[]])
cat-stack/cat([int64[], int64[]])
cat-stack/cat([float32[], float32[]])
cat-stack/cat([float64[], float64[]])
""")

MECHANISMS['inplace-int-with-grad'] = (
    'an in-place op on an integer or bool tensor with a float operand requiring grad '
    'crashes in Tensor._rebase (the cast back to the integer dtype leaves no node: '
    "AttributeError 'NoneType' ... 'name'); PyTorch: result type Float can't be cast to "
    'Long',
    'a = tg.tensor([1, 2]); a += tg.ones(2, requires_grad=True)  # AttributeError',
    """
inplace-dtypes/a = bool[3] (outside graph); a += float32[3]
inplace-dtypes/a = bool[3] (outside graph); a += float32[]
inplace-dtypes/a = bool[3] (outside graph); a += float64[3]
inplace-dtypes/a = bool[3] (outside graph); a += float64[]
inplace-dtypes/a = int32[3] (outside graph); a += float32[3]
inplace-dtypes/a = int32[3] (outside graph); a += float32[]
inplace-dtypes/a = int32[3] (outside graph); a += float64[3]
inplace-dtypes/a = int32[3] (outside graph); a += float64[]
inplace-dtypes/a = int64[3] (outside graph); a += float32[3]
inplace-dtypes/a = int64[3] (outside graph); a += float32[]
inplace-dtypes/a = int64[3] (outside graph); a += float64[3]
inplace-dtypes/a = int64[3] (outside graph); a += float64[]
inplace-dtypes/a = bool[3] (outside graph); a -= float32[3]
inplace-dtypes/a = bool[3] (outside graph); a -= float32[]
inplace-dtypes/a = bool[3] (outside graph); a -= float64[3]
inplace-dtypes/a = bool[3] (outside graph); a -= float64[]
inplace-dtypes/a = int32[3] (outside graph); a -= float32[3]
inplace-dtypes/a = int32[3] (outside graph); a -= float32[]
inplace-dtypes/a = int32[3] (outside graph); a -= float64[3]
inplace-dtypes/a = int32[3] (outside graph); a -= float64[]
inplace-dtypes/a = int64[3] (outside graph); a -= float32[3]
inplace-dtypes/a = int64[3] (outside graph); a -= float32[]
inplace-dtypes/a = int64[3] (outside graph); a -= float64[3]
inplace-dtypes/a = int64[3] (outside graph); a -= float64[]
inplace-dtypes/a = bool[3] (outside graph); a *= float32[3]
inplace-dtypes/a = bool[3] (outside graph); a *= float32[]
inplace-dtypes/a = bool[3] (outside graph); a *= float64[3]
inplace-dtypes/a = bool[3] (outside graph); a *= float64[]
inplace-dtypes/a = int32[3] (outside graph); a *= float32[3]
inplace-dtypes/a = int32[3] (outside graph); a *= float32[]
inplace-dtypes/a = int32[3] (outside graph); a *= float64[3]
inplace-dtypes/a = int32[3] (outside graph); a *= float64[]
inplace-dtypes/a = int64[3] (outside graph); a *= float32[3]
inplace-dtypes/a = int64[3] (outside graph); a *= float32[]
inplace-dtypes/a = int64[3] (outside graph); a *= float64[3]
inplace-dtypes/a = int64[3] (outside graph); a *= float64[]
inplace-dtypes/a = bool[3] (outside graph); a /= float32[3]
inplace-dtypes/a = bool[3] (outside graph); a /= float32[]
inplace-dtypes/a = bool[3] (outside graph); a /= float64[3]
inplace-dtypes/a = bool[3] (outside graph); a /= float64[]
inplace-dtypes/a = int32[3] (outside graph); a /= float32[3]
inplace-dtypes/a = int32[3] (outside graph); a /= float32[]
inplace-dtypes/a = int32[3] (outside graph); a /= float64[3]
inplace-dtypes/a = int32[3] (outside graph); a /= float64[]
inplace-dtypes/a = int64[3] (outside graph); a /= float32[3]
inplace-dtypes/a = int64[3] (outside graph); a /= float32[]
inplace-dtypes/a = int64[3] (outside graph); a /= float64[3]
inplace-dtypes/a = int64[3] (outside graph); a /= float64[]
""")

MECHANISMS['pow-zero-base'] = (
    "pow's exponent gradient g * out * log(a) is NaN or inf where a = 0 (0 ** x, a bool "
    'base); PyTorch gives 0 where a = 0 and the exponent is >= 0',
    'x = tg.tensor([0., 1.], requires_grad=True); (0.0 ** x).sum().backward(); x.grad  # [-inf, nan]; PyTorch [0, 0]',
    """
dtypes/bool[3] ** float32[3]
dtypes/bool[3] ** float32[]
dtypes/bool[3] ** float64[3]
dtypes/bool[3] ** float64[]
kinks/0.0 ** x at zeros
kinks/0.0 ** x at constant rows
kinks/0.0 ** x at ties
kinks/0.0 ** x at zeros and signs
kinks/0.0 ** x at -inf entries
kinks/0.0 ** x at +inf entry
kinks/0.0 ** x at large
kinks/0.0 ** x at huge
kinks/0.0 ** x at one column
""")

MECHANISMS['pow-zero-exponent'] = (
    "pow's base gradient g * b * a ** (b - 1) is 0 * inf = NaN at a = 0 when b = 0 (x ** "
    '0); PyTorch gives 0',
    'x = tg.tensor([0., 1.], requires_grad=True); (x ** 0).sum().backward(); x.grad  # [nan, 0]; PyTorch [0, 0]',
    """
kinks/x ** 0 at zeros
kinks/x ** 0 at ties
kinks/x ** 0 at zeros and signs
kinks/x ** 0 at -inf entries
kinks/x ** 0 at +inf entry
kinks/x ** 0 at large
kinks/x ** 0 at huge
kinks/x ** 0.0 at zeros
kinks/x ** 0.0 at ties
kinks/x ** 0.0 at zeros and signs
kinks/x ** 0.0 at -inf entries
kinks/x ** 0.0 at +inf entry
kinks/x ** 0.0 at large
kinks/x ** 0.0 at huge
""")

MECHANISMS['relu-multiplies-mask'] = (
    "relu's gradient g * (x > 0) is inf * 0 = NaN where an infinite gradient meets x = 0 "
    '(sqrt(relu(x)) at 0); PyTorch selects, giving 0',
    'x = tg.tensor([0., 1.], requires_grad=True); x.relu().sqrt().sum().backward(); x.grad  # [nan, 0.5]; PyTorch [0, 0.5]',
    """
kinks/x.relu().sqrt() at zeros
kinks/x.relu().sqrt() at constant rows
kinks/x.relu().sqrt() at ties
kinks/x.relu().sqrt() at zeros and signs
kinks/x.relu().sqrt() at -inf entries
kinks/x.relu().sqrt() at +inf entry
kinks/x.relu().sqrt() at large
kinks/x.relu().sqrt() at huge
kinks/x.relu().sqrt() at one column
""")

MECHANISMS['std-at-zero'] = (
    "std is sqrt(var): where std = 0 (a constant row) sqrt's gradient is inf and var's is"
    " 0, giving NaN, also through (x - mean) / (std + eps); PyTorch's std backward gives "
    '0 there',
    'x = tg.ones(4, requires_grad=True); x.std().backward(); x.grad  # nan; PyTorch 0',
    """
reductions/float32 2x3 .std(0, keepdim=False)
reductions/float32 2x3 .std(0, keepdim=True)
reductions/float64 2x3 .std(0, keepdim=False)
reductions/float64 2x3 .std(0, keepdim=True)
kinks/x.std() at zeros
kinks/x.std(1) at zeros
kinks/x.std(1) at constant rows
kinks/x.std(1, unbiased=False) at zeros
kinks/x.std(1, unbiased=False) at constant rows
kinks/x.std(1, unbiased=False) at one column
kinks/(x - x.mean()) / (x.std() + 1e-5) at zeros
kinks/(x - mean(1)) / (std(1) + 1e-5) at zeros
kinks/(x - mean(1)) / (std(1) + 1e-5) at constant rows
""")

MECHANISMS['cross-entropy-neg-inf'] = (
    'cross_entropy with a -inf logit is NaN, forward and backward: the fused kernel sums '
    'target * logprobs with 0 * -inf; PyTorch gives the finite loss',
    "F.cross_entropy(tg.tensor([[0., -float('inf'), 1.]]), tg.tensor([0]))  # nan; PyTorch 1.3133",
    """
kinks/F.cross_entropy(x, [0, 2]) at -inf entries
kinks/F.cross_entropy(x, [0, 2], 'sum') at -inf entries
kinks/F.cross_entropy(x, [0, 2], 'none') at -inf entries
""")

MECHANISMS['logsumexp-absorbs'] = (
    'log_softmax and cross_entropy compute x - (m + log(sum(exp(x - m)))): for |x| above '
    '~1e16 the log-sum is absorbed into m and the log-probabilities lose it; PyTorch '
    'computes (x - m) - log(sum)',
    'F.log_softmax(tg.tensor([[1e200, 1e200]], dtype=tg.float64), 1)  # [0, 0]; PyTorch [-0.693, -0.693]',
    """
kinks/F.log_softmax(x, 1) at huge
kinks/F.cross_entropy(x, [0, 2]) at huge
kinks/F.cross_entropy(x, [0, 2], 'sum') at huge
kinks/F.cross_entropy(x, [0, 2], 'none') at huge
""")

MECHANISMS['div-gradient-overflow'] = (
    "div's gradient -g * a / (b * b) overflows or underflows when |b| < 1e-154 or > "
    '1e154; PyTorch computes -g * (a / b) / b',
    'x = tg.tensor([1e-300], dtype=tg.float64, requires_grad=True); (x / x).backward(); x.grad  # -inf; PyTorch 0',
    """
kinks/x / x at huge
""")

MECHANISMS['saved-index-unprotected'] = (
    'index tensors and masks an index/setitem node keeps (node.attrs) are outside the '
    'version counter: changed after the forward, they move the gradient (or break '
    'np.add.at for masks); PyTorch refuses at backward',
    'C = tg.ones(5, 2, requires_grad=True); idx = tg.tensor([0, 1]); loss = C[idx].sum(); idx[0] = 3; loss.backward()  # gradient on row 3',
    """
versions/C[idx]; idx[0] = 3; backward
versions/C[idx 2-D]; idx[1, 0] = 4; backward
versions/x[rows, cols]; cols[0] = 2; backward
versions/x[mask]; mask[0] = False; backward
versions/x[x > 0]; mask[...] = True; backward
versions/y[idx, 1] = v; idx[0] = 1; backward
versions/Embedding(idx); idx[0] = 0; backward
""")

MECHANISMS['optimizer-unversioned'] = (
    'optimizer.step() and load_state_dict() write parameters through numpy without noting'
    ' the change (optim.py, Module.load_state_dict): a later backward reads the new '
    'values; PyTorch refuses',
    'w = tg.tensor([.5, -1., 2.], requires_grad=True); opt = tg.optim.SGD([w], lr=.5); loss = (w * w).sum(); w.grad = tg.ones(3); opt.step(); opt.zero_grad(); loss.backward()  # answers',
    """
versions/SGD.step() between forward and backward
versions/SGD(momentum).step() between forward and backward
versions/Adam.step() between forward and backward
versions/load_state_dict between forward and backward (weight read)
versions/backward twice around SGD.step()
""")

MECHANISMS['numpy-of-requires-grad'] = (
    '.numpy() of a tensor that requires grad returns the live array, and writes through '
    'it reach saved values; PyTorch refuses and points to .detach().numpy()',
    'tg.ones(2, requires_grad=True).numpy()  # answers; PyTorch raises',
    """
versions/w.numpy()[0] = 5 (w requires grad); backward
versions/y.numpy() (y requires grad)
""")

MECHANISMS['grad-mode-generators'] = (
    'no_grad / enable_grad / set_grad_enabled used as decorators on generator functions '
    'hold only while the generator object is made, not while its body runs; PyTorch wraps'
    ' the generator',
    '@tg.no_grad()\\ndef g(x): yield x * 2\\nnext(g(tg.ones(1, requires_grad=True))).requires_grad  # True; PyTorch False',
    """
gradmodes/@no_grad() on a generator
gradmodes/@enable_grad() on a generator, consumed under no_grad
gradmodes/@set_grad_enabled(False) on a generator
gradmodes/@no_grad() generator closed early
""")

MECHANISMS['bare-decorator'] = (
    '@no_grad and @enable_grad without parentheses fail with no_grad.__init__() takes 1 '
    'positional argument; PyTorch accepts both forms',
    '@tg.no_grad\\ndef f(x): return x  # TypeError',
    """
gradmodes/bare @no_grad
gradmodes/bare @enable_grad
""")

MECHANISMS['higher-order-unclear'] = (
    'higher-order calls (backward(create_graph=True), backward(inputs=...), '
    'autograd.grad, autograd.backward) fail with bare Python errors; until they exist '
    'they should raise one clear NotImplementedError naming the feature',
    'tg.ones(1, requires_grad=True).sum().backward(create_graph=True)  # TypeError: unexpected keyword',
    """
higher-order/backward(create_graph=True)
higher-order/autograd.grad
higher-order/autograd.grad(create_graph=True), twice
higher-order/autograd.backward([loss])
higher-order/backward(inputs=[x])
""")

MECHANISMS['embedding-indices'] = (
    'nn.Embedding accepts negative indices (numpy counts them from the end) and bool '
    'tensors (used as a mask); PyTorch: index out of range',
    'tg.nn.Embedding(5, 3)(tg.tensor([-1]))  # row 4; PyTorch raises',
    """
nn/Embedding(5, 3)(tensor([-1]))
nn/Embedding(5, 3)(tensor([0, -5]))
nn/Embedding(5, 3)(bool tensor([True, False, True, False, True]))
""")

MECHANISMS['functional-lenient-inputs'] = (
    'nn.functional takes inputs PyTorch refuses: int32 targets for cross_entropy and '
    'one_hot, a list as target, one_hot of an empty tensor without num_classes',
    'F.one_hot(tg.tensor(np.array([0, 1], dtype=np.int32)))  # answers; PyTorch raises',
    """
functional/cross_entropy int32 target
functional/cross_entropy list target
functional/one_hot(empty, -1)
functional/one_hot(int32 tensor([0, 1]))
""")

MECHANISMS['optimizer-arguments'] = (
    'SGD and Adam accept a negative lr, momentum or eps, betas outside [0, 1), non-leaf '
    'parameters and a bare tensor as params (iterated by rows); a string lr fails inside '
    'numpy',
    'tg.optim.SGD([tg.ones(2, requires_grad=True)], lr=-0.1)  # accepted; PyTorch raises',
    """
optim/bad SGD(lr=-0.1)
optim/bad SGD(momentum=-0.5)
optim/bad SGD(lr='0.1')
optim/bad Adam(lr=-1e-3)
optim/bad Adam(betas=(1.0, 0.999))
optim/bad Adam(betas=(0.9, 1.5))
optim/bad Adam(betas=(-0.1, 0.999))
optim/bad Adam(eps=-1e-8)
optim/bad SGD([w * 2]) (not a leaf)
optim/bad SGD(w) (a tensor, not a list)
""")

MECHANISMS['module-names'] = (
    "Module naming differs from PyTorch: Sequential's parameters are layers.0.weight "
    '(PyTorch 0.weight), and BatchNorm1d has no num_batches_tracked buffer, so state '
    'dicts do not line up',
    "[n for n, _ in tg.nn.Sequential(tg.nn.Linear(2, 2)).named_parameters()]  # ['layers.0.weight', ...]",
    """
nn/Sequential named_parameters
nn/Sequential(Linear, BatchNorm1d) state_dict keys
""")

MECHANISMS['bad-argument-unclear'] = (
    'bad arguments reach numpy or Python before any check: negative sizes, a zero arange '
    'step, float dims, an out-of-range transpose or argmax dim, a softmax without dim, a '
    'non-callable layer, a string seed give bare numpy/Python errors',
    'tg.zeros(-1)  # ValueError: negative dimensions are not allowed',
    """
functional/softmax(x) without dim
bad-input/zeros(-1)
bad-input/ones((2, -3))
bad-input/randn(-2)
bad-input/full((2,), 'a')
bad-input/arange(0, 10, 0)
bad-input/x.sum(dim=1.5)
bad-input/x.transpose(0, 5)
bad-input/x.argmax(dim=5)
bad-input/x.to('cpu')
bad-input/F.softmax(x, dim=1.5)
bad-input/nn.Linear(0, 2)(ones(3, 0))
bad-input/nn.Linear(-1, 2)
bad-input/nn.Embedding(-5, 3)
bad-input/nn.Sequential(ReLU-less 'a')(x)
bad-input/manual_seed('a')
""")

MECHANISMS['bad-argument-computed'] = (
    'bad arguments PyTorch refuses are computed: arange(5, 0), multinomial(w, 0), a '
    'repeated dim in mean, flatten with start_dim after end_dim or out of range, var with'
    ' both unbiased and correction',
    'tg.ones(3, 4).flatten(1, 0)  # answers; PyTorch raises',
    """
bad-input/arange(5, 0)
bad-input/multinomial(tensor([1., 2.]), 0)
bad-input/x.mean(dim=(0, 0))
bad-input/x.flatten(3)
bad-input/x.flatten(1, 0)
bad-input/x.var(unbiased=True, correction=1)
""")

MECHANISMS['symbolic-division-by-zero'] = (
    'symbolic: a rewrite divides by a quantity that can be 0 (the loss, sum(x)), so the '
    'gradient is NaN at zero loss: masked MSE, weighted cross-entropy whose loss '
    'underflows, sum(x * sum(x)) at sum(x) = 0',
    'def op(f, x): s = f.sum(x); return f.sum(x * s)  # fused_op(op, dim=-1) at x = [[1., -1.]]: gradient [nan, nan]; PyTorch [0, 0]',
    """
symbolic/masked MSE sum(m(x-y)^2)/sum(m) at zero loss (y = x)
symbolic/masked MSE sum(m(x-y)^2)/sum(m) at zero loss in one row
symbolic/sum(x*sum(x)) at sum(x) = 0
symbolic/weighted cross-entropy at loss underflowing to 0
""")

MECHANISMS['symbolic-name-capture'] = (
    'symbolic: a step named like a kernel variable (g, saved, numpy, _axes_i) captures '
    "it: f.let('g', ...) replaces the upstream gradient, 'saved' and 'numpy' crash",
    "def op(f, x): g = f.let('g', x * 2); return f.sum(g * x)  # gradient wrong",
    """
symbolic/f.let('g', 2x); sum(g*x)
symbolic/f.let('saved', 2x); sum(saved*x)
symbolic/f.let('numpy', 2x); sum(numpy*x)
""")

MECHANISMS['symbolic-unsafe-forms'] = (
    "symbolic: derivative forms chosen by operation count overflow or cancel: silu's "
    "gradient is NaN at 100 in float32; softplus' as 1 - exp(-out) and expm1' as out + 1 "
    "are 0 at -20 in float32; gelu's 1 + erf loses digits at -5; a formula's forward is "
    'compiled literally (log(1 + exp(x)) overflows)',
    "elementwise('silu', 'x/(1+exp(-x))')(tg.tensor([100.], requires_grad=True)).backward()  # grad nan",
    """
symbolic/silu at 100 float32
symbolic/F.softplus at -20 float32
symbolic/F.gelu at -5 float32
symbolic/F.gelu(tanh) at -5 float32
symbolic/log(1+exp(x)) at -20 float32
symbolic/log(1+exp(x)) at 100 float32
symbolic/exp(x)-1 at -20 float32
""")

MECHANISMS['symbolic-hash-seed'] = (
    'symbolic: deriving a fused op with a Piecewise step depends on PYTHONHASHSEED: '
    "rewrite_through_later_names substitutes a step's inverse into the Piecewise and "
    "sympy may compare NaN ('Invalid NaN comparison'), depending on set order; with a "
    "delta of unknown sign, algebra._inverts compares a complex sample ('Invalid "
    "comparison of non-real') under every seed",
    "PYTHONHASHSEED=2: a Huber fused op with f.let('h', Piecewise(...)) and positive=('delta',) raises TypeError",
    """
symbolic/Piecewise Huber (positive delta) under PYTHONHASHSEED=2
symbolic/Piecewise Huber (delta of unknown sign) under PYTHONHASHSEED=0
""")

MECHANISMS['symbolic-max-at-zero'] = (
    "symbolic: Max(x, 0) inside a fused op has gradient 1/2 at 0 (sympy's Heaviside(0) = "
    "1/2); the engine's relu and PyTorch give 0",
    'def op(f, x): return f.sum(sympy.Max(x, 0))  # gradient 0.5 at x = 0',
    """
symbolic/fused sum(Max(x, 0)) at 0
""")

MECHANISMS['symbolic-unchecked-assumptions'] = (
    'symbolic: assumptions given to the simplifier are trusted, not checked: '
    "positive=('a',) called with a < 0 (sqrt(a**2) became a), the built-in cross-entropy "
    'op with target rows not summing to 1',
    "fused_op(..., positive=('a',)) for sum(sqrt(a**2) * x), called with a=-2: the sign flips",
    """
symbolic/positive=('a',): sum(sqrt(a^2) x) at a = -2.0
symbolic/one-hot assumption: cross_entropy op, target rows sum to 0.5
symbolic/one-hot assumption: cross_entropy op, target rows sum to 2.0
""")

MECHANISMS['symbolic-difference'] = (
    "symbolic: difference() reports 'different' for equal expressions that need "
    'together/cancel or a trigonometric/exponential identity (no numeric fallback)',
    'd.difference((x**2 - 1)/(x - 1), x + 1) != 0',
    """
symbolic/difference(1/(x+1) + 1/(x-1), 2*x/(x**2-1))
symbolic/difference((x**2 - 1)/(x - 1), x + 1)
symbolic/difference(sympy.sin(x)**2 + sympy.cos(x)**2, 1)
symbolic/difference(sympy.tanh(x), (sympy.exp(2*x) - 1)/(sympy.exp(2*x) + 1))
symbolic/difference(1/(1 + sympy.exp(-x)), sympy.exp(x)/(1 + sympy.exp(x)))
symbolic/difference(x/(x*x + x), 1/(x + 1))
""")

MECHANISMS['symbolic-names-and-functions'] = (
    'symbolic: a name that is not an identifier (or an unnamed lambda) is pasted into '
    'generated source (SyntaxError), and erfc cannot be compiled (TypeError: Cannot '
    'convert expression to float)',
    "elementwise('leaky-relu', 'x**2')  # SyntaxError",
    """
symbolic/fused_op(lambda f, x: f.sum(x * x))
symbolic/erfc at -100 float32
symbolic/erfc at -100 float64
symbolic/erfc at -20 float32
symbolic/erfc at -20 float64
symbolic/erfc at -5 float32
symbolic/erfc at -5 float64
symbolic/erfc at -0.001 float32
symbolic/erfc at -0.001 float64
symbolic/erfc at 0 float32
symbolic/erfc at 0 float64
symbolic/erfc at 0.001 float32
symbolic/erfc at 0.001 float64
symbolic/erfc at 5 float32
symbolic/erfc at 5 float64
symbolic/erfc at 20 float32
symbolic/erfc at 20 float64
symbolic/erfc at 100 float32
symbolic/erfc at 100 float64
symbolic/elementwise('my op', 'x**2')
symbolic/elementwise('leaky-relu', 'x**2')
symbolic/elementwise('2x', 'x**2')
""")

KNOWN_FAILURES = {case_id: f"{key}: {reason}"
                  for key, (reason, _, ids) in MECHANISMS.items()
                  for case_id in ids.strip().splitlines()}
