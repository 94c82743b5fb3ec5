"""Published and anchor figures the report sets beside its own, each with its source.

None of these is measured by the report: they are the figures of the papers and of
the talk that the applications reproduce, at the sizes of those papers (usually far
larger than the quick report's), so the page shows them as context, not as targets
of a quick run.
"""

from __future__ import annotations

__all__ = ["ANCHORS"]

ANCHORS: dict[str, dict[str, str]] = {
    "scattering": {
        "value": "ratio ∝ ‖∇τ‖∞ for scattering; the Fourier modulus is unstable at high frequencies",
        "source": "S. Mallat, Group invariant scattering, Comm. Pure Appl. Math. 65 (2012), Lipschitz bound",
    },
    "ising": {
        "value": "no published number: syntheses shown as pictures, with matching moments",
        "source": "S. Zhang, S. Mallat, Maximum entropy models from phase harmonic covariances, ACHA 53 (2021)",
    },
    "turbulence": {
        "value": "pywph 1.1.3, 128², 100 iterations: flatness 52 % off, 238 s per field",
        "source": "independent side-by-side recorded in issue 22 of this project",
    },
    "mnist": {
        "value": "0.4–0.5 % error (full 60k training set)",
        "source": "J. Bruna, S. Mallat, Invariant scattering convolution networks, IEEE PAMI 35 (2013)",
    },
    "fashion-mnist": {
        "value": "89.7 % accuracy, best scikit-learn model (SVC), full training set",
        "source": "H. Xiao, K. Rasul, R. Vollgraf, Fashion-MNIST benchmark, arXiv:1708.07747 (2017)",
    },
    "qm9": {
        "value": "about 0.5 kcal/mol for networks; scattering + linear of the same order (110k training molecules)",
        "source": "S. Mallat, Multiscale Models for Image Classification and Physics with Deep Networks (talk); "
                  "M. Eickenberg et al., J. Chem. Phys. 148 (2018)",
    },
    "generation": {
        "value": "no published FSD: reconstructions and samples shown as pictures",
        "source": "T. Angles, S. Mallat, Generative networks as inverse problems with scattering transforms, "
                  "ICLR 2018",
    },
}
