"""Decoder loss and mini-batch size of the generative scattering network on MNIST.

For each ``LOSS:BATCH`` configuration, fits :class:`wavephase.models.GenerativeScattering`
(J=3, 256 whitened components, images zero-padded to 32x32) on the first
``--n-train`` MNIST training images and reports the test PSNR (28x28 area), the
Fréchet scattering distance (FSD) to ``--n-test`` test images of their
reconstructions and of ``--n-samples`` images decoded from white noise, and the
fit time. Prints a Markdown table.

    OMP_NUM_THREADS=1 python benchmarks/bench_generation.py [--n-train 5000] [--epochs 12]
        [--configs l2:128 bce:128 l2:64 bce:64 bce:32]
"""

from __future__ import annotations

import argparse

import torch

from wavephase.experiments.generation import load_generation_images
from wavephase.metrics.generation import frechet_distance, psnr
from wavephase.models import GenerativeScattering


def main() -> None:
    """Fit every configuration and print the results table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--configs", nargs="+", default=["l2:128", "bce:128", "l2:64", "bce:64", "bce:32"],
                        help="LOSS:BATCH_SIZE pairs")
    args = parser.parse_args()
    train, test, pad = load_generation_images("mnist", args.n_train, args.n_test)
    crop = (..., slice(pad, -pad), slice(pad, -pad))
    print("| loss | batch | PSNR test | FSD reconstructions | FSD samples | fit time |")
    print("|---|---|---|---|---|---|")
    for config in args.configs:
        loss, batch = config.split(":")
        model = GenerativeScattering(J=3, epochs=args.epochs, batch_size=int(batch), loss=loss, progress=False)
        model.fit(train)
        with torch.no_grad():
            rec = model.reconstruct(test)
            codes = model.encode(test)
            fsd_rec = frechet_distance(model.encode(rec), codes)
            fsd_samples = frechet_distance(model.encode(model.sample(args.n_samples, random_state=1)), codes)
        value = float(psnr(rec[crop], test[crop]).mean())
        print(f"| {loss} | {batch} | {value:.2f} dB | {fsd_rec:.1f} | {fsd_samples:.1f} | {model.train_seconds_:.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()
