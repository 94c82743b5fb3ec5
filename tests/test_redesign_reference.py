"""The same seeds give the same outputs as before the redesign (commit 6949ff9).

``reference/redesign_outputs.npz`` was written by ``reference/make_redesign_reference.py``
with the code of that commit, on one thread. Each entry is recomputed here with
today's API, also on one thread (the generative model's randomised SVD is
reproducible at a fixed thread count only).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCE = Path(__file__).parent / "reference" / "redesign_outputs.npz"
TRAINED_IN_FLOAT32 = {"classifier_sparse_proba", "generative_decoded", "generative_samples"}


def compute_outputs() -> dict[str, np.ndarray]:
    """Every entry of the stored reference, computed with today's API."""
    out: dict[str, np.ndarray] = {}
    gen = torch.Generator().manual_seed(0)

    # 2D scattering: both backends, rotation pooling, gradient.
    from wavephase import Scattering2D

    x = torch.randn(3, 28, 28, generator=gen, dtype=torch.float64)
    for backend in ("fft", "matmul"):
        S = Scattering2D(2, (28, 28), L=4, backend=backend, dtype=torch.float64)
        out[f"scattering2d_{backend}"] = S(x).numpy()
        xg = x.clone().requires_grad_(True)
        S(xg).square().sum().backward()
        out[f"scattering2d_{backend}_grad"] = xg.grad.numpy()
    out["scattering2d_rotation_average"] = Scattering2D(2, (28, 28), L=4, rotation="average",
                                                        dtype=torch.float64)(x).numpy()
    out["scattering2d_J3_order1"] = Scattering2D(3, (40, 36), L=6, max_order=1, dtype=torch.float64)(
        torch.randn(2, 40, 36, generator=gen, dtype=torch.float64)).numpy()

    # 3D solid-harmonic scattering, atom spectra, the QM9 "fast" invariants.
    from wavephase import SolidHarmonicScattering3D
    from wavephase.data.molecules import Molecules
    from wavephase.models.molecule_features import qm9_invariants
    from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
    from wavephase.testing import random_molecule

    mols = [random_molecule(n, random_state=n) for n in (5, 7, 9)]
    pos = torch.zeros(3, 9, 3, dtype=torch.float64)
    ch = torch.zeros(3, 9, dtype=torch.float64)
    for i, (p, z) in enumerate(mols):
        pos[i, : len(p)], ch[i, : len(z)] = p, z
    out["solid_harmonic3d"] = SolidHarmonicScattering3D(J=2, L=2, grid_step=0.8)(pos, ch).numpy()  # float64 input
    out["atom_spectrum"] = SolidHarmonicAtomSpectrum()(pos, ch).numpy()
    out["qm9_fast_invariants"] = qm9_invariants("fast")(pos.float(), ch.float()).numpy()

    # Phase harmonics and scattering covariance.
    from wavephase import PhaseHarmonicStatistics
    from wavephase.harmonics.scattering_covariance import ScatteringCovariance
    from wavephase.physics import ising

    fields = ising(32, 3, random_state=0, progress=False)
    out["ising_32"] = fields.numpy()
    stats = PhaseHarmonicStatistics((32, 32), J=3, L=4, dtype=torch.float64)
    stats.set_reference(fields.double())
    for k, v in stats(fields.double()).items():
        out[f"phase_harmonics_{k}"] = torch.view_as_real(v.to(torch.complex128)).numpy()
    out["phase_harmonics_loss"] = np.array(float(stats.loss(fields[:1].double())))
    cov = ScatteringCovariance((32, 32), J=3, L=4, dtype=torch.float64)
    cov.set_reference(fields.double())
    for k, v in cov(fields.double()).items():
        out[f"scattering_covariance_{k}"] = torch.view_as_real(v.to(torch.complex128)).numpy()

    # Syntheses.
    import wavephase

    out["synthesis_phase_harmonics"] = wavephase.synthesize(fields[:1].double(), "phase-harmonics", n_samples=2,
                                                            steps=8, random_state=1, J=3, L=4,
                                                            progress=False).fields.numpy()
    out["synthesis_gaussian"] = wavephase.synthesize(fields.double(), "gaussian", n_samples=2,
                                                     random_state=2).fields.numpy()
    out["synthesis_sign"] = wavephase.synthesize(fields.double(), "phase-harmonics", n_samples=2, steps=6,
                                                 random_state=3, J=3, L=4, match="sign",
                                                 progress=False).fields.numpy()
    from wavephase.physics import turbulence2d

    out["turbulence_32"] = turbulence2d(32, 2, random_state=0, spinup_time=2.0, sample_interval=0.5,
                                        progress=False).numpy()

    # Sparse coding.
    from wavephase.sparse import ISTC, fista, ista

    D = torch.randn(16, 32, generator=gen, dtype=torch.float64)
    xs = torch.randn(5, 16, generator=gen, dtype=torch.float64)
    out["ista"] = ista(xs, D, 0.1, n_iter=20).numpy()
    out["fista"] = fista(xs, D, 0.1, n_iter=20).numpy()
    torch.manual_seed(0)
    net = ISTC(16, 32, 3, 0.5).double()
    out["istc"] = net(xs).detach().numpy()

    # Classification on small synthetic digits: two classes of oriented bars.
    from wavephase.models import ScatteringClassifier, SparseScatteringClassifier

    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 2
    X = rng.normal(0, 0.3, (n, 16, 16)).astype(np.float32)
    X[y == 0, 6:10, :] += 1.0
    X[y == 1, :, 6:10] += 1.0
    lin = ScatteringClassifier(J=2, L=4).fit(X[:40], y[:40])
    out["classifier_linear_proba"] = lin.predict_proba(X[40:])
    sparse = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=2, batch_size=16,
                                        random_state=0).fit(X[:40], y[:40])
    out["classifier_sparse_proba"] = sparse.predict_proba(X[40:])

    # Generation on small polygons.
    from wavephase.data.polygons import make_polygons
    from wavephase.models.generative import GenerativeScattering

    polys, _ = make_polygons(64, size=16, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        gen_model = GenerativeScattering(J=2, L=4, n_components=16, epochs=2, batch_size=16, random_state=0,
                                         progress=False, checkpoint=Path(tmp) / "g.pt").fit(polys)
    out["generative_codes"] = gen_model.encode(polys[:4]).detach().numpy()
    out["generative_decoded"] = gen_model.decode(gen_model.encode(polys[:4])).detach().numpy()
    out["generative_samples"] = gen_model.sample(4, random_state=1).detach().numpy()

    # Molecule energies: fit on random molecules, predict, forces.
    from wavephase.models.molecules import MoleculeEnergyRegressor

    P = torch.zeros(24, 8, 3, dtype=torch.float64)
    Z = torch.zeros(24, 8, dtype=torch.float64)
    for i in range(24):
        p, z = random_molecule(4 + i % 5, random_state=100 + i)
        P[i, : len(p)], Z[i, : len(z)] = p, z
    E = (Z.sum(1) * 3.0 + (P.norm(dim=-1) * (Z > 0)).sum(1)).numpy()
    reg = MoleculeEnergyRegressor(qm9_invariants("fast"), alphas=np.logspace(-6, 2, 5), cv=3)
    reg.fit(Molecules(P[:18].float().numpy(), Z[:18].numpy()), E[:18])
    out["molecules_predict"] = reg.predict(Molecules(P[18:].float().numpy(), Z[18:].numpy()))
    out["molecules_forces"] = reg.predict_forces(Molecules(P[18:20].float().numpy(), Z[18:20].numpy()))

    return out


@pytest.fixture(scope="module")
def outputs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return compute_outputs()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(np.load(REFERENCE).files))
def test_same_seed_same_output(outputs, name):
    expected = np.load(REFERENCE)[name]
    got = np.asarray(outputs[name])
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max()), 1e-30)
    # Models trained in float32 by SGD amplify the round-off of the new 2D cascade
    # (its sums run in another order) from 1e-7 to about 1e-4 of their outputs.
    rtol = 2e-3 if name in TRAINED_IN_FLOAT32 else 1e-5
    assert float(np.abs(got - expected).max()) <= rtol * scale, f"{name} differs from before the redesign"
