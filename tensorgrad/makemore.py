"""makemore: train the names MLP of the lecture, evaluate it, and sample new names.

    python examples/makemore.py [--steps 200000] [--out out] [--backward manual] ...
    tensorgrad-makemore ...                       (the same, as an installed command)

The model: embedding -> linear -> batchnorm -> tanh -> linear -> cross-entropy, on
contexts of `block_size` characters. Writes to --out: the loss curve (loss.png), a
checkpoint (checkpoint.npz, no pickle), a summary (summary.json) and, when Graphviz's `dot`
program is installed, the graph of one training step (step_graph.svg).

Nothing is lost: Ctrl-C, SIGTERM and SIGHUP stop at a step boundary with a checkpoint; a
checkpoint is also saved every --save-every steps; every file is replaced whole or not at
all; one run at a time holds --out (see tensorgrad/rundir.py). Nothing hangs: samples are
cut at twice the longest word, and a loss that is not finite stops the run. Memory stays
bounded: the splits are evaluated in chunks of rows.
"""
import argparse
import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from . import __version__, functional as F
from .autograd import keep_grads, no_grad
from .creation import Generator, from_numpy, multinomial, randint, randn, tensor, zeros_like
from .data import DataError, build_dataset, fingerprint, load_words, split_words, vocabulary
from .nn import BatchNorm1d, Embedding, Linear, Module
from .optim import SGD
from .rundir import (RunDirectory, RunError, WriteError, checkpoint_arrays, load_checkpoint,
                     refuse_to_replace)

CHECKPOINT, SUMMARY, CURVE = "checkpoint.npz", "summary.json", "loss.png"
STEP_GRAPH = "step_graph.svg"
EVAL_FLOATS = 2**18         # floats per activation when evaluating in chunks (1 MB): the val
                            # split took 23 ms in chunks of this size, 42 ms in chunks of 4 MB
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")      # SIGHUP: the terminal closed


class NamesMLP(Module):
    """The lecture's MLP: a character embedding, one batchnormed tanh layer, the logits.

    Initialised as in the lecture: small random values everywhere, the hidden layer scaled
    by (5/3)/sqrt(fan_in) (tanh's gain), the output layer by 0.1.
    """

    def __init__(self, vocab_size, block_size, n_embd=10, n_hidden=200, generator=None):
        g = generator
        fan_in = n_embd * block_size
        self.embedding = Embedding(vocab_size, n_embd, generator=g)
        self.hidden = Linear(fan_in, n_hidden, generator=g)
        self.bn = BatchNorm1d(n_hidden)
        self.out = Linear(n_hidden, vocab_size, generator=g)
        with no_grad():
            self.hidden.weight.data[...] = randn(n_hidden, fan_in, generator=g) * (5/3) / fan_in**0.5
            self.hidden.bias.data[...] = randn(n_hidden, generator=g) * 0.1
            self.out.weight.data[...] = randn(vocab_size, n_hidden, generator=g) * 0.1
            self.out.bias.data[...] = randn(vocab_size, generator=g) * 0.1
            self.bn.weight.data[...] = randn(n_hidden, generator=g) * 0.1 + 1.0
            self.bn.bias.data[...] = randn(n_hidden, generator=g) * 0.1

    def forward(self, X):
        emb = self.embedding(X)                          # (B, block_size, n_embd)
        embcat = emb.view(emb.shape[0], -1)              # (B, block_size * n_embd)
        h = self.bn(self.hidden(embcat)).tanh()          # (B, n_hidden)
        return self.out(h)                               # (B, vocab_size)


# ---------------------------------------------------------------- the manual backward

