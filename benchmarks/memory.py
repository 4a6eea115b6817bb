"""Memory of the lecture's training step: what a graph keeps, and the peak of a large step.

    python benchmarks/memory.py [--hidden 200] [--batch 32] [--large-hidden 1024] [--large-batch 4096]

1. What a kept graph holds. A training loop that keeps its losses (`lossi.append(loss)`,
   the classic slip) keeps each step's graph alive. This counts the bytes of the arrays the
   graph of one lecture step keeps, before and after `loss.backward()`, in tensorgrad (every
   array a node keeps) and in PyTorch (every tensor a node saved for backward; PyTorch frees
   them in backward), and prints the ratio.
2. The peak of a large step. The peak memory numpy allocates during one forward + backward
   of the lecture's MLP at batch 4096 and n_hidden 1024, in tensorgrad eager and in the same
   step written in plain numpy (the lecture's exercise 4), measured by tracemalloc (numpy
   reports its allocations to it), and the ratio.
"""
import argparse
import tracemalloc

import numpy as np

import tensorgrad
from lecture_step import backward_step, forward, make_params, numpy_step

VOCAB, N_EMBD, BLOCK = 27, 10, 3


def graph_bytes(loss):
    """Bytes of the distinct arrays the nodes of `loss`'s graph keep (tensorgrad)."""
    seen, total = set(), 0
    for node in tensorgrad.autograd.topological_order(loss.grad_fn):
        arrays = list(node.inputs) + [node.out] + list((node.extras or {}).values())
        for value in arrays:
            for a in value.values() if isinstance(value, dict) else [value]:
                if isinstance(a, np.ndarray) and id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
    return total


def torch_graph_bytes(loss):
    """Bytes of the distinct tensors the nodes of `loss`'s graph saved for backward (PyTorch);
    a saved tensor that backward already freed counts nothing."""
    seen, total, stack, visited = set(), 0, [loss.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in visited:
            continue
        visited.add(fn)
        for name in dir(fn):
            if not name.startswith("_saved_"):
                continue
            try:
                value = getattr(fn, name)
            except RuntimeError:                     # freed by backward
                continue
            for t in value if isinstance(value, (list, tuple)) else [value]:
                if hasattr(t, "untyped_storage"):
                    key = t.untyped_storage().data_ptr()
                    if key not in seen:
                        seen.add(key)
                        total += t.untyped_storage().nbytes()
        stack.extend(f for f, _ in fn.next_functions)
    return total


def kept_graph(hidden, batch):
    params = make_params(VOCAB, N_EMBD, BLOCK, hidden)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, VOCAB, (batch, BLOCK)), rng.integers(0, VOCAB, batch)
    rows = {}
    P = [tensorgrad.tensor(v, requires_grad=True) for v in params.values()]
    X, Y = tensorgrad.tensor(x), tensorgrad.tensor(y)
    loss = forward(tensorgrad, P, X, Y)
    before = graph_bytes(loss)
    loss.backward()
    rows["tensorgrad"] = (before, graph_bytes(loss))
    tracemalloc.start()
    kept = []
    for _ in range(100):                    # lossi.append(loss): 100 steps' graphs kept
        loss = forward(tensorgrad, P, X, Y)
        loss.backward()
        kept.append(loss)
    held = tracemalloc.get_traced_memory()[0]
    kept.clear()
    held -= tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    try:
        import torch
    except ImportError:
        print("(PyTorch not installed: no torch row)")
    else:
        TP = [torch.tensor(v, requires_grad=True) for v in params.values()]
        loss = forward(torch, TP, torch.tensor(x), torch.tensor(y))
        before = torch_graph_bytes(loss)
        loss.backward()
        rows["torch"] = (before, torch_graph_bytes(loss))
    print(f"what the graph of one step keeps (batch {batch}, n_hidden {hidden}), KiB:")
    print(f"  {'':11s} {'before backward':>16s} {'after backward':>16s}")
    for name, (b, a) in rows.items():
        print(f"  {name:11s} {b / 1024:16.1f} {a / 1024:16.1f}")
    print(f"  a kept loss holds {held / 100 / 1024:.1f} KiB in all after backward (arrays and "
          "graph objects, tracemalloc, over 100 kept steps)")
    if "torch" in rows:
        (tb, ta), (pb, pa) = rows["tensorgrad"], rows["torch"]
        print(f"  before backward: {tb / pb:.2f}x torch; after: {ta} bytes against {pa} "
              "(tensorgrad keeps the constants, drawings and generated code replay them)")


def peak(fn):
    """Peak bytes numpy allocates while `fn()` runs (tracemalloc), beyond what was there."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    top = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return top - base


def large_step(hidden, batch):
    params = make_params(VOCAB, N_EMBD, BLOCK, hidden)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, VOCAB, (batch, BLOCK)), rng.integers(0, VOCAB, batch)
    P = [tensorgrad.tensor(v, requires_grad=True) for v in params.values()]
    X, Y = tensorgrad.tensor(x), tensorgrad.tensor(y)
    arrays = list(params.values())
    backward_step(tensorgrad, P, X, Y)                  # warm: derivations, caches
    numpy_peak = peak(lambda: numpy_step(arrays, x, y))
    for p in P:
        p.grad = None
    tensorgrad_peak = peak(lambda: backward_step(tensorgrad, P, X, Y))
    print(f"peak memory of one step (batch {batch}, n_hidden {hidden}), MB:")
    print(f"  numpy plain  {numpy_peak / 1e6:8.1f}")
    print(f"  tensorgrad   {tensorgrad_peak / 1e6:8.1f}   {tensorgrad_peak / numpy_peak:.2f}x numpy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--large-hidden", type=int, default=1024)
    parser.add_argument("--large-batch", type=int, default=4096)
    args = parser.parse_args()
    kept_graph(args.hidden, args.batch)
    large_step(args.large_hidden, args.large_batch)


if __name__ == "__main__":
    main()
