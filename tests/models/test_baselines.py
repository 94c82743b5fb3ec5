import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from wavephase.data import make_polygons
from wavephase.models import GaussianPixelSampler
from wavephase.models.baselines import ConvVAE, train_vae
from wavephase.runs import Checkpoint

VAE = dict(n_blocks=2, latent_dim=8, channels=(16, 8), batch_size=32, progress=False)


@pytest.fixture(scope="module")
def images():
    return torch.from_numpy(make_polygons(160, size=16, random_state=0)[0])


def test_gaussian_pixel_sampler_matches_mean_and_variance(images):
    g = GaussianPixelSampler().fit(images)
    s = g.sample(4000, random_state=0)
    assert s.shape == (4000, 16, 16) and s.dtype == torch.float32
    assert torch.equal(s[:10], g.sample(10, random_state=0)[:10])
    # clipping to [0, 1] biases individual pixels a little; the mean image stays close
    assert float((s.mean(0) - images.mean(0)).abs().mean()) < 0.05
    assert g.sample(0).shape == (0, 16, 16)
    assert GaussianPixelSampler(n_components=5).fit(images).components_.shape == (256, 5)


def test_gaussian_pixel_sampler_bad_use(images):
    with pytest.raises(NotFittedError, match="before sample"):
        GaussianPixelSampler().sample(2)
    with pytest.raises(ValueError, match="n_components=300 exceeds the number of pixels \\(256\\)"):
        GaussianPixelSampler(n_components=300).fit(images)
    with pytest.raises(ValueError, match="at least 2 images"):
        GaussianPixelSampler().fit(images[:1])
    with pytest.raises(ValueError, match="stack of images"):
        GaussianPixelSampler().fit(images[0])


def test_vae_trains_for_the_given_epochs_reproducibly_and_samples_in_unit_range(images):
    torch_state = torch.random.get_rng_state()
    vae = train_vae(images, epochs=2, random_state=3, **VAE)
    again = train_vae(images, epochs=2, random_state=3, **VAE)
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # the global generator is left alone
    assert isinstance(vae, ConvVAE) and not vae.training
    assert vae.epochs_ == 2 and len(vae.history_) == 2 and vae.history_[1] < vae.history_[0]
    for k, v in vae.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    s = vae.sample(6, random_state=1)
    assert s.shape == (6, 16, 16) and s.min() >= 0 and s.max() <= 1
    assert torch.equal(s, again.sample(6, random_state=1))
    assert vae.sample(0).shape == (0, 16, 16)
    other = train_vae(images, epochs=2, random_state=4, **VAE)
    assert not torch.equal(other.sample(6, random_state=1), s)


def test_vae_resumes_from_its_checkpoint(images, tmp_path, monkeypatch):
    straight = train_vae(images[:96], epochs=2, **VAE)
    real_save = Checkpoint.save

    def save_then_die(self, state):
        real_save(self, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_vae(images[:96], epochs=2, checkpoint=tmp_path / "vae.pt", **VAE)
    monkeypatch.setattr(Checkpoint, "save", real_save)
    resumed = train_vae(images[:96], epochs=2, checkpoint=tmp_path / "vae.pt", **VAE)
    assert resumed.history_ == straight.history_
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_vae_bad_arguments(images):
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        train_vae(2 * images, epochs=1, **VAE)
    with pytest.raises(TypeError, match="epochs must be an int"):
        train_vae(images, epochs=1.5, **VAE)
    with pytest.raises(ValueError, match="at least 2 images"):
        train_vae(images[:1], epochs=1, **VAE)
    with pytest.raises(TypeError, match="complex"):
        train_vae(np.zeros((4, 16, 16), dtype=np.complex64), epochs=1, **VAE)