def manual_step(model, Xb, Yb):
    """Forward and a hand-written backward (the lecture's exercise 4), without the graph.

    Returns the loss and the gradients, in `model.parameters()` order.
    """
    C, W1, b1 = model.embedding.weight, model.hidden.weight, model.hidden.bias
    bngain, bnbias, W2, b2 = model.bn.weight, model.bn.bias, model.out.weight, model.out.bias
    n = Xb.shape[0]
    with no_grad():
        emb = C[Xb]                                      # (n, block_size, n_embd)
        embcat = emb.view(n, -1)
        hprebn = embcat @ W1.T + b1                      # (n, n_hidden)
        bnmean = hprebn.mean(0, keepdim=True)
        bnvar = hprebn.var(0, keepdim=True, unbiased=True)
        bnvar_inv = (bnvar + 1e-5)**-0.5
        bnraw = (hprebn - bnmean) * bnvar_inv
        h = (bngain * bnraw + bnbias).tanh()
        logits = h @ W2.T + b2                           # (n, vocab_size)
        loss = F.cross_entropy(logits, Yb)

        dlogits = F.softmax(logits, 1)                   # exercise 2: fused cross-entropy
        dlogits[range(n), Yb] -= 1
        dlogits /= n
        dh = dlogits @ W2
        dW2 = dlogits.T @ h
        db2 = dlogits.sum(0)
        dhpreact = (1.0 - h**2) * dh
        dbngain = (bnraw * dhpreact).sum(0)
        dbnbias = dhpreact.sum(0)
        dhprebn = bngain * bnvar_inv / n * (             # exercise 3: fused batchnorm
            n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
        dembcat = dhprebn @ W1
        dW1 = dhprebn.T @ embcat
        db1 = dhprebn.sum(0)
        demb = dembcat.view(emb.shape)
        dC = zeros_like(C)
        np.add.at(dC.numpy(), Xb.numpy(), demb.numpy())  # repeated characters add up
        # the running statistics, as the module would update them in training mode
        m = model.bn.momentum
        model.bn.running_mean.data[...] = (1 - m) * model.bn.running_mean.data + m * bnmean.data[0]
        model.bn.running_var.data[...] = (1 - m) * model.bn.running_var.data + m * bnvar.data[0]
    grads = {id(C): dC, id(W1): dW1, id(b1): db1, id(bngain): dbngain, id(bnbias): dbnbias,
             id(W2): dW2, id(b2): db2}
    return loss, [grads[id(p)] for p in model.parameters()]


def autograd_step(model, Xb, Yb):
    """Forward through the modules and `loss.backward()`; the gradients add up in `.grad`
    (reset them first)."""
    loss = F.cross_entropy(model(Xb), Yb)
    loss.backward()
    return loss


def compare_backwards(model, Xb, Yb):
    """Check the manual backward against autograd on one batch; print a `cmp`-style table."""
    state = model.state_dict()
    _, manual = manual_step(model, Xb, Yb)
    model.load_state_dict(state)                         # undo the running-stat update
    model.zero_grad()
    autograd_step(model, Xb, Yb)
    model.load_state_dict(state)
    print("manual backward vs autograd, first batch:")
    ok = True
    for (name, p), d in zip(model.named_parameters(), manual):
        exact = bool(np.array_equal(d.data, p.grad.data))
        approx = bool(np.allclose(d.data, p.grad.data, rtol=1e-4, atol=1e-6))
        ok &= approx
        maxdiff = float(np.abs(d.data - p.grad.data).max())
        print(f"  {name:16s} | exact: {str(exact):5s} | approximate: {str(approx):5s} "
              f"| maxdiff: {maxdiff:.3g}")
    print("  exact: equal bit for bit. maxdiff: the largest |manual - autograd| over the\n"
          "  tensor's entries. The two compute the same sums in different orders (the manual\n"
          "  backward fuses steps that autograd takes one by one), and float32 rounds every\n"
          "  operation to 24 bits (about 7 significant digits), so exact equality is unlikely;\n"
          "  'approximate' (a relative difference of at most 1e-4, plus 1e-6) is the check.")
    return ok


# ---------------------------------------------------------------- evaluation and sampling

def row_chunks(model, n):
    """Slices of n rows, each small enough that the widest activation of `model` in it
    holds at most EVAL_FLOATS floats: memory stays bounded whatever the split's size."""
    width = max(model.hidden.weight.shape + model.out.weight.shape)
    rows = max(1, EVAL_FLOATS // width)
    return [slice(i, i + rows) for i in range(0, n, rows)]


def running_sum(parts):
    """The sum over the rows of all `parts` (arrays of the same width), in one running sum.

    numpy sums a whole array along its first axis row after row into one accumulator;
    carrying the total into the next part's sum keeps that order, so the result equals
    the sum of the parts stacked into one array, bit for bit.
    """
    total = None
    for part in parts:
        stacked = part if total is None else np.concatenate([total, part])
        total = np.add.reduce(stacked, axis=0, keepdims=True)      # (1, width)
    return total


@no_grad()
def calibrate(model, X):
    """Set batchnorm's running statistics to the mean and (n - 1)-variance of the hidden
    layer's pre-activations over all of X (the training set), computed chunk by chunk.

    The same numbers as `hpre.mean(0)` and `hpre.var(0)` of the whole split in one batch
    (tests/test_makemore_robustness.py checks), without holding that batch.
    """
    def hpre(rows):
        Xc = X[rows]
        return model.hidden(model.embedding(Xc).view(Xc.shape[0], -1)).numpy()   # (rows, n_hidden)

    n, chunks = X.shape[0], row_chunks(model, X.shape[0])
    mean = running_sum(hpre(rows) for rows in chunks) / n                    # as ops.Mean
    var = running_sum(np.square(hpre(rows) - mean) for rows in chunks) / (n - 1)   # ops.Var
    model.bn.running_mean.data[...] = mean[0]
    model.bn.running_var.data[...] = var[0]


@no_grad()
def split_loss(model, X, Y):
    """The mean cross-entropy of the model (in eval mode) on a split, chunk by chunk.

    Each row's loss is independent of the other rows, and the mean is taken once, over all
    of them, as for the whole split in one batch: the same number, bit for bit.
    """
    model.eval()
    try:
        rows = [F.cross_entropy(model(X[r]), Y[r], reduction="none").numpy()
                for r in row_chunks(model, X.shape[0])]
    finally:
        model.train()
    return tensor(np.concatenate(rows)).mean().item()


@no_grad()
def sample(model, itos, block_size, count, generator, max_length):
    """`count` new words: draw characters from softmax(logits) until '.' comes, or until
    the word has `max_length` characters (a model that never learned to end a word, such
    as a diverged one, would otherwise go on for ever)."""
    model.eval()
    words = []
    for _ in range(count):
        context, out = [0] * block_size, []
        while len(out) < max_length:
            probs = F.softmax(model(tensor([context])), 1)
            ix = multinomial(probs, num_samples=1, generator=generator).item()
            context = context[1:] + [ix]
            if ix == 0:
                break
            out.append(itos[ix])
        words.append("".join(out))
    model.train()
    return words


def write_step_graph(model, Xb, Yb, path):
    """Draw one training step (forward values and every gradient) to `path`, an SVG.

    Needs the `dot` program of Graphviz; without it, or if drawing fails, prints a
    one-line note and returns False. Leaves the parameters and batchnorm's running
    statistics as they were.
    """
    from . import viz

    if not viz.dot_available():
        print(f"note: {path.name} not written: Graphviz's dot program is not installed "
              "(e.g. apt-get install graphviz)")
        return False
    state = model.state_dict()
    model.zero_grad()
    with keep_grads():                      # every value and gradient kept, to be drawn
        logits = model(Xb)
        loss = F.cross_entropy(logits, Yb)
        loss.backward()
    names = dict(model.named_parameters()) | {"logits": logits, "loss": loss}
    try:
        viz.render(loss, path, names=names, modules=model, open=True)   # a frame a module
    except (viz.RenderError, OSError) as e:
        print(f"note: {path.name} not written: {e}")
        return False
    finally:
        model.load_state_dict(state)                     # undo the running-stat update
        model.zero_grad()
    return True


# ---------------------------------------------------------------- checkpoints

# what decides a run's result: a checkpoint resumes only a run that agrees on all of it
# (--backward may change: autograd and compiled give the same numbers, manual nearly)
MUST_MATCH = ("data_sha256", "vocab_size", "block_size", "n_embd", "n_hidden", "batch_size",
              "steps", "lr", "lr_final", "seed")


def run_config(args, words, vocab_size):
    """The configuration stored in checkpoints and the summary, with the data's fingerprint."""
    return {"data": str(args.data or "names.txt (bundled)"), "words": len(words),
            "data_sha256": fingerprint(words), "vocab_size": vocab_size,
            "block_size": args.block_size, "n_embd": args.n_embd, "n_hidden": args.n_hidden,
            "batch_size": args.batch_size, "steps": args.steps, "lr": args.lr,
            "lr_final": args.lr_final, "seed": args.seed, "backward": args.backward}


# ---------------------------------------------------------------- the loss curve

def plot_losses(f, losses, val_curve, final_val, lr_change=None):
    """Write the loss curve (see `loss_figure`) as a PNG to the binary file `f`."""
    fig = loss_figure(losses, val_curve, final_val, lr_change)
    import matplotlib.pyplot as plt                 # after loss_figure chose the backend
    try:
        fig.savefig(f, format="png")
    finally:
        plt.close(fig)


def loss_figure(losses, val_curve, final_val, lr_change=None):
    """The loss curve, a matplotlib figure.

    The per-step loss as faint dots (at most 20,000, evenly spread); its mean over windows
    sized to the run (200 windows, 1,000 steps each in the default run); the val loss at each evaluation, with batchnorm's
    running statistics, and at the end, calibrated on the training set; a dashed line
    where the learning rate changes (`lr_change`: (step, lr before, lr after)). The loss
    axis turns logarithmic when the values span more than a factor of 10 (a diverged run).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(losses, dtype=np.float64)
    n = len(losses)
    steps = np.arange(1, n + 1)
    window = max(1, n // 200)
    whole = n // window * window
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    means = losses[:whole].reshape(-1, window).mean(1)
    val = np.asarray(val_curve, dtype=np.float64).reshape(-1, 2)       # (step, loss) rows
    if window > 1:      # dots, fainter the more there are: their density shows the spread
        stride = max(1, n // 20_000)                 # more would only fill the picture
        ax.plot(steps[::stride], losses[::stride], ".", color="C0", ms=2, mec="none",
                alpha=min(0.5, max(0.05, 2000 * stride / n)),
                label="loss at each step" if stride == 1 else f"loss every {stride} steps")
    ax.plot(steps[:whole].reshape(-1, window).mean(1), means, color="C0", lw=1.5,
            label="training loss" + (f", mean of {window:,} steps" if window > 1 else ""))
    if len(val):
        ax.plot(val[:, 0], val[:, 1], "o-", color="C1", ms=3, lw=1,
                label="val loss (batchnorm's running statistics)")
    ax.plot([n], [final_val], "*", color="C3", ms=12, clip_on=False,
            label=f"val loss at the end (batchnorm calibrated): {final_val:.4f}")
    if lr_change and 0 < lr_change[0] < n:
        step, before, after = lr_change
        ax.axvline(step, color="0.4", ls="--", lw=1)
        ax.annotate(f"lr {before:g} \u2192 {after:g}", (step, 1), xytext=(4, -14),
                    xycoords=("data", "axes fraction"), textcoords="offset points", color="0.3")
    # the raw loss's outliers may leave the frame; the averages and val points may not
    shown = np.concatenate([np.percentile(losses, [0.5, 99.5]) if n else [], means,
                            val[:, 1], [final_val]])
    bottom, top = shown.min() * 0.97, shown.max() * 1.03
    if top / bottom > 10:
        ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xlim(0, max(n, 1))
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss" + (" (log scale)" if top / bottom > 10 else ""))
    ax.set_title(f"names MLP: {n:,} steps")
    ax.grid(alpha=0.3)
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=9,
                       frameon=False)
    legend.legend_handles[0].set_alpha(0.6)          # the faint dots, visible in the legend
    legend.legend_handles[0].set_markersize(5)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the options

def parse_args(argv):
    """The command-line options, refusing impossible values up front in one line."""
    p = argparse.ArgumentParser(
        prog="makemore", description=__doc__.splitlines()[0],
        epilog="Ctrl-C, SIGTERM and SIGHUP stop training at a step boundary and save a "
        "checkpoint; --resume continues it. Problems are reported in one line (see "
        "docs/errors.md).")
    p.add_argument("--data", metavar="FILE", help="a UTF-8 words file, one word per line "
                   "(default: the bundled names.txt)")
    p.add_argument("--out", metavar="DIR", default="out", help="directory for the outputs "
                   "(default: %(default)s)")
    p.add_argument("--steps", metavar="N", type=int, default=200_000, help="training steps "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", metavar="N", type=int, default=32, help="examples per step "
                   "(default: %(default)s)")
    p.add_argument("--block-size", metavar="N", type=int, default=3, help="characters of "
                   "context (default: %(default)s)")
    p.add_argument("--n-embd", metavar="N", type=int, default=10, help="embedding size "
                   "(default: %(default)s)")
    p.add_argument("--n-hidden", metavar="N", type=int, default=200, help="hidden layer size "
                   "(default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate, first half of the "
                   "steps (default: %(default)s)")
    p.add_argument("--lr-final", metavar="LR", type=float, default=0.01, help="learning rate, "
                   "second half (default: %(default)s)")
    p.add_argument("--seed", metavar="N", type=int, default=2147483647, help="random seed "
                   "(default: %(default)s)")
    p.add_argument("--samples", metavar="N", type=int, default=20, help="names to sample at "
                   "the end (default: %(default)s)")
    p.add_argument("--backward", choices=("autograd", "manual", "compiled"), default="autograd",
                   help="autograd (loss.backward()), the hand-written backward, or autograd "
                   "compiled to generated numpy code (tensorgrad.codegen) (default: "
                   "%(default)s)")
    p.add_argument("--eval-every", metavar="N", type=int, help="steps between evaluations of "
                   "the val loss (default: a twentieth of --steps)")
    p.add_argument("--save-every", metavar="N", type=int, default=10_000, help="steps between "
                   "checkpoints (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint of "
                   "another run in DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (nor progress "
                   "lines, when the output is not a terminal)")
    args = p.parse_args(argv)
    if args.eval_every is None:
        args.eval_every = max(1, args.steps // 20)
    problems = [f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
                for name in ("steps", "block_size", "n_embd", "n_hidden", "eval_every",
                             "save_every") if getattr(args, name) < 1]
    if args.batch_size < 2:
        problems.append(f"--batch-size must be at least 2 (batchnorm needs a variance), got "
                        f"{args.batch_size}")
    problems += [f"--{name} must not be negative, got {getattr(args, name)}"
                 for name in ("samples", "seed") if getattr(args, name) < 0]
    problems += [f"--{name.replace('_', '-')} must be a positive number, got {getattr(args, name)}"
                 for name in ("lr", "lr_final") if not 0 < getattr(args, name) < math.inf]
    if args.resume and args.overwrite:
        problems.append("--resume and --overwrite contradict each other; pick one")
    if problems:
        sys.exit(f"makemore: error: {'; '.join(problems)}")
    return args


# ---------------------------------------------------------------- the run

class Stopped(KeyboardInterrupt):
    """Training stopped at a step boundary by a signal (the checkpoint is saved)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_requests():
    """Within the block, SIGINT (Ctrl-C), SIGTERM and SIGHUP do not stop the program: they
    are recorded in the list it yields, for the loop to stop at its next step boundary."""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received                      # only the main thread may handle signals
        return
    previous = {}
    for name in STOP_SIGNALS:
        if hasattr(signal, name):           # SIGHUP is POSIX only
            number = getattr(signal, name)
            previous[number] = signal.signal(number, lambda signum, _: received.append(signum))
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def load_splits(args):
    """The words, their vocabulary and the train / val / test (X, Y) tensors.

    Refuses (DataError) a data set with an empty split or fewer training examples than a
    batch, before anything is trained.
    """
    words = load_words(args.data)
    stoi, itos = vocabulary(words)
    parts = split_words(words)
    name = args.data or "names.txt"
    if not all(parts):
        sizes = " / ".join(str(len(part)) for part in parts)
        raise DataError(f"{name}: {len(words)} words split into {sizes} train / val / test "
                        "words, and each split needs at least one; give it more words")
    splits = [build_dataset(part, args.block_size, stoi) for part in parts]
    if len(splits[0][0]) < args.batch_size:
        raise DataError(f"{name}: only {len(splits[0][0])} training examples, fewer than a "
                        f"batch of {args.batch_size}")
    return words, itos, splits


class Run:
    """A run between steps: the model, its optimizer and random numbers, the losses so far,
    and the checkpoint that saves them in --out."""

    def __init__(self, args, out, config):
        self.args, self.out, self.config = args, out, config
        self.path = out.path / CHECKPOINT
        self.g = Generator().manual_seed(args.seed)
        self.model = NamesMLP(config["vocab_size"], args.block_size, args.n_embd, args.n_hidden,
                              generator=self.g)
        self.half = args.steps // 2
        self.optimizer = SGD(self.model.parameters(), lr=args.lr, lr_schedule=lambda step:
                             args.lr if step < self.half else args.lr_final)
        self.losses, self.val_curve = [], []     # per step; (step, val loss) per evaluation
        self.saved_at = None                     # the step of the checkpoint on disk, if any

    def resume(self):
        self.losses, self.val_curve = load_checkpoint(self.path, self.model, self.optimizer,
                                                      self.g, self.config, MUST_MATCH)
        self.saved_at = self.optimizer.steps

    def save(self):
        self.out.save_checkpoint(CHECKPOINT, checkpoint_arrays(
            self.model, self.optimizer, self.g, self.losses, self.val_curve, self.config))
        self.saved_at = self.optimizer.steps

    def kept(self):
        """Which checkpoint is on disk, in words."""
        return (f"{self.path} keeps step {self.saved_at}" if self.saved_at is not None
                else "no checkpoint was saved")


def loss_and_gradients(run, compiled, Xb, Yb):
    """One batch's loss, with the gradients in the parameters' `.grad`, the --backward way."""
    run.optimizer.zero_grad()
    if run.args.backward == "manual":
        loss, grads = manual_step(run.model, Xb, Yb)
        for p, grad in zip(run.optimizer.params, grads):
            p.grad = grad
        return loss
    if run.args.backward == "compiled":
        return compiled(Xb, Yb)
    return autograd_step(run.model, Xb, Yb)


class Batches:
    """The training batches, drawn from `generator` as one `randint` per step would draw
    them, but in chunks of up to `chunk` steps: one draw and two gathers per chunk instead
    of per step (in the default run they cost more than the optimizer's step).

    The numbers are the same: numpy draws int64s below 2**32 from 32-bit halves of the
    generator's 64-bit outputs and keeps an unused half in the generator's state, so one
    draw of k * 32 integers gives the same integers, and leaves the same state, as k draws
    of 32 (tests/test_makemore.py checks, with ranges that reject many draws too).
    `sync()` puts the generator in the state it would have after the batches handed out so
    far (for a checkpoint) and forgets the rest of the chunk.
    """

    def __init__(self, generator, X, Y, batch_size, steps, chunk=1000):
        self.g, self.X, self.Y, self.batch_size = generator, X, Y, batch_size
        self.steps, self.chunk = steps, chunk      # steps: how many batches are left at most
        self.pieces, self.start = [], None

    def next(self):
        """The next batch (Xb, Yb): views of the chunk's rows."""
        if not self.pieces:
            self._draw()
        self.handed += 1
        return self.pieces.pop()

    def _draw(self):
        k = max(1, min(self.chunk, self.steps))
        self.steps -= k
        self.start, self.handed = self.g.get_state(), 0
        ix = randint(0, self.X.shape[0], (k * self.batch_size,), generator=self.g)
        X, Y = self.X[ix].numpy(), self.Y[ix].numpy()           # (k * B, ...), (k * B,)
        B = self.batch_size
        self.pieces = [(from_numpy(X[i:i + B]), from_numpy(Y[i:i + B]))
                       for i in range((k - 1) * B, -1, -B)]    # popped from the end

    def sync(self):
        """Set the generator's state to follow the batches handed out, no further."""
        if self.start is None:
            return
        self.g.set_state(self.start)
        if self.handed:
            randint(0, self.X.shape[0], (self.handed * self.batch_size,), generator=self.g)
        self.steps += len(self.pieces)
        self.pieces, self.start = [], None


def progress_line(step, steps, loss, val, lr, seconds, steps_run):
    """One line of progress, for logs (when stdout is not a terminal)."""
    rate = f"{steps_run / seconds:,.0f} steps/s" if seconds > 0 else "-"
    return (f"step {step:{len(str(steps))}d}/{steps} | loss {loss:.4f} | val {val:.4f} | "
            f"lr {lr:g} | {seconds:.1f} s | {rate}")


def train_steps(run, Xtr, Ytr, Xval, Yval):
    """Train from the run's step to --steps, evaluating and saving on the way; the run ends
    saved. Returns the number of the signal that stopped it early, or None."""
    from tqdm import tqdm
    from . import codegen

    args, model, optimizer = run.args, run.model, run.optimizer
    compiled = codegen.compile(lambda Xb, Yb: F.cross_entropy(model(Xb), Yb))
    start, first = time.perf_counter(), optimizer.steps
    bar = tqdm(total=args.steps, initial=first, unit="step", disable=args.no_progress or None,
               dynamic_ncols=True, mininterval=0.5)
    log = bar.disable and not args.no_progress     # lines instead of a bar (not a terminal)
    val = run.val_curve[-1][1] if run.val_curve else float("nan")
    batches = Batches(run.g, Xtr, Ytr, args.batch_size, args.steps - first)
    # numpy's warnings are silenced: a loss that is not finite is reported below, in a line
    with stop_requests() as stop, np.errstate(all="ignore"):
        try:
            for step in range(first, args.steps):
                if stop:
                    break
                loss = loss_and_gradients(run, compiled, *batches.next()).item()
                if not math.isfinite(loss):        # stop before the update spreads it
                    raise RunError(f"the training loss is {loss} at step {step + 1}: the model "
                                   f"diverged (is lr {optimizer.lr:g} too high?); training "
                                   f"stopped, {run.kept()}")
                optimizer.step()
                run.losses.append(loss)
                done = step + 1
                if step % 100 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}", val=f"{val:.4f}", lr=optimizer.lr,
                                    refresh=False)
                if done % args.eval_every == 0 or done == args.steps:
                    run.val_curve.append((done, split_loss(model, Xval, Yval)))
                    val = run.val_curve[-1][1]
                    if log:
                        print(progress_line(done, args.steps, loss, val, optimizer.lr,
                                            time.perf_counter() - start, done - first),
                              flush=True)
                if done % args.save_every == 0 and done < args.steps:
                    batches.sync()
                    try:
                        run.save()
                    except WriteError as e:        # train on: the next save may succeed
                        tqdm.write(f"makemore: warning: {e}; training goes on", file=sys.stderr)
                bar.update()
        finally:
            bar.close()
            batches.sync()
        if optimizer.steps > first:
            run.save()
    return stop[0] if stop else None


