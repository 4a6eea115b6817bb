"""The sweep's cases that fail today, by the mechanism behind them.

Each entry of KNOWN_FAILURES maps a case id to one line naming its mechanism. tests/test_sweep.py
marks these cases xfail(strict=True): a fix that makes one pass turns it into an XPASS failure,
and the id must then be removed from here. `python -m tests.sweep` prints the groups with the
cases' details. Each group below starts with its reason and a minimal reproducer
(`import tensorgrad as tg`, `import tensorgrad.nn.functional as F`).
"""

# mechanism: (reason, minimal reproducer, case ids)
MECHANISMS = {}


KNOWN_FAILURES = {case_id: f"{key}: {reason}"
                  for key, (reason, _, ids) in MECHANISMS.items()
                  for case_id in ids.strip().splitlines()}
