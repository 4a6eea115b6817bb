"""The sweep's cases that fail today, by the mechanism behind them.

Each entry of KNOWN_FAILURES maps a case id to one line naming its mechanism. tests/test_sweep.py
marks these cases xfail(strict=True): a fix that makes one pass turns it into an XPASS failure,
and the id must then be removed from here. `python -m tests.sweep` prints the groups with the
cases' details. Each group below starts with its reason and a minimal reproducer
(`import tensorgrad as tg`, `import tensorgrad.nn.functional as F`).
"""

# mechanism: (reason, minimal reproducer, case ids)
MECHANISMS = {}

MECHANISMS['logsumexp-absorbs'] = (
    "cross_entropy's fused kernel computes logsumexp(x) - x[target], where logsumexp is "
    'm + log(sum(exp(x - m))): for |x| above ~1e16 the log-sum is absorbed into m and the '
    'loss loses it; PyTorch computes (x - m) - log(sum) (log_softmax does too now)',
    'F.cross_entropy(tg.tensor([[1e200, 1e200]], dtype=tg.float64), tg.tensor([0]))  # 0; PyTorch 0.693',
    """
kinks/F.cross_entropy(x, [0, 2]) at huge
kinks/F.cross_entropy(x, [0, 2], 'sum') at huge
kinks/F.cross_entropy(x, [0, 2], 'none') at huge
""")

KNOWN_FAILURES = {case_id: f"{key}: {reason}"
                  for key, (reason, _, ids) in MECHANISMS.items()
                  for case_id in ids.strip().splitlines()}