def train(args):
    """The whole run; returns the summary dict.

    Raises DataError for an unusable words file, RunError for an unusable --out or
    checkpoint or a diverged loss, and Stopped when a signal stopped it.
    """
    started = time.perf_counter()
    words, itos, splits = load_splits(args)
    (Xtr, Ytr), (Xval, Yval), (Xte, Yte) = splits
    config = run_config(args, words, len(itos))
    with RunDirectory(args.out) as out:
        run = Run(args, out, config)
        model = run.model
        if args.resume:
            run.resume()
            print(f"resuming at step {run.optimizer.steps}")
        elif not args.overwrite:
            refuse_to_replace(run.path)
        print(f"{sum(p.nelement() for p in model.parameters())} parameters; "
              f"{len(Xtr)} / {len(Xval)} / {len(Xte)} train / val / test examples")
        if args.backward == "manual" and run.optimizer.steps == 0:
            ix = randint(0, Xtr.shape[0], (args.batch_size,), generator=Generator().manual_seed(0))
            if not compare_backwards(model, Xtr[ix], Ytr[ix]):
                raise RunError("the manual backward disagrees with autograd on the first "
                               "batch (see the table above)")

        start, first = time.perf_counter(), run.optimizer.steps
        stopped = train_steps(run, Xtr, Ytr, Xval, Yval)
        seconds, steps_run = time.perf_counter() - start, run.optimizer.steps - first
        if stopped is not None:
            print(f"stopped by {signal.Signals(stopped).name} at step {run.optimizer.steps}; "
                  + (f"checkpoint saved to {run.path}; continue with --resume"
                     if run.saved_at is not None else "nothing was trained or saved"))
            raise Stopped(stopped)

        ix = randint(0, Xtr.shape[0], (args.batch_size,), generator=Generator().manual_seed(0))
        drew = write_step_graph(model, Xtr[ix], Ytr[ix], out.path / STEP_GRAPH)
        calibrate(model, Xtr)
        result = {name: split_loss(model, X, Y) for name, (X, Y) in
                  zip(("train", "val", "test"), splits)}
        for name, value in result.items():
            print(f"{name:5s} loss {value:.4f}")
        max_length = 2 * max(map(len, words))
        names = sample(model, itos, args.block_size, args.samples,
                       Generator().manual_seed(args.seed + 10), max_length)
        print("samples:", ", ".join(names))
        cut = sum(len(name) == max_length for name in names)
        if cut:
            print(f"note: {cut} of {len(names)} samples reached {max_length} characters (twice "
                  "the longest word) without ending and were cut there")
        lr_change = (run.half, args.lr, args.lr_final) if args.lr != args.lr_final else None
        out.write(CURVE, lambda f: plot_losses(f, run.losses, run.val_curve, result["val"],
                                               lr_change))
        rate = steps_run / seconds if seconds > 0 else None
        summary = {"loss": result, "seconds": round(seconds, 2),
                   "steps_per_second": rate and round(rate, 1), "steps_run": steps_run,
                   "wall_seconds": round(time.perf_counter() - started, 2),
                   "parameters": sum(p.nelement() for p in model.parameters()),
                   "samples": names, "val_curve": run.val_curve, "config": config,
                   "tensorgrad": __version__}
        out.write(SUMMARY, lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
        print(f"wrote {out.path / CURVE}, {run.path}, {out.path / SUMMARY}"
              + (f", {out.path / STEP_GRAPH}" if drew else ""))
    print(f"wall time {time.perf_counter() - started:.1f} s (training {seconds:.1f} s"
          + (f", {rate:,.0f} steps/s)" if rate else ")"))
    return summary


def main(argv=None):
    """Command-line entry point; user errors print one line and exit with status 1, a
    signal that stopped training exits with 128 + its number (130 for Ctrl-C)."""
    return run_command("makemore", train, parse_args(argv),
                       "--n-hidden, --n-embd, --block-size or --batch-size")


def run_command(name, train, args, smaller):
    """Run `train(args)` as the command `name`: a user error in one line and status 1
    (`smaller`: the options that shrink memory, for running out of it), a stopping signal
    as status 128 + its number (130 for Ctrl-C). examples/gpt.py runs this way too."""
    try:
        train(args)
    except (DataError, RunError) as e:
        sys.exit(f"{name}: error: {e}")
    except MemoryError:
        sys.exit(f"{name}: error: out of memory; try a smaller {smaller}")
    except Stopped as e:
        sys.exit(128 + e.signum)
    except KeyboardInterrupt:
        sys.exit(130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
