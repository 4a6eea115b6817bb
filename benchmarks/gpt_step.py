"""Time a training step of the lecture's GPT on tensorgrad and on PyTorch, in one run.

    python benchmarks/gpt_step.py [--repeats 50] [--threads 1] [--config small mid]

A step is the lecture's: forward with the loss, zero_grad, loss.backward(), AdamW.step(),
on random batches of 27 characters, with the model of tensorgrad/gpt.py built for each
library (`gpt_classes`). Configurations (batch, block, n_embd, heads, layers):
  small  16, 32,  64, 4, 2
  mid    32, 64, 128, 4, 4
The steps are timed in turns (lecture_step.timed_in_turns), PyTorch eager on the CPU with
`--threads` threads (numpy's BLAS under tensorgrad gets the same through the
environment, set here before numpy is imported). Peak memory, for each library in a fresh
process: the growth of the peak resident set (VmHWM, Linux) from before the model is built
(after one step of a tiny model: lazy imports, and the derivation of tensorgrad's fused
kernels with sympy, come before) to after ten steps (weights, AdamW's state and the largest step's activations and
gradients); PyTorch's allocator is invisible to tracemalloc, so that is the common
measure. For tensorgrad, tracemalloc's peak of one step is printed too.
"""
import argparse
import os
import statistics
import subprocess
import sys

CONFIGS = {"small": dict(batch=16, block=32, n_embd=64, n_head=4, n_layer=2),
           "mid": dict(batch=32, block=64, n_embd=128, n_head=4, n_layer=4)}
VOCAB = 27


def setup(lib, config, seed=0):
    """The model, its AdamW and 10 random batches on `lib`."""
    import numpy as np
    from tensorgrad.gpt import gpt_classes

    lib.manual_seed(seed)
    model = gpt_classes(lib)(VOCAB, config["block"], config["n_embd"], config["n_head"],
                             config["n_layer"])
    optimizer = lib.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    batches = [(lib.tensor(rng.integers(0, VOCAB, (config["batch"], config["block"]))),
                lib.tensor(rng.integers(0, VOCAB, (config["batch"], config["block"]))))
               for _ in range(10)]
    return model, optimizer, batches


def step(model, optimizer, x, y):
    """One training step, as the lecture writes it."""
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _status(field):
    """A size in bytes from /proc/self/status (Linux): VmRSS now, VmHWM its peak."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def peak_memory(lib_name, config_name):
    """(peak resident-set growth, peak traced bytes or None) of the model, AdamW and ten
    steps on `lib_name`, in bytes, measured in this (fresh) process."""
    import tracemalloc
    config = CONFIGS[config_name]
    lib = __import__(lib_name)
    if lib_name == "torch":
        lib.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warm = setup(lib, dict(batch=2, block=4, n_embd=8, n_head=2, n_layer=1))
    step(warm[0], warm[1], *warm[2][0])     # lazy imports and tensorgrad's derived kernels
    del warm
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                        # VmHWM := VmRSS (ru_maxrss would count the parent)
    before = _status("VmRSS")
    model, optimizer, batches = setup(lib, config)
    for x, y in batches:
        step(model, optimizer, x, y)
    rss = _status("VmHWM") - before
    if lib_name == "torch":
        return rss, None
    tracemalloc.start()                     # after the steps above: AdamW's state exists
    step(model, optimizer, *batches[0])
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rss, traced


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="steps per library and "
                        "configuration, in 10 turns (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads for PyTorch and "
                        "numpy's BLAS (default: %(default)s)")
    parser.add_argument("--config", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--memory-of", nargs=2, help=argparse.SUPPRESS)   # the child run
    args = parser.parse_args()
    if args.memory_of:
        print(*peak_memory(*args.memory_of))
        return

    import tensorgrad
    import torch
    from lecture_step import ratio, timed_in_turns

    torch.set_num_threads(args.threads)
    for name in args.config:
        config = CONFIGS[name]
        steps = {}
        for lib in (tensorgrad, torch):
            model, optimizer, batches = setup(lib, config)
            steps[lib.__name__] = (lambda x, y, m=model, o=optimizer: step(m, o, x, y), batches)
        times = timed_in_turns(steps, max(1, args.repeats // 10))
        memory = {lib: subprocess.run(
            [sys.executable, __file__, "--threads", str(args.threads), "--memory-of", lib, name],
            capture_output=True, text=True, check=True, env=os.environ).stdout.split()
            for lib in steps}
        print(f"{name}: batch {config['batch']}, block {config['block']}, n_embd "
              f"{config['n_embd']}, {config['n_head']} heads, {config['n_layer']} layers; "
              f"{args.threads} thread(s), {args.repeats} steps each in 10 turns")
        for lib in steps:
            traced = "" if memory[lib][1] == "None" else \
                f" (tracemalloc: {int(memory[lib][1]) / 2**20:.1f} MB in one step)"
            print(f"  {lib:11s} {statistics.median(times[lib]) * 1e3:8.2f} ms/step  "
                  f"{ratio(times, lib, 'torch'):5.2f}x torch   peak RSS growth "
                  f"{int(memory[lib][0]) / 2**20:6.1f} MB{traced}")
        print(f"  memory ratio (tensorgrad / torch, RSS growth): "
              f"{int(memory['tensorgrad'][0]) / int(memory['torch'][0]):.2f}")


if __name__ == "__main__":
    if "--threads" in sys.argv:      # before numpy loads its BLAS
        os.environ["OMP_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = os.environ["OMP_NUM_THREADS"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
