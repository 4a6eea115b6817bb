"""Fixtures shared by the test files."""
import os

import pytest

from tensorgrad import viz


@pytest.fixture
def dot():
    """Skip where Graphviz's dot is missing, unless TENSORGRAD_REQUIRE_DOT is set (CI)."""
    if not viz.dot_available():
        if os.environ.get("TENSORGRAD_REQUIRE_DOT"):
            pytest.fail("TENSORGRAD_REQUIRE_DOT is set but Graphviz's dot is not on the PATH")
        pytest.skip("Graphviz's dot program is not installed (see the README)")
