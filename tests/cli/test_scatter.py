"""``wavephase scatter``: a small run, its seed and device in metrics.json."""

from __future__ import annotations

import json

import pytest

from wavephase.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_scatter_seed_draws_the_deformations_only(tmp_path, capsys):
    runs = {}
    for seed in (0, 0, 5):
        out = tmp_path / f"seed-{seed}-{len(runs)}"
        assert main(["scatter", "--size", "32", "--J", "2", "--L", "4", "--seed", str(seed), "--device", "cpu",
                     "--out", str(out)]) == 0
        runs[out.name] = json.loads((out / "metrics.json").read_text())
    a, b, c = runs.values()
    assert (a["random_state"], c["random_state"], a["device"]) == (0, 5, "cpu")
    assert a["deformation"] == b["deformation"] != c["deformation"]
    assert a["output_shape"] == c["output_shape"] == [1 + 2 * 4 + 4 ** 2, 8, 8]
    assert "channels" in capsys.readouterr().out
