"""The default makemore run, shortened, against a tuned numpy loop of the same training.

    python benchmarks/training_run.py [--steps 20000] [--breakdown-steps 2000] [--out DIR]

Runs, in one process:
  compiled   tensorgrad.makemore's own entry point, `--backward compiled`, everything else
             default (all outputs written: checkpoints, loss curve, summary, step graph)
  autograd   the same with the default backward (loss.backward())
  tuned      the same training written as tuned numpy: buffers allocated once, in-place
             ufuncs, column sums as BLAS products with a ones vector, one flat parameter
             buffer updated by one fused SGD step, batch indices drawn in chunks, the same
             learning-rate schedule and batchnorm running statistics; no evaluations, no
             outputs (the loop alone, the reference the targets are set against)
and prints each run's wall time and its ratio to the tuned loop (timed before and after
the two makemore runs; the mean of the two is the reference). Targets: compiled at most
2x, autograd at most 3x.

Then a breakdown of one step's time for each mode, measured (a perf_counter around each
part of the loop, over --breakdown-steps steps, after a warm-up), not estimated: drawing
the batch, forward + backward (in autograd mode also the forward alone), loss.item(), the
optimizer's step, and the bookkeeping around them (the loss list, the progress bar, the
evaluation and checkpoint tests). The parts are makemore's own functions, called as
`train_steps` calls them.
"""
import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tensorgrad import codegen, functional as F, makemore
from tensorgrad.data import build_dataset, load_words, split_words, vocabulary


# ---------------------------------------------------------------- the tuned numpy loop

class TunedTraining:
    """makemore's training in tuned numpy (see the module docstring). Parameters and
    gradients are views of two flat buffers, so the SGD update is one fused operation."""

    def __init__(self, vocab, block, n_embd, n_hidden, batch, seed=0, chunk=1000):
        rng = np.random.default_rng(seed)
        f = np.float32
        fan_in = n_embd * block
        shapes = {"C": (vocab, n_embd), "W1": (fan_in, n_hidden), "b1": (n_hidden,),
                  "bngain": (n_hidden,), "bnbias": (n_hidden,), "W2": (n_hidden, vocab),
                  "b2": (vocab,)}
        sizes = [math.prod(s) for s in shapes.values()]
        self.flat, self.gflat = np.empty(sum(sizes), f), np.empty(sum(sizes), f)
        self.scratch = np.empty_like(self.flat)
        offsets = np.cumsum([0] + sizes)
        self.p, self.g = {}, {}
        for (name, shape), start, end in zip(shapes.items(), offsets, offsets[1:]):
            self.p[name] = self.flat[start:end].reshape(shape)
            self.g[name] = self.gflat[start:end].reshape(shape)
        p = self.p
        p["C"][...] = rng.standard_normal(p["C"].shape)
        p["W1"][...] = rng.standard_normal(p["W1"].shape) * (5 / 3) / fan_in**0.5
        p["b1"][...] = rng.standard_normal(n_hidden) * 0.1
        p["W2"][...] = rng.standard_normal(p["W2"].shape) * 0.1
        p["b2"][...] = rng.standard_normal(vocab) * 0.1
        p["bngain"][...] = rng.standard_normal(n_hidden) * 0.1 + 1.0
        p["bnbias"][...] = rng.standard_normal(n_hidden) * 0.1
        self.running_mean, self.running_var = np.zeros(n_hidden, f), np.ones(n_hidden, f)
        n, self.n, self.chunk = batch, batch, chunk
        self.ones = np.ones(n, f)
        self.rows = np.arange(n)
        self.embcat = np.empty((n, fan_in), f)
        self.hprebn, self.h, self.tmp = (np.empty((n, n_hidden), f) for _ in range(3))
        self.logits = np.empty((n, vocab), f)
        self.rng = np.random.default_rng(seed + 1)

    def step(self, Xb, Yb, lr, momentum=0.1):
        """One training step on the batch; returns the loss (a Python float)."""
        p, g, n, ones = self.p, self.g, self.n, self.ones
        hprebn, h, tmp, logits = self.hprebn, self.h, self.tmp, self.logits
        embcat = self.embcat
        np.take(p["C"], Xb, axis=0, out=embcat.reshape(Xb.shape + (-1,)))
        np.matmul(embcat, p["W1"], out=hprebn)
        hprebn += p["b1"]
        mean = (ones @ hprebn) / n
        hprebn -= mean                                     # bndiff
        np.multiply(hprebn, hprebn, out=tmp)
        var = (ones @ tmp) / (n - 1)
        self.running_mean *= 1 - momentum
        self.running_mean += momentum * mean
        self.running_var *= 1 - momentum
        self.running_var += momentum * var
        bnvar_inv = (var + 1e-5) ** -0.5
        hprebn *= bnvar_inv                                # bnraw
        bnraw = hprebn
        np.multiply(bnraw, p["bngain"], out=h)
        h += p["bnbias"]
        np.tanh(h, out=h)
        np.matmul(h, p["W2"], out=logits)
        logits += p["b2"]
        logits -= logits.max(1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(1, keepdims=True)             # probs
        loss = -np.log(logits[self.rows, Yb]).mean()
        logits[self.rows, Yb] -= 1
        logits /= n                                        # dlogits
        np.matmul(h.T, logits, out=g["W2"])
        np.matmul(ones, logits, out=g["b2"])
        dh = np.matmul(logits, p["W2"].T, out=tmp)
        np.multiply(h, h, out=h)
        np.subtract(1, h, out=h)
        dh *= h                                            # dhpreact
        np.matmul(ones, dh, out=g["bnbias"])
        np.multiply(bnraw, dh, out=h)
        np.matmul(ones, h, out=g["bngain"])
        dh *= p["bngain"]                                  # dbnraw
        np.multiply(dh, bnraw, out=h)
        s2 = ones @ h
        s1 = ones @ dh
        dh *= n
        dh -= s1
        np.multiply(bnraw, s2 * (n / (n - 1)), out=h)
        dh -= h
        dh *= bnvar_inv / n                                # dhprebn
        np.matmul(embcat.T, dh, out=g["W1"])
        np.matmul(ones, dh, out=g["b1"])
        demb = (dh @ p["W1"].T).reshape(Xb.shape + (-1,))
        g["C"][...] = 0
        np.add.at(g["C"], Xb, demb)
        np.multiply(self.gflat, lr, out=self.scratch)      # the whole SGD step, fused
        self.flat -= self.scratch
        return float(loss)

    def train(self, X, Y, steps, lr=0.1, lr_final=0.01):
        """`steps` steps on batches of X, Y drawn in chunks; returns the losses."""
        losses, half, B = [], steps // 2, self.n
        for start in range(0, steps, self.chunk):
            k = min(self.chunk, steps - start)
            ix = self.rng.integers(0, len(X), size=(k, B))
            Xs, Ys = X[ix], Y[ix]                          # (k, B, block), (k, B)
            for i in range(k):
                losses.append(self.step(Xs[i], Ys[i], lr if start + i < half else lr_final))
        return losses


# ---------------------------------------------------------------- the runs

def makemore_run(mode, steps, out):
    """makemore's entry point with everything default but --steps, --out and --backward;
    returns (wall seconds, summary dict)."""
    argv = ["--steps", str(steps), "--out", str(out / mode), "--overwrite"]
    if mode != "autograd":
        argv += ["--backward", mode]
    printed = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        makemore.main(argv)
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / mode / makemore.SUMMARY).read_text())


