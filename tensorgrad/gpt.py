"""gpt: the character-level GPT of the lecture "Let's build GPT", trained on the names.

    python examples/gpt.py [--steps 5000] [--out out-gpt] [--resume] ...

The model is the lecture's: token and position embeddings, blocks of causal multi-head
self-attention and a feed-forward layer (each after a LayerNorm, each added to the
residual stream), a final LayerNorm and the logits, trained with AdamW. The text is the
bundled names.txt, one name per line, split by name (80 / 10 / 10 train / val / test, as
makemore splits it); the model reads the joined lines and predicts each next character,
the newline included, so sampling writes new names.

`gpt_classes(lib)` builds the classes for any library with PyTorch's API, tensorgrad or
torch itself: benchmarks/gpt_torch.py trains the same model on PyTorch and
benchmarks/gpt_step.py times its step on both. Writes to --out a checkpoint
(checkpoint.npz, no pickle), the loss curve (loss.png) and a summary (summary.json). The
run directory, checkpoints, stop signals and progress bar are makemore's
(tensorgrad/makemore.py, tensorgrad/rundir.py).
"""
import argparse
import json
import math
import sys
import time

import numpy as np

from . import __version__
from .data import DataError, fingerprint, load_words, split_words
from .rundir import (RunDirectory, RunError, WriteError, checkpoint_arrays, load_checkpoint,
                     refuse_to_replace)

CHECKPOINT, SUMMARY, CURVE = "checkpoint.npz", "summary.json", "loss.png"
NEWLINE = "\n"              # ends every name; the first token of every sample


