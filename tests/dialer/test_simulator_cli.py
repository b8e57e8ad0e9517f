"""``callcycle simulate --quick``: the benchmark end to end, on the small grid."""

from __future__ import annotations

import json
from pathlib import Path

from callcycle.cli import main


def test_simulate_quick_prints_the_table_and_writes_results_and_chart(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--quick", "--out", str(tmp_path), "--processes", "2"]) == 0
    out = capsys.readouterr().out
    for policy in ("progressive", "power", "vicidial", "predictive", "oracle"):
        assert policy in out
    assert "occ%" in out and "agents=10" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["runs"]) == 2 * 5 * 2          # (base + step) x policies x seeds
    oracle = [r for r in data["summary"] if r["policy"] == "oracle" and r["step"] == 1.0][0]
    assert oracle["abandon_30d"] == 0 and oracle["occupancy"] > 0.95
    png = (tmp_path / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
