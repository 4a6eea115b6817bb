"""Run the whole sweep and report: counts per class and per category, then the failing
cases grouped by the mechanism behind them (from known_failures.py).

    python -m tests.sweep                # from the repository root
    python -m tests.sweep -v             # every failing case id, not only the first few
    python -m tests.sweep -k views/      # only cases whose id contains "views/"

Exits with 1 if a case fails that known_failures.py does not list, or a listed case no
longer fails (the list must then lose it), else 0.
"""
import argparse
import collections
import sys
import time

from . import all_cases, prepare
from .harness import CLASSES, UNCLEAR, WRONG, HarnessError, run_case, torch_or_none
from .known_failures import KNOWN_FAILURES


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every failing case of each mechanism")
    parser.add_argument("-k", dest="pattern", default="", help="only cases whose id contains this")
    args = parser.parse_args(argv)
    torch = torch_or_none()
    if torch is None:
        print("the sweep compares with PyTorch: pip install torch (CPU build) first")
        return 2

    cases = [c for c in all_cases() if args.pattern in c.id]
    prepare(cases)
    start = time.time()
    verdicts, broken = [], []
    for c in cases:
        try:
            verdicts.append(run_case(c))
        except HarnessError as e:
            broken.append(str(e))
    elapsed = time.time() - start

    extensions = sum(v.case.extension is not None for v in verdicts)
    notes = sum(v.case.note is not None for v in verdicts)
    print(f"tensorgrad sweep against PyTorch {torch.__version__}: {len(cases)} cases in "
          f"{elapsed:.0f} s; the reference is tensorgrad's documented convention in "
          f"{extensions}, the mathematically right value where PyTorch errs in {notes}\n")
    print_counts(verdicts)
    unexpected = print_failures(verdicts, args.verbose)
    fixed = sorted(v.case.id for v in verdicts
                   if v.case.id in KNOWN_FAILURES and v.klass not in (WRONG, UNCLEAR))
    if fixed:
        print(f"\nListed in known_failures.py but no longer failing ({len(fixed)}); remove "
              "them from the list:")
        for case_id in fixed:
            print(f"  {case_id}")
    if broken:
        print(f"\nCases whose reference itself failed ({len(broken)}): fix the case")
        for line in broken:
            print(f"  {line}")
    return 1 if unexpected or fixed or broken else 0


def print_counts(verdicts):
    """A table: one row per category, one column per class."""
    table = collections.defaultdict(collections.Counter)
    for v in verdicts:
        table[v.case.category][v.klass] += 1
    width = max(len(c) for c in list(table) + ["category"]) + 2
    header = f"{'category':<{width}}{'cases':>7}" + "".join(f"{k:>19}" for k in CLASSES)
    print(header)
    print("-" * len(header))
    total = collections.Counter()
    for category, counts in table.items():
        total.update(counts)
        print(f"{category:<{width}}{sum(counts.values()):>7}"
              + "".join(f"{counts[k]:>19}" for k in CLASSES))
    print("-" * len(header))
    print(f"{'total':<{width}}{sum(total.values()):>7}" + "".join(f"{total[k]:>19}"
                                                                for k in CLASSES))


def print_failures(verdicts, verbose):
    """The silent wrong and unclear cases, grouped by mechanism; returns how many are not
    in the list of known failures."""
    groups = collections.defaultdict(list)
    for v in verdicts:
        if v.klass in (WRONG, UNCLEAR):
            reason = KNOWN_FAILURES.get(v.case.id, f"NOT IN known_failures.py: {v.signature}")
            groups[reason].append(v)
    print(f"\nFailing cases by mechanism ({sum(map(len, groups.values()))} cases, "
          f"{len(groups)} mechanisms)")
    for reason, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        kinds = collections.Counter(v.klass for v in members)
        print(f"\n[{len(members)}: " + ", ".join(f"{n} {k}" for k, n in kinds.items())
              + f"] {reason}")
        shown = members if verbose else members[:3]
        for v in shown:
            print(f"    {v.case.id}")
            if v.case.code and v.case.code not in v.case.id:
                print(f"        code: {v.case.code[:300]}")
            print(f"        {v.detail[:300]}")
        if len(members) > len(shown):
            print(f"    ... and {len(members) - len(shown)} more (-v lists them)")
    return sum(len(m) for r, m in groups.items() if r.startswith("NOT IN"))


if __name__ == "__main__":
    sys.exit(main())
