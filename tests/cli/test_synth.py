"""``wavephase synth``: one run on a texture, and user mistakes as one line with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wavephase.cli.main import main
from wavephase.synthesis.two_level import STAGE_STEPS

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
    # the CLI writes the stage length out (importing two_level at parse time would load torch): it must agree
    assert f"({STAGE_STEPS} L-BFGS steps each" in " ".join(text.split())


@pytest.mark.slow
def test_cli_synth_resumes_identically_after_sigkill(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    g = torch.Generator().manual_seed(1)
    k = torch.fft.fftfreq(32)
    smooth = torch.fft.ifft2(torch.fft.fft2(torch.randn(32, 32, generator=g))
                             * torch.exp(-((k[:, None] ** 2 + k[None] ** 2) / 0.01))).real
    png = tmp_path / "texture.png"
    Image.fromarray(((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).numpy().astype(np.uint8)).save(png)
    src = Path(__file__).parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def arguments(out):
        return ["synth", "--field", str(png), "--size", "32", "--samples", "1", "--steps", "100", "--threads", "1",
                "--out", str(out), "--no-progress"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "wavephase.cli", *arguments(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "synthesis.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "synthesis.pt").exists() and not (killed / "metrics.json").exists()
    whole = tmp_path / "whole"
    assert main(arguments(killed)) == 0 and main(arguments(whole)) == 0
    a, b = (json.loads((out / "metrics.json").read_text()) for out in (killed, whole))
    assert a["resumed"] and not b["resumed"] and a["steps_done"] == b["steps_done"]
    assert a["loss_history"] == b["loss_history"] and a["metrics"] == b["metrics"]


def test_cli_synth_recipe_with_smaller_sizes_records_them(tmp_path):
    out = tmp_path / "out"
    assert main(["synth", "--recipe", "ising-128", "--size", "16", "--samples", "1", "--train-size", "2",
                 "--test-size", "2", "--steps", "2", "--no-progress", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["field"], m["size"], m["n_targets"], m["n_heldout"], m["steps"]) == ("ising", 16, 2, 2, 2)
    assert m["recipe"]["name"] == "ising-128"
    assert m["recipe"]["overridden"] == {"size": 16, "n_samples": 1, "n_targets": 2, "n_heldout": 2, "steps": 2}
