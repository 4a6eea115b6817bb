"""Every benchmark script runs to its end, on settings small enough for the test suite: a
benchmark that no longer runs (an API it calls moved) would otherwise be found only when
someone needs its figures. The figures themselves are not tested (timed tests measure the
machine); docs/performance.md and docs/codegen.md report them."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# script, small settings, whether it needs PyTorch (the others print their torch rows
# when it is installed and skip them when not)
RUNS = [
    ("codegen_step.py", ["--repeats", "10", "--large-repeats", "1", "--memory-steps", "20"], False),
    ("fused.py", ["--repeats", "2"], False),
    ("gpt_step.py", ["--repeats", "1", "--config", "small"], True),
    ("hvp.py", ["--repeats", "2"], False),
    ("lecture_step.py", ["--repeats", "20"], False),
    ("makemore_torch.py", ["--steps", "50"], True),
    ("memory.py", ["--large-hidden", "64", "--large-batch", "128"], False),
    ("training_run.py", ["--steps", "100", "--breakdown-steps", "20"], False),
]


def test_every_benchmark_is_run_here():
    assert {name for name, _, _ in RUNS} | {"gpt_torch.py"} == {
        p.name for p in BENCHMARKS.glob("*.py")}          # gpt_torch.py: gpt_step's twin


@pytest.mark.parametrize("script, arguments, needs_torch", RUNS, ids=[r[0] for r in RUNS])
def test_the_benchmark_runs(script, arguments, needs_torch, tmp_path):
    if needs_torch:
        pytest.importorskip("torch")
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *arguments], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{script} failed:\n{run.stderr[-3000:]}"
    assert run.stdout.strip(), f"{script} printed nothing"
