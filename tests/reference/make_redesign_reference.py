"""Outputs of every application on small seeded inputs, from the code before the redesign.

Run at commit 6949ff9 (the last commit before the layout of ``docs/design.rst``) with
``python tests/reference/make_redesign_reference.py``; it writes
``tests/reference/redesign_outputs.npz``. ``tests/test_redesign_reference.py`` recomputes
each entry with today's API and checks that the same seeds still give the same outputs.
The script calls the API as it was then (``seed=`` where there is now ``random_state=``,
molecules as two arrays where there is now a ``Molecules`` container), so it documents
the old calls; it is kept as the record of how the stored values were made, not rerun.

The three ``generative_*`` entries were rewritten once, by this script run on 6949ff9
with one change to ``WhitenedScattering.fit_features``: the sign convention of today's
``WhitenedScattering`` (each principal axis's largest entry made positive, after
``var.clamp_min``). Without it a principal axis flips sign under round-off, and the
stored codes could not be matched on another machine. Every other entry of that
rerun was identical to the first run.

The ``synthesis_phase_harmonics`` and ``synthesis_sign`` entries were rewritten on purpose
for issue 22, by ``compute_outputs`` of ``tests/test_redesign_reference.py`` (every other
entry checked unchanged in the same run): the spectral preconditioner of ``synthesize``
no longer floors the targets' power at 1e-6 of its mean (which filled a dealiased
simulation's dissipation range with power 1e9 times the truth's) and fixes the samples'
mean to the targets', and the ``spectrum`` family's floor went from 1e-6 to 1e-12.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).with_name("redesign_outputs.npz")


def main() -> None:
    torch.set_num_threads(1)
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
    from wavephase.models.molecules import qm9_invariants
    from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
    from wavephase.testing import random_molecule

    mols = [random_molecule(n, seed=n) for n in (5, 7, 9)]
    pos = torch.zeros(3, 9, 3, dtype=torch.float64)
    ch = torch.zeros(3, 9, dtype=torch.float64)
    for i, (p, z) in enumerate(mols):
        pos[i, : len(p)], ch[i, : len(z)] = p, z
    out["solid_harmonic3d"] = SolidHarmonicScattering3D(J=2, L=2, grid_step=0.8, dtype=torch.float64)(pos, ch).numpy()
    out["atom_spectrum"] = SolidHarmonicAtomSpectrum(dtype=torch.float64)(pos, ch).numpy()
    out["qm9_fast_invariants"] = qm9_invariants("fast")(pos.float(), ch.float()).numpy()

    # Phase harmonics and scattering covariance.
    from wavephase import PhaseHarmonicStatistics
    from wavephase.harmonics.scattering_covariance import ScatteringCovariance
    from wavephase.physics import ising

    fields = ising(32, 3, seed=0, progress=False)
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
                                                            steps=8, seed=1, J=3, L=4, progress=False).numpy()
    out["synthesis_gaussian"] = wavephase.synthesize(fields.double(), "gaussian", n_samples=2, seed=2).numpy()
    out["synthesis_sign"] = wavephase.synthesize(fields.double(), "phase-harmonics", n_samples=2, steps=6, seed=3,
                                                 J=3, L=4, match="sign", progress=False).numpy()
    from wavephase.physics import turbulence2d

    out["turbulence_32"] = turbulence2d(32, 2, seed=0, spinup_time=2.0, sample_interval=0.5,
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
    from wavephase.models.classification import ScatteringClassifier, SparseScatteringClassifier

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

    polys, _ = make_polygons(64, size=16, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        gen_model = GenerativeScattering(J=2, L=4, n_components=16, epochs=2, batch_size=16, seed=0,
                                         progress=False, checkpoint=Path(tmp) / "g.pt").fit(polys)
    out["generative_codes"] = gen_model.encode(polys[:4]).detach().numpy()
    out["generative_decoded"] = gen_model.decode(gen_model.encode(polys[:4])).detach().numpy()
    out["generative_samples"] = gen_model.sample(4, seed=1).detach().numpy()

    # Molecule energies: fit on random molecules, predict, forces.
    from wavephase.models.molecules import MoleculeEnergyRegressor

    P = torch.zeros(24, 8, 3, dtype=torch.float64)
    Z = torch.zeros(24, 8, dtype=torch.float64)
    for i in range(24):
        p, z = random_molecule(4 + i % 5, seed=100 + i)
        P[i, : len(p)], Z[i, : len(z)] = p, z
    E = (Z.sum(1) * 3.0 + (P.norm(dim=-1) * (Z > 0)).sum(1)).numpy()
    reg = MoleculeEnergyRegressor(qm9_invariants("fast"), alphas=np.logspace(-6, 2, 5), cv=3)
    reg.fit(P[:18].float().numpy(), Z[:18].numpy(), E[:18])
    out["molecules_predict"] = reg.predict(P[18:].float().numpy(), Z[18:].numpy())
    out["molecules_forces"] = reg.predict_forces(P[18:20].float().numpy(), Z[18:20].numpy()).numpy()

    np.savez_compressed(OUT, **out)
    print(f"wrote {len(out)} arrays to {OUT}")


if __name__ == "__main__":
    main()