def tuned_run(steps, args):
    """The tuned loop on the same data, sizes and schedule; returns (seconds, final loss
    averaged over the last 1000 steps)."""
    words = load_words(None)
    stoi, _ = vocabulary(words)
    X, Y = build_dataset(split_words(words)[0], 3, stoi)
    X, Y = np.asarray(X.numpy()), np.asarray(Y.numpy())
    loop = TunedTraining(len(stoi), 3, 10, 200, 32)
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        losses = loop.train(X, Y, steps)
    return time.perf_counter() - start, float(np.mean(losses[-1000:]))


# ---------------------------------------------------------------- the breakdown

PARTS = ("draw the batch", "forward + backward", "loss.item()", "optimizer step",
         "bookkeeping")
FORWARD = "  of which forward"          # autograd mode only: the rest is loss.backward()


def breakdown(mode, steps, warmup=200, round_steps=100):
    """Seconds spent in each part of makemore's loop, in `mode`, over `steps` steps after
    `warmup` (no evaluations: their cost is per run, see above); a generator that yields
    the totals so far after every `round_steps` steps, so that modes can take turns."""
    args = makemore.parse_args(["--steps", str(steps + warmup), "--backward", mode,
                                "--no-progress"])
    words, itos, splits = makemore.load_splits(args)
    (Xtr, Ytr), _, _ = splits
    with tempfile.TemporaryDirectory() as tmp:
        out = type("Out", (), {"path": Path(tmp)})
        run = makemore.Run(args, out, makemore.run_config(args, words, len(itos)))
    model, optimizer = run.model, run.optimizer
    compiled = codegen.compile(lambda Xb, Yb: F.cross_entropy(model(Xb), Yb))
    from tqdm import tqdm
    bar = tqdm(total=args.steps, disable=True)
    clock = time.perf_counter
    totals = dict.fromkeys(PARTS, 0.0)
    batches = makemore.Batches(run.g, Xtr, Ytr, args.batch_size, args.steps)
    with np.errstate(all="ignore"):
        for step in range(args.steps):
            t0 = clock()
            Xb, Yb = batches.next()
            t1 = clock()
            if mode == "autograd":      # as loss_and_gradients, with a clock between the two
                optimizer.zero_grad()
                loss = F.cross_entropy(model(Xb), Yb)
                forward = clock()
                loss.backward()
            else:
                loss = makemore.loss_and_gradients(run, compiled, Xb, Yb)
            t2 = clock()
            loss = loss.item()
            t3 = clock()
            if not math.isfinite(loss):
                raise RuntimeError(f"the loss is {loss} at step {step}")
            optimizer.step()
            t4 = clock()
            run.losses.append(loss)
            done = step + 1
            if step % 100 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", lr=optimizer.lr, refresh=False)
            evaluate = done % args.eval_every == 0 or done == args.steps    # (tested only:
            save = done % args.save_every == 0 and done < args.steps        # the runs above
            bar.update()                                                    # time them)
            t5 = clock()
            if step >= warmup:
                for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                    totals[part] += seconds
                if mode == "autograd":
                    totals[FORWARD] = totals.get(FORWARD, 0.0) + forward - t1
            if done % round_steps == 0:
                assert mode != "compiled" or compiled.last == "compiled", compiled.explain()
                yield totals


