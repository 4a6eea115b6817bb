"""The interactive page (`viz.render(..., "graph.html")`), loaded in a real headless browser.

Needs Debian's `chromium` (CI installs it); skipped cleanly without it, unless
TENSORGRAD_REQUIRE_CHROMIUM is set (CI), where a missing browser fails.
"""
import html
import os
import re
import shutil
import subprocess

import pytest

from tensorgrad import viz
from test_viz import lecture  # noqa: F401 (a fixture)


@pytest.fixture
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("TENSORGRAD_REQUIRE_CHROMIUM"):
            pytest.fail("TENSORGRAD_REQUIRE_CHROMIUM is set but chromium is not on the PATH")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def browse(chromium, page, tmp_path, *flags):
    """Load `page` (a file URL, with its #fragment) in headless chromium: its output."""
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             f"--user-data-dir={tmp_path / 'profile'}", *flags, page],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def nodes_with(dom, kind):
    """The text of each drawn node whose class includes `kind` (input, consumer, chosen)."""
    found = re.findall(rf'<g id="node\d+" class="node[^"]*\b{kind}\b[^"]*"[^>]*>(.*?)</g>',
                       dom, re.S)
    return [html.unescape(re.sub("<[^>]*>", " ", text)).replace("\xa0", " ") for text in found]


def test_the_page_is_one_file_that_needs_no_network(lecture, tmp_path, dot):
    path = viz.render(lecture["loss"], tmp_path / "graph.html", compact=True)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<script>" in text
    assert not re.search(r'(src|href)="(https?:)?//', text)      # nothing fetched
    assert text.count('class="node"') == 41 and not list(tmp_path.glob("*.tmp"))


def test_the_page_shows_a_nodes_values_and_its_inputs_and_consumers(lecture, tmp_path, dot,
                                                                   chromium):
    path = viz.render(lecture["loss"], tmp_path / "graph.html", compact=True, backward=True)
    dom = browse(chromium, path.as_uri() + "#logits", tmp_path, "--dump-dom")
    tip = html.unescape(re.search(r'<div id="tip"([^>]*)>(.*?)</div>', dom, re.S)[2])
    lines = tip.splitlines()
    assert lines[0] == "add   out = a + b" and "da = g" in lines and "db = g" in lines
    assert "logits  (32, 27) float32" in lines
    assert any(line.startswith("data: mean -0.0212") for line in lines)
    first_row = viz.values_text(lecture["logits"].numpy(), 1000)[0][0]
    assert " " * len("data: ") + first_row in lines             # and every value
    assert any(line.startswith("grad: mean") for line in lines)
    [chosen] = nodes_with(dom, "chosen")
    assert "logits" in chosen
    consumers = nodes_with(dom, "consumer")
    assert len(consumers) == 2 and {"logit_maxes", "norm_logits"} <= set(
        " ".join(consumers).split())
    inputs = " ".join(nodes_with(dom, "input"))
    assert "unbroadcast: sum over dim 0" in inputs and "(32, 27) float32" in inputs
    assert dom.count('class="edge input"') == 2 and dom.count('class="edge consumer"') == 2


def test_the_page_renders_in_a_browser(lecture, tmp_path, dot, chromium):
    path = viz.render(lecture["loss"], tmp_path / "graph.html", compact=True)
    shot = tmp_path / "shot.png"
    browse(chromium, path.as_uri() + "#counts", tmp_path, f"--screenshot={shot}",
           "--window-size=1000,800")
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 20_000
