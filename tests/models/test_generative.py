import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from wavephase.data import make_polygons
from wavephase.metrics import psnr
from wavephase.models import GaussianPixelSampler, GenerativeScattering
from wavephase.models.generative import ConvVAE, gaussian_lowpass, impose_lowpass, train_vae

SMALL = dict(J=2, L=4, n_components=12, channels=(16, 8), batch_size=32, lr=5e-3, progress=False)


@pytest.fixture(scope="module")
def images():
    x, _ = make_polygons(160, size=16, seed=0)
    return torch.from_numpy(x)


@pytest.fixture(scope="module")
def fitted(images):
    return GenerativeScattering(epochs=15, **SMALL).fit(images[:128])


def test_fit_whitens_training_embeddings_and_training_reduces_loss(fitted, images):
    z = fitted.encode(images[:128])
    assert z.shape == (128, 12)
    cov = torch.cov(z.T.double())
    torch.testing.assert_close(z.mean(0).double(), torch.zeros(12, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=2e-3, rtol=0)
    assert fitted.history_[-1] < 0.6 * fitted.history_[0]
    rec = fitted.reconstruct(images[:128])
    # better than the best constant image (the mean)
    base = psnr(images[:128].mean(0).expand(128, 16, 16), images[:128]).mean()
    assert float(psnr(rec, images[:128]).mean()) > float(base) + 1.0


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_error_losses_train_a_linear_output(images, loss):
    model = GenerativeScattering(epochs=4, **{**SMALL, "loss": loss}).fit(images[:64])
    assert model.history_[-1] < model.history_[0]
    out = model.decode(torch.zeros(3, 12))
    assert out.min() >= model.data_range_[0] and out.max() <= model.data_range_[1]


def test_decode_sample_interpolate_refine_shapes_and_properties(fitted, images):
    assert fitted.decode(torch.zeros(2, 3, 12)).shape == (2, 3, 16, 16)
    s1, s2 = fitted.sample(5, seed=1), fitted.sample(5, seed=1)
    assert s1.shape == (5, 16, 16) and torch.equal(s1, s2)
    assert s1.min() >= fitted.data_range_[0] and s1.max() <= fitted.data_range_[1]
    path = fitted.interpolate(images[130], images[131], steps=5)
    assert path.shape == (5, 16, 16)
    torch.testing.assert_close(path[0], fitted.reconstruct(images[130:131])[0], atol=1e-5, rtol=0)
    coarse = fitted.coarse(images[130:132])
    real = fitted.refine(coarse, n_samples=4, seed=0)
    assert real.shape == (2, 4, 16, 16)
    # every realization's blur matches the coarse input far better than the raw decoder output's does,
    # and the realizations differ in detail
    sigma = 0.5 * 2 ** (fitted.J - 1)
    target = coarse[:, None].expand_as(real)
    with torch.no_grad():
        raw = fitted.decode(fitted.encode(coarse))[:, None]
    err = (fitted.coarse(real) - target).norm() / target.norm()
    err_raw = (fitted.coarse(raw) - coarse[:, None]).norm() / coarse.norm()
    assert float(err) < 0.1 * float(err_raw) and float(err) < 0.05
    assert float((real[:, 0] - real[:, 1]).abs().max()) > 1e-3


def test_impose_lowpass_matches_the_blur_and_keeps_high_frequencies():
    g = torch.Generator().manual_seed(0)
    f, y = torch.rand(3, 32, 32, generator=g, dtype=torch.float64), torch.rand(3, 32, 32, generator=g, dtype=torch.float64)
    c = gaussian_lowpass(y, 2.0)
    out = impose_lowpass(f, c, 2.0)
    assert float((gaussian_lowpass(out, 2.0) - c).norm() / c.norm()) < 0.02
    # what the blur removes is f's own content
    hf = lambda x: x - gaussian_lowpass(x, 0.5)  # noqa: E731
    assert float((hf(out) - hf(f)).norm() / hf(f).norm()) < 0.1


def test_encode_is_differentiable(fitted, images):
    x = images[:2].clone().requires_grad_(True)
    fitted.encode(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_input_raises_clear_errors(images, fitted):
    model = GenerativeScattering(epochs=1, **SMALL)
    with pytest.raises(NotFittedError, match="fit"):
        model.decode(torch.zeros(1, 12))
    with pytest.raises(NotFittedError, match="fit"):
        model.sample(3)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        model.fit([np.zeros((16, 16)), np.zeros((16, 12))])
    with pytest.raises(ValueError, match="too small for J"):
        GenerativeScattering(**{**SMALL, "J": 5}).fit(images[:40])
    bad = images[:40].clone()
    bad[3, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(bad)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*J"):
        model.fit(torch.rand(40, 18, 18))
    with pytest.raises(ValueError, match="shape \\(n_images, M, N\\)"):
        model.fit(torch.rand(16, 16))
    with pytest.raises(ValueError, match="codes must have shape"):
        fitted.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="like the training images"):
        fitted.encode(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="loss"):
        GenerativeScattering(**{**SMALL, "loss": "huber"}).fit(images[:40])
    with pytest.raises(ValueError, match="needs images in \\[0, 1\\].*loss='l2'"):
        GenerativeScattering(**SMALL).fit(2 * images[:40])


def _state(model):
    return {k: v.clone() for k, v in model.decoder_.state_dict().items()}


def test_resume_after_interruption_gives_identical_weights(images, tmp_path, monkeypatch):
    import wavephase.models.generative as gen

    straight = GenerativeScattering(epochs=2, checkpoint=tmp_path / "a.pt", **SMALL).fit(images[:96])

    real_save = gen.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # stands in for a kill right after the epoch-1 checkpoint

    monkeypatch.setattr(gen, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        GenerativeScattering(epochs=2, checkpoint=tmp_path / "b.pt", **SMALL).fit(images[:96])
    monkeypatch.setattr(gen, "save_checkpoint", real_save)
    resumed = GenerativeScattering(epochs=2, checkpoint=tmp_path / "b.pt", **SMALL).fit(images[:96])
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.history_ == straight.history_
    # a checkpoint of other data is refused, not silently reused
    with pytest.raises(ValueError, match="other training images or settings"):
        GenerativeScattering(epochs=2, checkpoint=tmp_path / "b.pt", **SMALL).fit(images[1:97])


@pytest.mark.slow
def test_sigkill_during_training_resumes_from_last_checkpoint(images, tmp_path):
    np.save(tmp_path / "x.npy", images[:96].numpy())
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import wavephase.models.generative as gen
        real = gen.save_checkpoint
        def save(state, path):
            real(state, path)
            if state["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        gen.save_checkpoint = save
        gen.GenerativeScattering(epochs=3, checkpoint={str(tmp_path / 'c.pt')!r}, **{SMALL!r}).fit(
            np.load({str(tmp_path / 'x.npy')!r}))
    """)
    # same thread count as this process, so that both runs do the same float arithmetic
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, "-c", script], env=env)
    assert proc.returncode == -9
    assert torch.load(tmp_path / "c.pt", weights_only=True)["epoch"] == 2
    resumed = GenerativeScattering(epochs=3, checkpoint=tmp_path / "c.pt", **SMALL).fit(images[:96])
    straight = GenerativeScattering(epochs=3, **SMALL).fit(images[:96])
    a, b = _state(straight), _state(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_gaussian_pixel_sampler_matches_mean_and_variance(images):
    g = GaussianPixelSampler().fit(images)
    s = g.sample(4000, seed=0)
    assert s.shape == (4000, 16, 16)
    # clipping to [0, 1] biases individual pixels a little; the mean image stays close
    assert float((s.mean(0) - images.mean(0)).abs().mean()) < 0.05
    with pytest.raises(NotFittedError):
        GaussianPixelSampler().sample(2)


def test_vae_trains_for_the_given_time_and_samples_in_unit_range(images):
    import time

    t0 = time.perf_counter()
    vae = train_vae(images, 1.5, n_blocks=2, latent_dim=8, channels=(16, 8), batch_size=32, progress=False)
    assert 1.5 <= time.perf_counter() - t0 < 10
    assert vae.epochs_ > 0
    s = vae.sample(6)
    assert s.shape == (6, 16, 16) and s.min() >= 0 and s.max() <= 1
    assert isinstance(vae, ConvVAE)


@pytest.mark.slow
def test_generate_cli_quick_run_writes_figures_and_metrics(tmp_path):
    import json

    from wavephase.cli.main import main

    out = tmp_path / "gen"
    assert main(["generate", "--dataset", "polygons", "--quick", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("psnr_train", "psnr_test", "fsd_samples", "fsd_gaussian_baseline", "fsd_vae_baseline"):
        assert np.isfinite(metrics[key]), key
    for name in metrics["figures"]:
        assert (out / name).stat().st_size > 1000
    assert (out / "checkpoint.pt").exists()
    assert metrics["refine_lowpass_error"] < 0.05
    with pytest.raises(SystemExit):  # argparse rejects unknown data sets
        main(["generate", "--dataset", "imagenet", "--out", str(out)])
