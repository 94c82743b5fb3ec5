"""``wavephase synth``: one run on a texture, and user mistakes as one line with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wavephase.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cli_synth_on_png_texture(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    img = (torch.rand(48, 48, generator=g) * 255).numpy().astype(np.uint8)
    png = tmp_path / "texture.png"
    Image.fromarray(img).save(png)
    out = tmp_path / "out"
    status = main(["synth", "--field", str(png), "--size", "32", "--steps", "6", "--samples", "2",
                   "--out", str(out), "--no-progress"])
    assert status == 0
    for name in ("fields.png", "spectra.png", "pdf.png", "metrics.json", "metrics.txt", "synthesis.pt"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_samples"] == 2 and m["steps_done"] == 6 and m["size"] == 32
    assert set(m["metrics"]["flatness"]) >= {"synthesis", "gaussian", "truth"}
    assert len(m["metrics"]["spectrum_per_octave"]["truth"]) == 4
    assert m["metrics"]["flatness"]["relative_error_synthesis"] >= 0
    assert "flatness" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--field", "clouds"], "neither"),
    (["--field", "ising", "--samples", "0"], "n_samples"),
    (["--field", "ising", "--device", "cuda:7"], "device"),
])
def test_cli_synth_user_mistakes(tmp_path, capsys, argv, match):
    assert main(["synth", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_cli_synth_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = capsys.readouterr().out
    assert "--progress, --no-progress" in text and "(default: phase-harmonics)" in text