def gpt_classes(torch):
    """The lecture's GPT for `torch`, a library with PyTorch's API (tensorgrad or torch).

    Returns the GPT module class: GPT(vocab_size, block_size, n_embd, n_head, n_layer,
    dropout), called as the lecture's `model(idx, targets)` -> (logits, loss).
    """
    nn, F = torch.nn, torch.nn.functional

    class Head(nn.Module):
        """One head of causal self-attention."""

        def __init__(self, n_embd, head_size, block_size, dropout):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k = self.key(x)                                      # (B, T, hs)
            q = self.query(x)                                    # (B, T, hs)
            wei = q @ k.transpose(-2, -1) * k.shape[-1]**-0.5    # (B, T, T)
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)                           # (B, T, hs)

    class MultiHeadAttention(nn.Module):
        """Heads side by side, their outputs concatenated and projected."""

        def __init__(self, n_embd, n_head, block_size, dropout):
            super().__init__()
            head_size = n_embd // n_head
            self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout)
                                        for _ in range(n_head)])
            self.proj = nn.Linear(head_size * n_head, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, n_embd)
            return self.dropout(self.proj(out))

    class FeedForward(nn.Module):
        """A linear layer 4x wide, ReLU, and back."""

        def __init__(self, n_embd, dropout):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(),
                                     nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

        def forward(self, x):
            return self.net(x)

    class Block(nn.Module):
        """Communication (attention) then computation (feed-forward), each residual."""

        def __init__(self, n_embd, n_head, block_size, dropout):
            super().__init__()
            self.sa = MultiHeadAttention(n_embd, n_head, block_size, dropout)
            self.ffwd = FeedForward(n_embd, dropout)
            self.ln1 = nn.LayerNorm(n_embd)
            self.ln2 = nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPT(nn.Module):
        """Token + position embeddings, the blocks, a final LayerNorm, the logits."""

        def __init__(self, vocab_size, block_size, n_embd=64, n_head=4, n_layer=2, dropout=0.0):
            super().__init__()
            self.block_size = block_size
            self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
            self.position_embedding_table = nn.Embedding(block_size, n_embd)
            self.blocks = nn.Sequential(*[Block(n_embd, n_head, block_size, dropout)
                                          for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, vocab_size)
            self.apply(self._init_weights)

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            tok_emb = self.token_embedding_table(idx)                      # (B, T, C)
            pos_emb = self.position_embedding_table(torch.arange(T))       # (T, C)
            x = self.ln_f(self.blocks(tok_emb + pos_emb))                  # (B, T, C)
            logits = self.lm_head(x)                                       # (B, T, vocab)
            if targets is None:
                return logits, None
            loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
            return logits, loss

    return GPT


# ---------------------------------------------------------------- data

def load_text(path=None):
    """(train, val, test) token arrays and the vocabulary (itos) of a words file: the
    words split as makemore splits them, each split's words joined one per line."""
    words = load_words(path)
    chars = sorted(set("".join(words)) | {NEWLINE})
    stoi = {c: i for i, c in enumerate(chars)}
    splits = [np.array([stoi[c] for c in "".join(w + NEWLINE for w in part)], dtype=np.int64)
              for part in split_words(words)]
    return words, splits, chars


def get_batch(torch, data, batch_size, block_size, generator):
    """Random windows of `data`: inputs x and targets y (x shifted by one), (B, T) each."""
    ix = torch.randint(0, len(data) - block_size, (batch_size,), generator=generator)
    rows = ix.numpy()[:, None] + np.arange(block_size)                # (B, T)
    return torch.tensor(data[rows]), torch.tensor(data[rows + 1])


def estimate_loss(torch, model, data, batch_size, block_size, batches, generator):
    """The mean loss over `batches` random batches of `data`, in eval mode (the lecture's
    estimate_loss, one split)."""
    model.eval()
    with torch.no_grad():
        losses = [model(*get_batch(torch, data, batch_size, block_size, generator))[1].item()
                  for _ in range(batches)]
    model.train()
    return float(np.mean(losses))


def train_step(torch, model, optimizer, data, batch_size, block_size, generator):
    """One AdamW step on a random batch; returns the loss."""
    xb, yb = get_batch(torch, data, batch_size, block_size, generator)
    _, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def sample_names(torch, model, itos, count, max_length, generator):
    """`count` names: characters drawn from the softmax of the last position's logits
    (the context cut to the last block_size characters), each name ending at a newline or
    at `max_length` characters."""
    model.eval()
    names = []
    with torch.no_grad():
        for _ in range(count):
            idx, out = [itos.index(NEWLINE)], []
            while len(out) < max_length:
                logits, _ = model(torch.tensor([idx[-model.block_size:]]))
                probs = torch.nn.functional.softmax(logits[:, -1, :], dim=-1)
                ix = torch.multinomial(probs, num_samples=1, generator=generator).item()
                if itos[ix] == NEWLINE:
                    break
                idx.append(ix)
                out.append(itos[ix])
            names.append("".join(out))
    model.train()
    return names


# ---------------------------------------------------------------- the loss curve

def plot_losses(f, losses, val_curve, eval_every):
    """The loss curve as a PNG into binary file `f`: the training loss (each step faint,
    its mean per evaluation interval), the val loss at each evaluation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(losses, dtype=np.float64)
    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(eval_every, len(losses)))
    whole = len(losses) // window * window
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        ax.plot(steps, losses, ".", color="C0", ms=2, alpha=0.2, label="loss at each step")
        ax.plot(steps[:whole].reshape(-1, window).mean(1),
                losses[:whole].reshape(-1, window).mean(1), color="C0",
                label=f"training loss, mean of {window} steps")
        val = np.asarray(val_curve, dtype=np.float64).reshape(-1, 2)
        ax.plot(val[:, 0], val[:, 1], "o-", color="C1", ms=3, label="val loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"character-level GPT on names: {len(losses):,} steps")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(f, format="png")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- the options and the run

MUST_MATCH = ("data_sha256", "vocab_size", "block_size", "n_embd", "n_head", "n_layer",
              "dropout", "batch_size", "steps", "lr", "seed")


def parse_args(argv):
    """The command-line options, refusing impossible values up front in one line."""
    p = argparse.ArgumentParser(prog="gpt", description=__doc__.splitlines()[0],
                                epilog="Ctrl-C, SIGTERM and SIGHUP stop training at a step "
                                "boundary and save a checkpoint; --resume continues it.")
    p.add_argument("--data", metavar="FILE", help="a UTF-8 words file, one word per line "
                   "(default: the bundled names.txt)")
    p.add_argument("--out", metavar="DIR", default="out-gpt", help="directory for the "
                   "outputs (default: %(default)s)")
    p.add_argument("--steps", metavar="N", type=int, default=5000, help="training steps "
                   "(default: %(default)s)")
    for name, default, what in (("batch-size", 16, "sequences per step"),
                                ("block-size", 32, "characters of context"),
                                ("n-embd", 64, "embedding size"),
                                ("n-head", 4, "attention heads per block"),
                                ("n-layer", 2, "blocks"),
                                ("eval-every", 500, "steps between val loss estimates"),
                                ("eval-batches", 20, "batches per loss estimate"),
                                ("samples", 20, "names to sample at the end"),
                                ("seed", 1337, "random seed")):
        p.add_argument(f"--{name}", metavar="N", type=int, default=default,
                       help=f"{what} (default: %(default)s)")
    p.add_argument("--dropout", metavar="P", type=float, default=0.0, help="dropout "
                   "probability (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate "
                   "(default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint of "
                   "another run in DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    problems = [f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
                for name in ("steps", "batch_size", "block_size", "n_embd", "n_head",
                             "n_layer", "eval_every", "eval_batches")
                if getattr(args, name) < 1]
    problems += [f"--{name} must not be negative, got {getattr(args, name)}"
                 for name in ("samples", "seed") if getattr(args, name) < 0]
    if args.n_embd % args.n_head:
        problems.append(f"--n-embd ({args.n_embd}) must be a multiple of --n-head "
                        f"({args.n_head}): each head gets n_embd / n_head channels")
    if not 0 <= args.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 < args.lr < math.inf:
        problems.append(f"--lr must be a positive number, got {args.lr}")
    if args.resume and args.overwrite:
        problems.append("--resume and --overwrite contradict each other; pick one")
    if problems:
        sys.exit(f"gpt: error: {'; '.join(problems)}")
    return args


def train(args):
    """The whole run; returns the summary dict. Raises DataError, RunError, Stopped."""
    import tensorgrad as torch
    from tqdm import tqdm
    from .makemore import Stopped, stop_requests

    started = time.perf_counter()
    words, (train_data, val_data, test_data), itos = load_text(args.data)
    for name, part in (("train", train_data), ("val", val_data)):
        if len(part) <= args.block_size:
            raise DataError(f"{args.data or 'names.txt'}: the {name} split has {len(part)} "
                            f"characters, not more than --block-size {args.block_size}")
    config = {"data": str(args.data or "names.txt (bundled)"), "words": len(words),
              "data_sha256": fingerprint(words), "vocab_size": len(itos)} | {
        k: getattr(args, k) for k in MUST_MATCH[2:]}
    torch.manual_seed(args.seed)                     # the weights and dropout
    g = torch.Generator().manual_seed(args.seed)     # the batches
    model = gpt_classes(torch)(len(itos), args.block_size, args.n_embd, args.n_head,
                               args.n_layer, args.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    losses, val_curve = [], []
    with RunDirectory(args.out) as out:
        path = out.path / CHECKPOINT
        if args.resume:
            losses, val_curve = load_checkpoint(path, model, optimizer, g, config, MUST_MATCH)
            print(f"resuming at step {optimizer.steps}")
        elif not args.overwrite:
            refuse_to_replace(path)
        print(f"{sum(p.numel() for p in model.parameters()):,} parameters; "
              f"{len(train_data):,} / {len(val_data):,} train / val characters")

        def save():
            out.save_checkpoint(CHECKPOINT, checkpoint_arrays(model, optimizer, g, losses,
                                                              val_curve, config))

        def val_loss():
            return estimate_loss(torch, model, val_data, args.batch_size, args.block_size,
                                 args.eval_batches, g)

        first, start = optimizer.steps, time.perf_counter()
        bar = tqdm(total=args.steps, initial=first, unit="step", disable=args.no_progress,
                   dynamic_ncols=True, mininterval=0.5)
        with stop_requests() as stop:
            try:
                for step in range(first, args.steps):
                    if stop:
                        break
                    loss = train_step(torch, model, optimizer, train_data, args.batch_size,
                                      args.block_size, g)
                    if not math.isfinite(loss):
                        raise RunError(f"the training loss is {loss} at step {step + 1}: the "
                                       f"model diverged (is --lr {args.lr:g} too high?)")
                    losses.append(loss)
                    if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                        val_curve.append((step + 1, val_loss()))
                        bar.set_postfix(loss=f"{loss:.4f}", val=f"{val_curve[-1][1]:.4f}",
                                        refresh=False)
                        try:
                            save()
                        except WriteError as e:       # train on: the next save may succeed
                            tqdm.write(f"gpt: warning: {e}; training goes on", file=sys.stderr)
                    bar.update()
            finally:
                bar.close()
            if stop:
                save()
                print(f"stopped at step {optimizer.steps}; checkpoint saved to {path}; "
                      "continue with --resume")
                raise Stopped(stop[0])
        seconds, steps_run = time.perf_counter() - start, optimizer.steps - first
        save()
        result = {name: estimate_loss(torch, model, data, args.batch_size, args.block_size,
                                      10 * args.eval_batches, torch.Generator().manual_seed(0))
                  for name, data in (("train", train_data), ("val", val_data),
                                     ("test", test_data))}
        for name, value in result.items():
            print(f"{name:5s} loss {value:.4f}")
        names = sample_names(torch, model, itos, args.samples, 2 * max(map(len, words)),
                             torch.Generator().manual_seed(args.seed + 10))
        print("samples:", ", ".join(names))
        out.write(CURVE, lambda f: plot_losses(f, losses, val_curve, args.eval_every))
        summary = {"loss": result, "seconds": round(seconds, 2), "steps_run": steps_run,
                   "steps_per_second": round(steps_run / seconds, 2) if seconds else None,
                   "wall_seconds": round(time.perf_counter() - started, 2),
                   "parameters": sum(p.numel() for p in model.parameters()),
                   "samples": names, "val_curve": val_curve, "config": config,
                   "tensorgrad": __version__}
        out.write(SUMMARY, lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
        print(f"wrote {out.path / CURVE}, {path}, {out.path / SUMMARY}")
    print(f"wall time {time.perf_counter() - started:.1f} s (training {seconds:.1f} s)")
    return summary


def main(argv=None):
    """Command-line entry point; user errors print one line and exit with status 1, a
    signal that stopped training exits with 128 + its number (130 for Ctrl-C)."""
    from .makemore import run_command
    return run_command("gpt", train, parse_args(argv), "--batch-size, --block-size or --n-embd")


if __name__ == "__main__":
    sys.exit(main())
