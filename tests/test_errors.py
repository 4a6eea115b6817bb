"""Every row of docs/errors.md: the code raises exactly the error and message documented."""
import re
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad import nn, viz

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
ROW = re.compile(r"^\| `(?P<code>.+)` \| (?P<kind>\w+) \| (?P<message>.*) \|$")


def documented_cases():
    rows = [ROW.match(line) for line in DOC.read_text(encoding="utf-8").splitlines()]
    return [(m["code"].replace(" ⏎ ", "\n"), m["kind"], m["message"].replace("&#124;", "|"))
            for m in rows if m]


CASES = documented_cases()


def test_the_table_is_not_empty():
    assert len(CASES) >= 30


@pytest.mark.parametrize("code, kind, message", CASES, ids=[c[0][:60] for c in CASES])
def test_documented_error(code, kind, message):
    with pytest.raises(Exception) as info:
        with np.errstate(all="ignore"):
            exec(code, {"tg": tg, "np": np, "F": F, "nn": nn, "viz": viz})
    assert type(info.value).__name__ == kind
    assert str(info.value).strip() == message.strip()
