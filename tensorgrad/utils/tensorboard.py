"""`SummaryWriter`: training curves for TensorBoard, with `torch.utils.tensorboard`'s names.

    from tensorgrad.utils.tensorboard import SummaryWriter
    with SummaryWriter("runs/mlp") as writer:
        writer.add_scalar("Loss/train", loss, step)        # a 0-d tensor, or a number

then `tensorboard --logdir runs`. The files are TensorBoard's event files, written with the
tensorboardX package's event writer and summary protocol buffers (`pip install
"tensorgrad[tensorboard]"`; it needs neither TensorFlow nor PyTorch); this module turns
tensorgrad tensors into numbers and arrays for them and lays out the files as PyTorch's
SummaryWriter does. Without tensorboardX, making a SummaryWriter says what to install.

Events are written to the file as they are added, in this thread (PyTorch and
tensorboardX hand them to a writer thread): `flush()` then puts everything added so far on
disk, with no thread to wait for.
"""
import itertools
import math
import os
import socket
import time
from datetime import datetime

import numpy as np

from ..checks import shown
from ..tensor import Tensor

_FILE_COUNT = itertools.count()
INSTALL = ("SummaryWriter: writing TensorBoard files needs the tensorboardX package; install "
           "it with pip install 'tensorgrad[tensorboard]' (or pip install tensorboardX)")

# TensorBoard's histogram buckets, as PyTorch and tensorboardX make them for bins="tensorflow":
# edges growing by 10% from 1e-12 to 1e20, mirrored below zero
_POSITIVE = 1e-12 * 1.1 ** np.arange(math.ceil(math.log(1e32) / math.log(1.1)))
TENSORFLOW_BINS = np.concatenate([-_POSITIVE[::-1], [0.0], _POSITIVE])


class SummaryWriter:
    """Writes scalars, histograms and text to event files in `log_dir` (by default
    runs/<date>_<host><comment>, as PyTorch). The file's buffer goes to disk every
    `flush_secs` seconds (checked when an event is added), at `flush()`, and at `close()`
    or the end of a `with` block. `max_queue` is accepted for PyTorch's sake: there is no
    queue. With `purge_step`, TensorBoard hides the events of an earlier run in the same
    directory from that step on (for a run resumed from a checkpoint).
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix=""):
        try:
            from tensorboardX import summary
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event, SessionLog
        except ImportError:
            raise ImportError(INSTALL) from None
        self._summary, self._events_writer = summary, EventsWriter
        self._event, self._session_log = Event, SessionLog
        if not log_dir:
            log_dir = os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" +
                                   socket.gethostname() + comment)
        self.log_dir = os.fspath(log_dir)
        self.purge_step, self.max_queue = purge_step, max_queue
        self.flush_secs, self.filename_suffix = flush_secs, filename_suffix
        self._files = {}                # directory -> its event file (one per add_scalars curve)
        self._last_flush = time.monotonic()
        self._file(self.log_dir)        # the event file exists from here on, as in PyTorch

    def get_logdir(self):
        """The directory the event files go to."""
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """Record one value of the curve `tag` at `global_step` (a float32 in the file;
        `new_style` and `double_precision` are accepted and change nothing)."""
        value = float(_number(scalar_value, "add_scalar", "scalar_value"))
        self._add(self.log_dir, self._summary.scalar(tag, value), global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Record several curves drawn in one chart, `main_tag`: one value per name in
        `tag_scalar_dict` (e.g. {"train": loss, "val": val_loss}). Each curve is a run of
        its own, in the directory <log_dir>/<main_tag>_<name>, as PyTorch lays them out."""
        if not isinstance(tag_scalar_dict, dict):
            raise TypeError(f"add_scalars: tag_scalar_dict must be a dict of values by name, "
                            f"got {shown(tag_scalar_dict)}")
        walltime = time.time() if walltime is None else walltime
        for name, value in tag_scalar_dict.items():
            value = float(_number(value, "add_scalars", f"tag_scalar_dict[{name!r}]"))
            directory = f"{self.log_dir}/{main_tag.replace('/', '_')}_{name}"
            self._add(directory, self._summary.scalar(main_tag, value), global_step, walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None,
                      max_bins=None):
        """Record the distribution of `values` (a tensor or array) at `global_step`."""
        array = values._data if isinstance(values, Tensor) else np.asarray(values)
        if isinstance(bins, str) and bins == "tensorflow":
            bins = TENSORFLOW_BINS
        self._add(self.log_dir, self._summary.histogram(tag, array, bins, max_bins),
                  global_step, walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Record a piece of text (markdown) at `global_step`."""
        self._add(self.log_dir, self._summary.text(tag, text_string), global_step, walltime)

    def flush(self):
        """Put every event added so far on disk."""
        for events in self._files.values():
            events.flush()
        self._last_flush = time.monotonic()

    def close(self):
        """Write what is left and close the event files (adding more opens new ones)."""
        for events in self._files.values():
            events.close()
        self._files = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _file(self, directory):
        """The event file of `directory`, made (with the directory) on first use."""
        if directory not in self._files:
            os.makedirs(directory, exist_ok=True)
            # tensorboardX names a file by the second and the host only: the process id and
            # a count (as PyTorch adds) keep two files made in one second from being one,
            # and padding the count keeps TensorBoard's reading order (by name) theirs
            unique = f".{os.getpid()}.{next(_FILE_COUNT):06d}{self.filename_suffix}"
            events = self._events_writer(os.path.join(directory, "events"), unique)
            if self.purge_step is not None and directory == self.log_dir:
                # what TensorBoard reads as "a run restarted here": hide later steps before it
                events.write_event(self._event(step=self.purge_step, file_version="brain.Event:2"))
                events.write_event(self._event(step=self.purge_step, session_log=(
                    self._session_log(status=self._session_log.START))))
            self._files[directory] = events
        return self._files[directory]

    def _add(self, directory, summary, global_step, walltime):
        event = self._event(summary=summary, wall_time=time.time() if walltime is None
                            else walltime)
        if global_step is not None:
            event.step = int(_number(global_step, "SummaryWriter", "global_step"))
        self._file(directory).write_event(event)
        if time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()


def _number(value, op, what):
    """A Python number from a number, or from a tensor or array with one element."""
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if array.size == 1 and array.dtype.kind in "biuf":
            return array.reshape(()).item()
    elif isinstance(value, (int, float)):
        return value
    shape = f" of shape {value.shape}" if hasattr(value, "shape") else ""
    raise TypeError(f"{op}: {what} must be a number or a one-element tensor, got "
                    f"{type(value).__name__}{shape}")


__all__ = ["SummaryWriter"]
