import numpy as np
import pytest
import torch

from wavephase.metrics import frechet_distance, frechet_scattering_distance, path_smoothness, psnr


def test_psnr_matches_definition_per_image():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3, 16, 16, generator=g)
    noise = 0.1 * torch.randn(3, 16, 16, generator=g)
    out = psnr(ref + noise, ref)
    mse = (noise.double() ** 2).mean(dim=(-2, -1))
    assert out.shape == (3,)
    torch.testing.assert_close(out, -10 * torch.log10(mse))
    assert float(psnr(ref + noise, ref, data_range=2.0)[0]) == pytest.approx(float(out[0]) + 20 * np.log10(2))
    with pytest.raises(ValueError, match="same shape"):
        psnr(ref, ref[:2])


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    n, d = 20000, 3
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) * 2.0 + 1.0
    # N(0, I) vs N(1, 4 I): |mu|^2 + tr(I + 4I - 2*2I) = 3 + 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="same number of columns"):
        frechet_distance(a, b[:, :2])


def test_fsd_uses_the_embedding_and_is_zero_for_identical_sets():
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(50, 8, 8, generator=g)
    embed = lambda x: x.flatten(1)[:, :4]  # noqa: E731
    assert frechet_scattering_distance(imgs, imgs, embed, batch_size=7) == pytest.approx(0.0, abs=1e-8)
    assert frechet_scattering_distance(imgs, imgs + 1, embed) == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ValueError, match="images_b must hold at least 2 images"):
        frechet_scattering_distance(imgs, imgs[:0], embed)


def test_path_smoothness_of_linear_blend_and_of_a_jump():
    a, b = torch.zeros(8, 8), torch.ones(8, 8)
    t = torch.linspace(0, 1, 6)[:, None, None]
    blend = (1 - t) * a + t * b
    s = path_smoothness(blend, train_images=torch.stack([a, b]))
    assert s["step_ratio"] == pytest.approx(1.0) and s["length_ratio"] == pytest.approx(1.0)
    assert s["nearest_train_rmse"] > 0.1
    jump = torch.stack([a, a, a, b, b, b])
    sj = path_smoothness(jump, train_images=torch.stack([a, b]))
    assert sj["step_ratio"] == pytest.approx(5.0)
    assert sj["nearest_train_rmse"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="T >= 3"):
        path_smoothness(torch.zeros(2, 4, 4))
