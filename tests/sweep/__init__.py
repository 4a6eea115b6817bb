"""An adversarial sweep of tensorgrad against PyTorch: every result must match PyTorch (in
float64 unless a case is about dtypes) or be refused with a clear error.

    python -m tests.sweep            # run every case, print counts and failures by mechanism
    python -m pytest tests/test_sweep.py

Each case is a small program written once against PyTorch's API and run with
`lib = tensorgrad` and `lib = torch` (harness.py says how results are compared and
classified). The cases, by module:

    cases_indexing  every index form, alone and combined, for getitem and setitem
    cases_dtypes    binary ops, comparisons, in-place ops, cat/stack, reductions and
                    elementwise functions over bool, int32, int64, float32, float64
                    tensors (1-D and 0-d) and Python numbers
    cases_inplace   in-place ops on tensors that have views; the version counter's refusals
    cases_kinks     functions at zeros, ties, constant rows, infinities, huge values
    cases_modes     no_grad / enable_grad / set_grad_enabled; higher-order calls
    cases_nn        nn modules, nn.functional, optimizers, bad arguments
    cases_bad_input bad arguments to tensor methods, creation functions and layers
    cases_symbolic  fused and elementwise ops derived with sympy, difference(), hash seeds

Cases that fail today are listed, with the mechanism behind each, in known_failures.py.
Three environment variables make the sweep larger than the default (which takes about 30 s
under pytest on two cores): `TENSORGRAD_SWEEP_RANDOM` (default 200) random index triples,
`TENSORGRAD_SWEEP_SEEDS` (default 3) PYTHONHASHSEED values to derive a Piecewise fused op
under, and `TENSORGRAD_SWEEP_FULL=1` all six comparisons over every dtype pair and every
kind of setitem value for pairs of index atoms.
"""
import os

from . import (cases_bad_input, cases_dtypes, cases_indexing, cases_inplace, cases_kinks,
               cases_modes, cases_nn, cases_symbolic)

MODULES = (cases_inplace, cases_kinks, cases_modes, cases_nn, cases_bad_input)


def all_cases(random_count=None, seeds=None, full=None):
    """Every case of the sweep, in a fixed order, with unique ids. The arguments default to
    the environment variables above (or 200, 3 and off)."""
    if random_count is None:
        random_count = int(os.environ.get("TENSORGRAD_SWEEP_RANDOM", "200"))
    if seeds is None:
        seeds = int(os.environ.get("TENSORGRAD_SWEEP_SEEDS", "3"))
    if full is None:
        full = os.environ.get("TENSORGRAD_SWEEP_FULL", "") not in ("", "0")
    found = cases_indexing.cases(random_count, full)
    found += cases_dtypes.cases(full)
    for module in MODULES:
        found += module.cases()
    found += cases_symbolic.cases(seeds)
    ids = [c.id for c in found]
    if any(i != i.strip() or "\n" in i for i in ids):
        raise ValueError("sweep: case ids must be one line without surrounding spaces")
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"sweep: duplicate case ids {twice}")
    return found


def prepare(cases):
    """Start the sweep's subprocesses (the Piecewise derivations under other hash seeds) so
    they run while the other cases do."""
    cases_symbolic.launch_huber([c.tags[1:] for c in cases if c.tags[:1] == ("huber",)])
