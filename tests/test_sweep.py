"""The adversarial sweep against PyTorch (tests/sweep), one test per case.

Every case must match PyTorch or be refused with a clear error. The cases that fail today
are listed, each with the mechanism behind it, in tests/sweep/known_failures.py and run as
strict xfails: a fix that makes one pass shows up as an XPASS failure until its id is
removed from the list. Cases compared with PyTorch skip when torch is not installed.

`python -m tests.sweep` runs the same cases and prints counts and failures by mechanism.
`TENSORGRAD_SWEEP_FULL=1 TENSORGRAD_SWEEP_RANDOM=2000 TENSORGRAD_SWEEP_SEEDS=16 python -m
pytest tests/test_sweep.py` runs the full products, more random index combinations and more
hash seeds (tests/sweep/__init__.py).
"""
import pytest

from sweep import all_cases, prepare
from sweep.harness import ACCEPTED, run_case, torch_or_none
from sweep.known_failures import KNOWN_FAILURES

CASES = all_cases()
HAVE_TORCH = torch_or_none() is not None


def param(case):
    """The case as a pytest param: skipped without torch if it needs it, a strict xfail
    (with its mechanism as the reason) if it is a known failure."""
    if case.needs_torch and not HAVE_TORCH:
        marks = [pytest.mark.skip(reason="compared with PyTorch, which is not installed")]
    elif case.id in KNOWN_FAILURES:
        mechanism = KNOWN_FAILURES[case.id].split(":")[0]
        marks = [pytest.mark.xfail(strict=True, reason=mechanism)]
    else:
        marks = []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def subprocesses(request):
    """The subprocesses of the selected cases start first and run alongside the others."""
    if HAVE_TORCH:
        prepare([item.callspec.params["case"] for item in request.session.items
                 if "case" in getattr(getattr(item, "callspec", None), "params", {})])


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_case(case):
    verdict = run_case(case)
    assert verdict.klass in ACCEPTED, f"{verdict.klass}: {verdict.detail}"


def test_known_failures_name_cases():
    """Every id in the list is a case of the sweep (no stale or misspelt entries)."""
    ids = {c.id for c in all_cases(random_count=200, seeds=3, full=True)}
    assert sorted(set(KNOWN_FAILURES) - ids) == []


def test_the_sweep_is_large():
    assert len(CASES) > 2000
