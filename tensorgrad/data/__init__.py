"""The names data set and the character-level datasets built from it.

`names.txt` (32,033 names, one per line) ships inside the package, so it is there after a
plain install. Any UTF-8 file with one word per line can take its place.
"""
import hashlib
import random
from pathlib import Path

import numpy as np

from ..checks import int_arg, number_arg, shown
from ..creation import tensor

NAMES = Path(__file__).with_name("names.txt")
BOUNDARY = "."          # marks both the start (as padding) and the end of a word


class DataError(ValueError):
    """A words file that cannot be used; the message names the file and the problem."""


def load_words(path=None):
    """The words of a UTF-8 text file, one per line, blank lines dropped (default: names).

    A leading byte-order mark (which some editors write) is dropped, not taken for a
    character of the first word.
    """
    path = Path(path) if path is not None else NAMES
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a words file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    words = [w.strip() for w in text.splitlines() if w.strip()]
    if not words:
        raise DataError(f"{path}: contains no words (it is empty or blank)")
    bad = _with_boundary(words)
    if bad is not None:
        raise DataError(f"{path}: the word {bad!r} contains {BOUNDARY!r}, which marks word "
                        "boundaries")
    return words


def _with_boundary(words):
    """The first word that contains the boundary character, or None."""
    return next((w for w in words if BOUNDARY in w), None)


def _check_words(words, op):
    """Refuse anything but a list of strings without the boundary character. A single
    string would be read as a list of one-letter words."""
    if not isinstance(words, (list, tuple)):
        hint = "; wrap one word as [word]" if isinstance(words, str) else ""
        raise TypeError(f"{op}: words must be a list of strings, got "
                        f"{type(words).__name__}{hint}")
    odd = next((w for w in words if not isinstance(w, str)), None)
    if odd is not None:
        raise TypeError(f"{op}: words must be strings, got {shown(odd)}")
    bad = _with_boundary(words)
    if bad is not None:
        raise ValueError(f"{op}: the word {bad!r} contains {BOUNDARY!r}, which marks word "
                         "boundaries")


def fingerprint(words):
    """A SHA-256 hex digest of `words` as used (stripped, in order): equal for the same data
    whatever its file's name, line endings or blank lines."""
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()


def vocabulary(words):
    """`(stoi, itos)`: the boundary '.' is 0, the characters of `words` follow, sorted."""
    _check_words(words, "vocabulary")
    chars = sorted(set("".join(words)))
    stoi = {BOUNDARY: 0, **{ch: i + 1 for i, ch in enumerate(chars)}}
    return stoi, {i: ch for ch, i in stoi.items()}


def build_dataset(words, block_size, stoi):
    """Contexts X (N, block_size) and next-character targets Y (N,), both int64 tensors.

    Each word gives one example per character plus one for the end: with block_size 3,
    "emma" gives `... -> e`, `..e -> m`, `.em -> m`, `emm -> a`, `mma -> .`.
    """
    _check_words(words, "build_dataset")
    block_size = int_arg(block_size, "build_dataset", "block_size", low=1)
    if not isinstance(stoi, dict):
        raise TypeError(f"build_dataset: stoi must be a dict from characters to indices "
                        f"(see vocabulary()), got {type(stoi).__name__}")
    X, Y = [], []
    for word in words:
        context = [0] * block_size
        for ch in word + BOUNDARY:
            try:
                ix = stoi[ch]
            except KeyError:
                raise ValueError(f"build_dataset: the character {ch!r} of {word!r} is not in "
                                 "stoi; make stoi from these words with vocabulary()") from None
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    X = np.array(X, dtype=np.int64).reshape(-1, block_size)
    return tensor(X), tensor(np.array(Y, dtype=np.int64))


def split_words(words, seed=42, fractions=(0.8, 0.9)):
    """Shuffle a copy of `words` with Python's `random.seed(seed)`; cut at 80% and 90%.

    With the names and seed 42 this is the lecture's split: at block size 3 it gives
    182,625 / 22,655 / 22,866 train / val / test examples.
    """
    _check_words(words, "split_words")
    cuts = _cut_points(fractions)
    words = list(words)
    random.Random(seed).shuffle(words)
    n1, n2 = (int(f * len(words)) for f in cuts)
    return words[:n1], words[n1:n2], words[n2:]


def _cut_points(fractions):
    """`fractions` as two cut points a <= b in [0, 1], or a clear refusal."""
    if isinstance(fractions, (tuple, list)) and len(fractions) == 2:
        a, b = (number_arg(f, "split_words", "fractions", low=0, high=1) for f in fractions)
        if a <= b:
            return a, b
    raise ValueError(f"split_words: fractions must be two cut points a <= b in [0, 1], "
                     f"got {fractions!r}")
