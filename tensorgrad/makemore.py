"""makemore: train the names MLP of the lecture, evaluate it, and sample new names.

    python examples/makemore.py [--steps 200000] [--out out] [--backward manual] ...
    tensorgrad-makemore ...                       (the same, as an installed command)

The model: embedding -> linear -> batchnorm -> tanh -> linear -> cross-entropy, on
contexts of `block_size` characters. Writes to --out: the loss curve (loss.png), a
checkpoint (checkpoint.npz, written atomically, no pickle), a summary (summary.json) and,
when Graphviz's `dot` program is installed, the graph of one training step (step_graph.svg).
"""
import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, functional as F
from .autograd import keep_grads, no_grad
from .creation import Generator, multinomial, randint, randn, tensor, zeros_like
from .data import DataError, build_dataset, load_words, split_words, vocabulary
from .nn import BatchNorm1d, Embedding, Linear, Module
from .optim import SGD

CHECKPOINT, SUMMARY, CURVE = "checkpoint.npz", "summary.json", "loss.png"
STEP_GRAPH = "step_graph.svg"


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
            self.hidden.weight.data[...] = randn(n_hidden, fan_in, generator=g).data * (5/3) / fan_in**0.5
            self.hidden.bias.data[...] = randn(n_hidden, generator=g).data * 0.1
            self.out.weight.data[...] = randn(vocab_size, n_hidden, generator=g).data * 0.1
            self.out.bias.data[...] = randn(vocab_size, generator=g).data * 0.1
            self.bn.weight.data[...] = randn(n_hidden, generator=g).data * 0.1 + 1.0
            self.bn.bias.data[...] = randn(n_hidden, generator=g).data * 0.1

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
        np.add.at(dC.data, Xb.data, demb.data)           # repeated characters add up
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
    return ok


# ---------------------------------------------------------------- evaluation and sampling

@no_grad()
def calibrate(model, X):
    """Set batchnorm's running statistics from the whole of X (the training set)."""
    hpre = model.hidden(model.embedding(X).view(X.shape[0], -1))
    model.bn.running_mean.data[...] = hpre.mean(0).data
    model.bn.running_var.data[...] = hpre.var(0, unbiased=True).data


@no_grad()
def split_loss(model, X, Y):
    """The mean cross-entropy of the model (in eval mode) on a whole split."""
    model.eval()
    loss = F.cross_entropy(model(X), Y).item()
    model.train()
    return loss


