"""The output directory of a makemore run, and its checkpoints.

    with RunDirectory("out") as out:       # creates out/, checks it is writable, locks it
        out.write("summary.json", lambda f: f.write(data))
        out.save_checkpoint("checkpoint.npz", checkpoint_arrays(model, optimizer, ...))
    load_checkpoint("out/checkpoint.npz", model, optimizer, generator, config, must_match)

One run at a time holds a directory; each file is replaced whole or not at all; a
checkpoint (numpy arrays in an .npz archive, no pickle) records the configuration and the
data's fingerprint of its run, and anything wrong with one is said in one line.
"""
import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:         # not POSIX (Windows): runs go unlocked
    fcntl = None

LOCK = ".makemore.lock"


class RunError(Exception):
    """A problem with a run's options, output directory or checkpoint; the message is one
    line that names the file or option and says what to do."""


class WriteError(RunError):
    """A file of the run could not be written; the previous version of it is kept."""


class RunDirectory:
    """The output directory of one run, locked against other runs while it is open.

    Opening it creates the directory, checks that a file can be created there (so a
    read-only `--out` is found before training, not after) and takes an exclusive lock on
    `.makemore.lock`, which records the process id of its holder. The operating system
    releases the lock when the process ends, however it ends.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._lock = None

    def __enter__(self):
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: cannot be the output directory (it is a file)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"{self.path}: cannot be the output directory ({_reason(e)})") from None
        probe = self.path / f".makemore-probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
            self._lock = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunError(f"{self.path}: cannot write there ({_reason(e)}); choose another "
                           "--out") from None
        if fcntl is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(self._lock, 32, 0).decode(errors="replace").strip()
                self.close()
                raise RunError(f"{self.path}: another run (process {holder or 'unknown'}) is "
                               "writing there; wait for it to end, stop it, or choose another "
                               "--out") from None
            os.ftruncate(self._lock, 0)
            os.pwrite(self._lock, f"{os.getpid()}\n".encode(), 0)
        for stale in self.path.glob(".*.*-*.tmp"):   # temp files of a run killed mid-write
            stale.unlink(missing_ok=True)
        return self

    def close(self):
        if self._lock is not None:
            os.close(self._lock)                     # releases the lock
            self._lock = None

    def __exit__(self, *exc):
        self.close()

    def write(self, name, write):
        """Write the file `name` through `write(f)` (f a binary file), atomically.

        The data goes to a temp file with a name of its own beside the target, is flushed
        to disk, then renamed over the target: a reader sees the old file or the new one,
        never half of one. If anything fails, the temp file is removed, the old file stays,
        and WriteError says so in one line.
        """
        path = self.path / name
        tmp = self.path / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())     # on disk before the rename, so a power cut keeps one
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            kept = f"the previous {name} is kept" if path.exists() else "nothing was written"
            raise WriteError(f"{path}: could not write it ({_reason(e)}); {kept}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def save_checkpoint(self, name, arrays):
        """Write `arrays` ({key: numpy array}) as an .npz file, atomically (see `write`)."""
        return self.write(name, lambda f: np.savez(f, **arrays))


def read_checkpoint(path):
    """The arrays of a checkpoint written by `RunDirectory.save_checkpoint`.

    A missing, empty, truncated, damaged or foreign file raises RunError naming the file
    and what is wrong with it.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise RunError(f"{path}: no checkpoint there to resume from") from None
    except OSError as e:
        raise RunError(f"{path}: cannot read it ({_reason(e)})") from None
    if magic != b"PK\x03\x04":                      # every .npz is a zip archive
        raise RunError(f"{path}: not a checkpoint ("
                       + ("the file is empty)" if not magic else "not an .npz archive)"))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RunError(f"{path}: damaged checkpoint, truncated or corrupted "
                       f"({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------- makemore's checkpoints

def checkpoint_arrays(model, optimizer, generator, losses, val_curve, config):
    """Everything needed to resume, as numpy arrays (the per-step losses and the
    (step, val loss) points too, for the loss curve)."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"optim.{k}": v for k, v in optimizer.state_dict().items()}
    arrays["losses"] = np.asarray(losses, dtype=np.float32)
    arrays["val_curve"] = np.asarray(val_curve, dtype=np.float64).reshape(-1, 2)
    arrays["rng"] = np.array(json.dumps(generator.get_state()))
    arrays["config"] = np.array(json.dumps(config))
    return arrays


def _saved_config(path, arrays):
    """The configuration stored in a checkpoint's arrays (RunError if it is not there)."""
    try:
        return json.loads(str(arrays["config"]))
    except (KeyError, ValueError) as e:
        raise RunError(f"{path}: not a makemore checkpoint (its configuration is missing or "
                       f"unreadable: {type(e).__name__})") from None


def _describe(config, keys):
    """`keys` of a configuration as text: 'n_hidden=16', or the data by name and digest."""
    return ", ".join(f"data {config.get('data')} ({config.get('words')} words, sha256 "
                     f"{str(config.get('data_sha256'))[:12]})" if key == "data_sha256" else
                     f"{key}={config.get(key)}" for key in keys)


def load_checkpoint(path, model, optimizer, generator, config, must_match):
    """Restore a checkpoint of this same run; returns (losses, val_curve).

    Refuses, in one line naming the difference, a checkpoint whose configuration differs
    from `config` in a key of `must_match`, or that does not record its data.
    """
    arrays = read_checkpoint(path)
    saved = _saved_config(path, arrays)
    if "data_sha256" not in saved:
        raise RunError(f"{path}: written by an older makemore that did not record its data, "
                       "so it cannot be resumed safely; start a new run (another --out, or "
                       "--overwrite)")
    differ = [key for key in must_match if saved.get(key) != config[key]]
    if differ:
        raise RunError(f"{path}: was trained with {_describe(saved, differ)}, but this run has "
                       f"{_describe(config, differ)}; resume with the same data and options, "
                       "or start a new run in another --out")
    try:
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        optimizer.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim.")})
        generator.set_state(json.loads(str(arrays["rng"])))
        losses = list(arrays["losses"])
        val_curve = [(int(step), float(val)) for step, val in arrays["val_curve"]]
    except (KeyError, ValueError, TypeError) as e:
        raise RunError(f"{path}: damaged checkpoint ({type(e).__name__}: {e})") from None
    if len(losses) != optimizer.steps:
        raise RunError(f"{path}: damaged checkpoint ({len(losses)} losses for "
                       f"{optimizer.steps} steps)")
    return losses, val_curve


def refuse_to_replace(path):
    """A fresh run does not replace another run's checkpoint: RunError if `path` exists."""
    if not path.exists():
        return
    try:
        done = int(read_checkpoint(path)["optim.steps"])
    except (RunError, KeyError, ValueError) as e:
        problem = str(e) if isinstance(e, RunError) else f"{path}: not a makemore checkpoint"
        raise RunError(f"{problem}; pass --overwrite to replace it, or write to another "
                       "--out") from None
    raise RunError(f"{path}: holds another run, at step {done:,}; continue it with --resume, "
                   "write to another --out, or pass --overwrite to replace it")


def _reason(error):
    """The operating system's words for an OSError, e.g. 'Permission denied'."""
    return error.strerror or str(error)
