import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from wavephase.cli.main import build_parser, main


def _metrics(folder):
    """metrics.json without what may differ between identical runs: timings and the "run" block."""
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["run"]) >= {"command", "date", "machine"}
    return {k: v for k, v in metrics.items() if k != "run" and not k.endswith("seconds")}


QUICK = ["generate", "--dataset", "polygons", "--quick", "--seed", "3", "--no-progress", "--out"]


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A quick run, made once for the tests below."""
    out = tmp_path_factory.mktemp("generate") / "first"
    assert main([*QUICK, str(out)]) == 0
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generate_quick_run_writes_figures_and_metrics_and_a_rerun_gives_the_same_metrics(first, tmp_path):
    second = tmp_path / "second"
    metrics = _metrics(first)
    for key in ("psnr_train", "psnr_test", "fsd_samples", "fsd_gaussian_baseline", "fsd_vae_baseline"):
        assert np.isfinite(metrics[key]), key
    assert metrics["random_state"] == 3 and metrics["vae_epochs"] == metrics["epochs"] + 6
    for key in ("sample_score", "sample_score_vae", "sample_score_gaussian", "sample_score_train"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["sample_score_train"] >= 0.95  # real polygons are convex shapes
    # tiny sizes: 200 codes, so a mixture of 2 (at least 100 codes per component)
    assert metrics["prior"] == "mixture" and metrics["prior_components"] == 2
    assert np.isfinite(metrics["prior_test_loglik"]) and np.isfinite(metrics["gaussian_test_loglik"])
    for name in metrics["figures"]:
        assert (first / name).stat().st_size > 1000
    assert (first / "checkpoint.pt").exists() and (first / "checkpoint-vae.pt").exists()
    assert metrics["refine_lowpass_error"] < 0.05
    # the same seed gives the same metrics, from scratch (cold) or from the finished checkpoints (warm)
    assert main([*QUICK, str(second)]) == 0
    assert _metrics(second) == metrics
    assert main([*QUICK, str(first)]) == 0
    assert _metrics(first) == metrics


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generate_killed_while_training_the_vae_resumes_to_the_same_metrics(first, tmp_path):
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from wavephase.cli.main import main
        from wavephase.runs import Checkpoint
        real = Checkpoint.save
        def save(self, state):
            real(self, state)
            if self.what == "VAE checkpoint" and state["epoch"] == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        Checkpoint.save = save
        main({[*QUICK, str(out)]!r})
    """)
    # same thread count as this process, so that both runs do the same float arithmetic
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    assert subprocess.run([sys.executable, "-c", script], env=env).returncode == -9
    assert not (out / "metrics.json").exists() and (out / "checkpoint-vae.pt").exists()
    assert main([*QUICK, str(out)]) == 0
    assert _metrics(out) == _metrics(first)


@pytest.mark.parametrize("extra, message", [
    (["--train-size", "1"], "train_size must be >= 2"),
    (["--n-components", "500", "--train-size", "400"], "n_components=500 must be smaller than train_size=400"),
    (["--vae-epochs", "-1"], "vae_epochs must be >= 0"),
    (["--seed", "-3"], "--seed must be a non-negative int"),  # names the flag, not the API
    (["--device", "tpu"], "device='tpu'"),
])
def test_bad_arguments_are_one_line_errors_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["generate", "--dataset", "polygons", "--out", str(out), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())  # nothing was computed


def test_unusable_out_or_checkpoint_is_refused_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["generate", "--dataset", "polygons", "--out", str(a_file)]) == 2
    assert "is an existing file" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["generate", "--dataset", "polygons", "--out", str(out), "--checkpoint", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse rejects unknown data sets
        main(["generate", "--dataset", "imagenet", "--out", str(out)])


def test_earlier_flag_spellings_still_parse():
    args = build_parser().parse_args(["generate", "--dataset", "mnist", "--out", "x", "--n-train", "5", "--n-test", "7"])
    assert (args.train_size, args.test_size, args.progress, args.vae_epochs) == (5, 7, True, None)


@pytest.mark.parametrize("dataset, expected", [("mnist", 40000), ("fashion-mnist", 40000), ("polygons", 20000)])
def test_default_training_size_depends_on_the_data_set(tmp_path, monkeypatch, dataset, expected):
    from wavephase.experiments import generation

    seen = []

    class Stop(Exception):
        pass

    def loader(name, train_size, test_size, **kwargs):
        seen.append((name, train_size))
        raise Stop

    monkeypatch.setattr(generation, "load_generation_images", loader)
    with pytest.raises(Stop):
        generation.run_generation(dataset, tmp_path / "out", progress=False)
    with pytest.raises(Stop):
        generation.run_generation(dataset, tmp_path / "out", train_size=300, progress=False)
    assert seen == [(dataset, expected), (dataset, 300)]
    assert build_parser().parse_args(["generate", "--dataset", dataset, "--out", "x"]).train_size is None