def tuned_breakdown(steps, warmup=200, round_steps=100):
    """The same parts for the tuned loop (its step includes the optimizer's update), also
    a generator yielding after every `round_steps` steps."""
    words = load_words(None)
    stoi, _ = vocabulary(words)
    X, Y = build_dataset(split_words(words)[0], 3, stoi)
    X, Y = X.numpy(), Y.numpy()
    loop = TunedTraining(len(stoi), 3, 10, 200, 32)
    clock, total, losses = time.perf_counter, dict.fromkeys(PARTS, 0.0), []
    n = steps + warmup
    with np.errstate(all="ignore"):
        for start in range(0, n, loop.chunk):     # (round_steps divides the chunk)
            t0 = clock()
            k = min(loop.chunk, n - start)
            ix = loop.rng.integers(0, len(X), size=(k, 32))
            Xs, Ys = X[ix], Y[ix]
            t1 = clock()
            total["draw the batch"] += (t1 - t0) * steps / n      # spread over all steps
            for i in range(k):
                t1 = clock()
                loss = loop.step(Xs[i], Ys[i], 0.1)
                t2 = clock()
                losses.append(loss)
                t3 = clock()
                if start + i >= warmup:
                    total["forward + backward"] += t2 - t1
                    total["bookkeeping"] += t3 - t2
                if (start + i + 1) % round_steps == 0:
                    yield total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--breakdown-steps", type=int, default=2000)
    parser.add_argument("--out", help="directory for the runs' outputs (default: a "
                        "temporary one, deleted at the end)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        tuned_before, tuned_loss = tuned_run(args.steps, args)
        runs = {mode: makemore_run(mode, args.steps, out) for mode in ("compiled", "autograd")}
        tuned_after, _ = tuned_run(args.steps, args)
    tuned = (tuned_before + tuned_after) / 2
    print(f"makemore, {args.steps} steps (batch 32, n_hidden 200, float32), one process")
    print(f"  {'':9s} {'wall':>8s}  {'training':>9s}  {'/ tuned':>7s}  {'target':>6s}  "
          "losses (train / val / test)")
    print(f"  {'tuned':9s} {tuned:7.1f}s  {tuned:8.1f}s  {1:7.2f}  {'':6s}  "
          f"(mean of the last 1000 steps' losses: {tuned_loss:.4f}; {tuned_before:.1f} s "
          f"before, {tuned_after:.1f} s after)")
    for mode, target in (("compiled", 2), ("autograd", 3)):
        seconds, summary = runs[mode]
        loss = summary["loss"]
        print(f"  {mode:9s} {seconds:7.1f}s  {summary['seconds']:8.1f}s  "
              f"{seconds / tuned:7.2f}  {target:5d}x  "
              f"{loss['train']:.4f} / {loss['val']:.4f} / {loss['test']:.4f}")
    print("  wall: the whole run (data, training with its 20 evaluations and checkpoints, "
          "final losses,\n  samples, loss curve, step graph); training: the loop alone, "
          "evaluations included")

    print(f"\none step, microseconds, measured over {args.breakdown_steps} steps of each, in "
          "turns of 100 steps")
    loops = {"compiled": breakdown("compiled", args.breakdown_steps),
             "autograd": breakdown("autograd", args.breakdown_steps),
             "tuned": tuned_breakdown(args.breakdown_steps)}
    for totals in zip(*loops.values()):                 # one round of each loop in turn
        pass
    parts = {mode: {part: seconds / args.breakdown_steps * 1e6 for part, seconds in t.items()}
             for mode, t in zip(loops, totals)}
    print(f"  {'':20s}" + "".join(f"{mode:>10s}" for mode in parts))
    for part in PARTS[:2] + (FORWARD,) + PARTS[2:] + ("total",):
        row = [sum(us for name, us in p.items() if name in PARTS) if part == "total"
               else p.get(part) for p in parts.values()]
        print(f"  {part:20s}" + "".join(f"{'-':>10s}" if us is None else f"{us:10.1f}"
                                        for us in row))
    print("  (tuned: the optimizer's fused update is inside its step)")


if __name__ == "__main__":
    sys.exit(main())
