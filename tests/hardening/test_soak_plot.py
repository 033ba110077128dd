"""bench/soak.py's SVG plot: well-formed, one line per series, dependency-free."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.harness import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import soak  # type: ignore[import-not-found]


def test_svg_has_rss_and_latency_lines(tmp_path: Path) -> None:
    rec = soak.Recorder()
    rec.rss = [(t * 5.0, 90.0 + t * 0.1) for t in range(20)]
    for bucket in range(6):
        rec.chat_buckets[bucket] = [0.040 + 0.001 * i for i in range(100)]
    out = tmp_path / "soak.svg"
    soak.write_svg(rec, out, "soak <test> & more")
    root = ET.fromstring(out.read_text())
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3  # RSS, p50, p99
    rss_points = lines[0].attrib["points"].split()
    assert len(rss_points) == 20
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "soak <test> & more" in texts and "p99" in texts
