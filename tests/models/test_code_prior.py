import math

import pytest
import torch
from sklearn.mixture import GaussianMixture

from wavephase.models.code_prior import code_log_likelihood, fit_code_mixture, sample_code_mixture


@pytest.fixture(scope="module")
def two_clusters():
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(600, 4, generator=g) + 5, 0.5 * torch.randn(200, 4, generator=g) - 5])


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_mixture_finds_the_clusters_and_samples_them_in_proportion(two_clusters, covariance):
    mix = fit_code_mixture(two_clusters, 2, covariance=covariance, reg_covar=1e-6)
    assert mix["means"].shape == (2, 4) and mix["cholesky"].shape == (2, 4, 4)
    assert sorted(mix["weights"].tolist()) == pytest.approx([0.25, 0.75], abs=1e-6)
    z = sample_code_mixture(mix, 4000, torch.Generator().manual_seed(1))
    assert z.shape == (4000, 4) and z.dtype == torch.float32
    assert float((z[:, 0] > 0).float().mean()) == pytest.approx(0.75, abs=0.03)
    # none between the clusters, where white noise of the same mean and covariance would put many
    assert float((z.mean(1).abs() < 2).float().mean()) < 0.01
    again = sample_code_mixture(mix, 4000, torch.Generator().manual_seed(1))
    assert torch.equal(z, again)
    assert sample_code_mixture(mix, 0, torch.Generator()).shape == (0, 4)


def test_log_likelihood_matches_scikit_learn_and_the_standard_normal(two_clusters):
    mix = fit_code_mixture(two_clusters, 2, covariance="full", reg_covar=1e-6)
    gmm = GaussianMixture(2, covariance_type="full", reg_covar=1e-6, random_state=0).fit(two_clusters.double().numpy())
    assert code_log_likelihood(mix, two_clusters) == pytest.approx(gmm.score(two_clusters.double().numpy()), rel=1e-6)
    z = torch.zeros(3, 4)
    assert code_log_likelihood(None, z) == pytest.approx(-2 * math.log(2 * math.pi))
    assert code_log_likelihood(mix, two_clusters) > code_log_likelihood(None, two_clusters)


def test_mixture_rejects_bad_input(two_clusters):
    with pytest.raises(ValueError, match="covariance"):
        fit_code_mixture(two_clusters, 2, covariance="tied")
    with pytest.raises(ValueError, match="n_components"):
        fit_code_mixture(two_clusters[:3], 5)
    mix = fit_code_mixture(two_clusters, 2)
    with pytest.raises(ValueError, match="dimensions"):
        code_log_likelihood(mix, torch.zeros(2, 3))
