"""Compute Kymatio 0.3.0 reference scattering coefficients for the agreement test.

Run in an environment with kymatio==0.3.0 (it needs scipy<1.15) and torch:

    python -m venv .venv-kymatio
    .venv-kymatio/bin/pip install torch==2.13.0 kymatio==0.3.0 "scipy<1.15"
    .venv-kymatio/bin/python tests/reference/make_kymatio_reference.py

It writes tests/reference/kymatio_scattering2d.npz: for each configuration ``k``, the
input ``k/x`` (float64), Kymatio's output ``k/s`` (computed in float64) and the
settings ``k/J``, ``k/L``, ``k/max_order``.
"""

from pathlib import Path

import numpy as np
import torch
from kymatio.torch import Scattering2D

# (name, J, L, shape, max_order)
CONFIGS = [
    ("J2_L8_28x28", 2, 8, (28, 28), 2),
    ("J3_L8_32x32", 3, 8, (32, 32), 2),
    ("J2_L4_24x40", 2, 4, (24, 40), 2),
    ("J3_L6_40x32_order1", 3, 6, (40, 32), 1),
    ("J1_L8_16x16", 1, 8, (16, 16), 2),
    ("J3_L8_8x8", 3, 8, (8, 8), 2),
    ("J4_L8_64x64", 4, 8, (64, 64), 2),
]


def structured_image(shape, rng):
    """A smooth image with edges, so that coefficients are not just those of noise."""
    u1, u2 = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    disc = ((u1 - shape[0] / 2.2) ** 2 + (u2 - shape[1] / 1.8) ** 2 < (min(shape) / 3) ** 2).astype(float)
    return disc + 0.3 * np.cos(0.7 * u1 + 0.2 * u2) + 0.1 * rng.standard_normal(shape)


def main() -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for name, J, L, shape, order in CONFIGS:
        x = np.stack([rng.standard_normal(shape), structured_image(shape, rng)])
        S = Scattering2D(J=J, shape=shape, L=L, max_order=order).double()
        with torch.no_grad():
            s = S(torch.from_numpy(x)).numpy()
        arrays.update({f"{name}/x": x, f"{name}/s": s, f"{name}/J": J, f"{name}/L": L, f"{name}/max_order": order})
        print(name, x.shape, "->", s.shape)
    import kymatio

    arrays["kymatio_version"] = np.array(kymatio.__version__)
    out = Path(__file__).with_name("kymatio_scattering2d.npz")
    np.savez_compressed(out, **arrays)
    print("wrote", out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