@no_grad()
def sample(model, itos, block_size, count, generator):
    """`count` new words: sample a character from softmax(logits) until '.' comes."""
    model.eval()
    words = []
    for _ in range(count):
        context, out = [0] * block_size, []
        while True:
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

    Needs the `dot` program of Graphviz; without it, prints a one-line note and returns
    False. Leaves the parameters and batchnorm's running statistics as they were.
    """
    from . import viz

    if not viz.dot_available():
        print(f"note: {path.name} not written: Graphviz's dot program is not installed "
              "(e.g. apt-get install graphviz)")
        return False
    state = model.state_dict()
    logits = model(Xb)
    loss = F.cross_entropy(logits, Yb)
    model.zero_grad()
    with keep_grads():
        loss.backward()
    names = dict(model.named_parameters()) | {"logits": logits, "loss": loss}
    viz.render(loss, path, names=names, collapse={"cross_entropy": (loss, logits)})
    model.load_state_dict(state)                         # undo the running-stat update
    model.zero_grad()
    return True


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(path, model, optimizer, generator, losses, config):
    """Write everything needed to resume, atomically: a temp file, then a rename."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"optim.{k}": v for k, v in optimizer.state_dict().items()}
    arrays["losses"] = np.asarray(losses, dtype=np.float32)
    arrays["rng"] = np.array(json.dumps(generator.get_state()))
    arrays["config"] = np.array(json.dumps(config))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path, model, optimizer, generator, config):
    """Restore a checkpoint written by `save_checkpoint`; returns the per-step losses."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = dict(data)
    except FileNotFoundError:
        raise DataError(f"{path}: no checkpoint to resume from") from None
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a tensorgrad checkpoint ({e})") from None
    if "config" not in arrays or "rng" not in arrays:
        raise DataError(f"{path}: not a tensorgrad checkpoint (no config or rng state)")
    saved = json.loads(str(arrays["config"]))
    for key in ("block_size", "n_embd", "n_hidden", "vocab_size"):
        if saved.get(key) != config[key]:
            raise DataError(f"{path}: was trained with {key}={saved.get(key)}, but this "
                            f"run has {key}={config[key]}")
    try:
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
    except (KeyError, ValueError) as e:
        raise DataError(f"{path}: does not fit the model: {e}") from None
    optimizer.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim.")})
    generator.set_state(json.loads(str(arrays["rng"])))
    return list(arrays["losses"])


# ---------------------------------------------------------------- the run

def plot_losses(losses, path, chunk=1000):
    """log10 of the loss, averaged over each `chunk` steps, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = np.log10(np.asarray(losses, dtype=np.float64))
    usable = len(logs) // chunk * chunk or len(logs)
    size = chunk if usable >= chunk else max(1, usable)
    means = logs[:usable].reshape(-1, size).mean(1)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(np.arange(len(means)) * size, means)
    ax.set_xlabel("step")
    ax.set_ylabel(f"log10 loss (mean of {size} steps)")
    ax.set_title("names MLP training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="makemore", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="a UTF-8 words file, one word per line (default: the "
                   "bundled names.txt)")
    p.add_argument("--out", default="out", help="directory for the outputs (default: out)")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block-size", type=int, default=3, help="characters of context")
    p.add_argument("--n-embd", type=int, default=10)
    p.add_argument("--n-hidden", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.1, help="learning rate, first half")
    p.add_argument("--lr-final", type=float, default=0.01, help="learning rate, second half")
    p.add_argument("--seed", type=int, default=2147483647)
    p.add_argument("--samples", type=int, default=20, help="names to sample at the end")
    p.add_argument("--backward", choices=("autograd", "manual", "compiled"), default="autograd",
                   help="autograd (loss.backward()), the hand-written backward, or autograd "
                   "compiled to generated numpy code (tensorgrad.codegen)")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    problems = [f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
                for name in ("block_size", "n_embd", "n_hidden") if getattr(args, name) < 1]
    if args.batch_size < 2:
        problems.append("--batch-size must be at least 2 (batchnorm needs a variance)")
    if args.steps < 0 or args.samples < 0:
        problems.append("--steps and --samples must not be negative")
    if args.lr <= 0 or args.lr_final <= 0:
        problems.append("learning rates must be positive")
    if problems:
        sys.exit(f"makemore: error: {'; '.join(problems)}")
    return args


def train(args):
    """The whole run; returns the summary dict. Raises DataError for unusable input."""
    words = load_words(args.data)
    stoi, itos = vocabulary(words)
    splits = [build_dataset(part, args.block_size, stoi) for part in split_words(words)]
    (Xtr, Ytr), (Xdev, Ydev), (Xte, Yte) = splits
    if len(Xtr) < args.batch_size:
        raise DataError(f"{args.data or 'names.txt'}: only {len(Xtr)} training examples, "
                        f"fewer than a batch of {args.batch_size}")
    config = {"vocab_size": len(itos), "block_size": args.block_size, "n_embd": args.n_embd,
              "n_hidden": args.n_hidden, "batch_size": args.batch_size, "steps": args.steps,
              "lr": args.lr, "lr_final": args.lr_final, "seed": args.seed,
              "backward": args.backward, "data": str(args.data or "names.txt (bundled)")}

    g = Generator().manual_seed(args.seed)
    model = NamesMLP(len(itos), args.block_size, args.n_embd, args.n_hidden, generator=g)
    half = args.steps // 2
    optimizer = SGD(model.parameters(), lr=args.lr,
                    lr_schedule=lambda step: args.lr if step < half else args.lr_final)
    out = Path(args.out)
    losses = []
    if args.resume:
        losses = load_checkpoint(out / CHECKPOINT, model, optimizer, g, config)
        print(f"resuming at step {optimizer.steps}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{sum(p.nelement() for p in model.parameters())} parameters; "
          f"{len(Xtr)} / {len(Xdev)} / {len(Xte)} train / dev / test examples")

    if args.backward == "manual" and optimizer.steps == 0:
        ix = randint(0, Xtr.shape[0], (args.batch_size,), generator=Generator().manual_seed(0))
        if not compare_backwards(model, Xtr[ix], Ytr[ix]):
            raise RuntimeError("the manual backward disagrees with autograd")

    from tqdm import tqdm
    from . import codegen
    compiled = codegen.compile(lambda Xb, Yb: F.cross_entropy(model(Xb), Yb))
    start, first = time.perf_counter(), optimizer.steps
    bar = tqdm(total=args.steps, initial=first, unit="step", disable=args.no_progress or None,
               dynamic_ncols=True, mininterval=0.5)
    interrupted = []        # Ctrl-C ends the run at a step boundary, with a checkpoint
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        for step in range(first, args.steps):
            if interrupted:
                break
            ix = randint(0, Xtr.shape[0], (args.batch_size,), generator=g)
            Xb, Yb = Xtr[ix], Ytr[ix]
            optimizer.zero_grad()
            if args.backward == "manual":
                loss, grads = manual_step(model, Xb, Yb)
                for p, grad in zip(optimizer.params, grads):
                    p.grad = grad
            elif args.backward == "compiled":
                loss = compiled(Xb, Yb)
            else:
                loss = autograd_step(model, Xb, Yb)
            optimizer.step()
            losses.append(loss.item())
            if step % 100 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=optimizer.lr, refresh=False)
            if bar.disable and not args.no_progress and step % 10_000 == 0:
                print(f"{step:7d}/{args.steps:7d}: loss {losses[-1]:.4f}", flush=True)
            bar.update()
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    save_checkpoint(out / CHECKPOINT, model, optimizer, g, losses, config)
    if interrupted:
        print(f"interrupted at step {optimizer.steps}; checkpoint saved to "
              f"{out / CHECKPOINT}; continue with --resume")
        raise KeyboardInterrupt
    seconds = time.perf_counter() - start

    ix = randint(0, Xtr.shape[0], (args.batch_size,), generator=Generator().manual_seed(0))
    drew = write_step_graph(model, Xtr[ix], Ytr[ix], out / STEP_GRAPH)
    calibrate(model, Xtr)
    result = {name: split_loss(model, X, Y) for name, (X, Y) in
              zip(("train", "val", "test"), splits)}
    for name, value in result.items():
        print(f"{name:5s} loss {value:.4f}")
    names = sample(model, itos, args.block_size, args.samples,
                   Generator().manual_seed(args.seed + 10))
    print("samples:", ", ".join(names))
    if losses:
        plot_losses(losses, out / CURVE)
    steps_run = args.steps - first
    summary = {"loss": result, "seconds": round(seconds, 2),
               "steps_per_second": round(steps_run / seconds, 1) if seconds > 0 else None,
               "steps_run": steps_run, "parameters": sum(p.nelement() for p in model.parameters()),
               "samples": names, "config": config, "tensorgrad": __version__}
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / CURVE}, {out / CHECKPOINT}, {out / SUMMARY}"
          + (f", {out / STEP_GRAPH}" if drew else ""))
    return summary


def main(argv=None):
    """Command-line entry point; user errors print one line and exit with status 1."""
    args = parse_args(argv)
    try:
        train(args)
    except DataError as e:
        sys.exit(f"makemore: error: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
