"""The sections of ``wavephase report``, one per application of the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wavephase.report.build import Section

__all__ = ["SECTIONS"]


def _scattering(out: Path, quick: bool) -> dict[str, Any]:
    from wavephase.report.scattering_demo import run_scattering_demo

    size = 128 if quick else 256
    m = run_scattering_demo(out, image="grace_hopper", size=size, J=4, L=8)
    d = m["deformation"]
    return {
        "settings": {"image": m["image"], "size": size, "J": 4, "L": 8},
        "table": {
            "output channels": m["channels"],
            "filter-bank build (s)": m["build_seconds"],
            "forward, one image (s)": m["forward_seconds"],
            "Littlewood-Paley min": m["littlewood_paley_min"],
            "Littlewood-Paley max": m["littlewood_paley_max"],
            **{f"deformation ratio at ‖∇τ‖={g:g}: scattering": s for g, s in zip(d["max_gradient"], d["scattering"])},
            **{f"deformation ratio at ‖∇τ‖={g:g}: Fourier modulus": f
               for g, f in zip(d["max_gradient"], d["fourier modulus"])},
        },
        "figures": {"Morlet wavelets": out / m["figures"]["wavelets"],
                    "first-order scattering of a photograph": out / m["figures"]["coefficients"],
                    "deformation stability: scattering vs Fourier modulus": out / m["figures"]["deformation"]},
    }


SECTIONS: list[Section] = [
    Section("scattering", "Wavelets and scattering of a real image", _scattering),
]
