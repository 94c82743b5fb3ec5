import torch

from wavephase.models.refinement import (
    coarse_code,
    coarse_samples,
    conditional_gaussian,
    gaussian_lowpass,
    impose_lowpass,
)


def test_impose_lowpass_matches_the_blur_and_keeps_high_frequencies():
    g = torch.Generator().manual_seed(0)
    f, y = torch.rand(3, 32, 32, generator=g, dtype=torch.float64), torch.rand(3, 32, 32, generator=g, dtype=torch.float64)
    c = gaussian_lowpass(y, 2.0)
    out = impose_lowpass(f, c, 2.0)
    assert out.dtype == torch.float64
    assert float((gaussian_lowpass(out, 2.0) - c).norm() / c.norm()) < 0.02
    # what the blur removes is f's own content
    hf = lambda x: x - gaussian_lowpass(x, 0.5)  # noqa: E731
    assert float((hf(out) - hf(f)).norm() / hf(f).norm()) < 0.1


def test_gaussian_lowpass_keeps_constants_and_means_and_follows_the_dtype():
    x = torch.rand(2, 16, 12, generator=torch.Generator().manual_seed(1))
    blurred = gaussian_lowpass(x, 1.5)
    assert blurred.dtype == torch.float32 and blurred.shape == x.shape
    torch.testing.assert_close(blurred.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)))
    torch.testing.assert_close(gaussian_lowpass(torch.full((8, 8), 3.0), 2.0), torch.full((8, 8), 3.0))
    assert gaussian_lowpass(torch.zeros(0, 8, 8), 1.0).shape == (0, 8, 8)
    assert impose_lowpass(torch.zeros(0, 3, 8, 8), torch.zeros(0, 1, 8, 8), 1.0).shape == (0, 3, 8, 8)


def test_coarse_code_samples_the_blur_on_the_coarse_grid():
    x = torch.rand(5, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    c = coarse_code(x, 2)
    assert c.shape == (5, 16)
    torch.testing.assert_close(c.view(5, 4, 4), gaussian_lowpass(x, 2.0)[:, 2::4, 2::4])


def test_coarse_samples_of_the_blur_are_the_coarse_code():
    x = torch.randn(3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(coarse_samples(gaussian_lowpass(x, 2.0), 2), coarse_code(x, 2), rtol=0, atol=0)


def test_conditional_gaussian_recovers_a_linear_model_and_its_residual_covariance():
    g = torch.Generator().manual_seed(3)
    n, d_c, d_z = 20000, 3, 2
    c = torch.randn(n, d_c, generator=g, dtype=torch.float64) + 5.0
    B = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]], dtype=torch.float64)
    noise = 0.3 * torch.randn(n, d_z, generator=g, dtype=torch.float64)
    mean_c, coef, factor = conditional_gaussian(c, (c - 5.0) @ B + noise)
    assert mean_c.dtype == coef.dtype == factor.dtype == torch.float32
    torch.testing.assert_close(mean_c, torch.full((d_c,), 5.0), atol=0.03, rtol=0)
    torch.testing.assert_close(coef, B.float(), atol=0.01, rtol=0)
    torch.testing.assert_close(factor @ factor.T, 0.09 * torch.eye(d_z), atol=0.005, rtol=0)
