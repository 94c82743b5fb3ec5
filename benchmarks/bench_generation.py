"""Decoder loss and mini-batch size of the generative scattering network on MNIST, Fashion-MNIST or polygons.

For each ``LOSS:BATCH`` configuration, fits :class:`wavephase.models.GenerativeScattering`
(256 whitened components; J=3 on MNIST-like images zero-padded to 32x32, J=4 on
64x64 polygons) on the first ``--n-train`` training images and reports the test
PSNR (original area), the Fréchet scattering distance (FSD) to ``--n-test`` test
images of their reconstructions and of ``--n-samples`` images decoded from white
noise, the sample score of those images (convex shapes for polygons, confidently
classified for the others; see :mod:`wavephase.experiments.generation_scores`),
and the fit time. Prints a Markdown table.

    OMP_NUM_THREADS=1 python benchmarks/bench_generation.py [--dataset fashion-mnist] [--n-train 5000]
        [--epochs 12] [--configs l2:128 bce:128 l2:64 bce:64 bce:32]
"""

from __future__ import annotations

import argparse

import torch

from wavephase.experiments.generation import DATASETS, load_generation_images
from wavephase.experiments.generation_scores import fit_sample_scorer
from wavephase.metrics.generation import frechet_distance, psnr
from wavephase.models import GenerativeScattering


def main() -> None:
    """Fit every configuration and print the results table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--configs", nargs="+", default=["l2:128", "bce:128", "l2:64", "bce:64", "bce:32"],
                        help="LOSS:BATCH_SIZE pairs")
    args = parser.parse_args()
    train, test, pad = load_generation_images(args.dataset, args.n_train, args.n_test)
    crop = (..., slice(pad, train.shape[-2] - pad), slice(pad, train.shape[-1] - pad))
    score, _ = fit_sample_scorer(args.dataset, train, test, pad)
    J = 4 if train.shape[-1] >= 64 else 3
    print(f"{args.dataset}: {len(train)} training images, {args.epochs} epochs; sample score of real test images "
          f"{score(test)['score']:.3f}")
    print("| loss | batch | PSNR test | FSD reconstructions | FSD samples | sample score | fit time |")
    print("|---|---|---|---|---|---|---|")
    for config in args.configs:
        loss, batch = config.split(":")
        model = GenerativeScattering(J=J, epochs=args.epochs, batch_size=int(batch), loss=loss, progress=False)
        model.fit(train)
        with torch.no_grad():
            rec = model.reconstruct(test)
            codes = model.encode(test)
            fsd_rec = frechet_distance(model.encode(rec), codes)
            samples = model.sample(args.n_samples, random_state=1)
            fsd_samples = frechet_distance(model.encode(samples), codes)
        value = float(psnr(rec[crop], test[crop]).mean())
        print(f"| {loss} | {batch} | {value:.2f} dB | {fsd_rec:.1f} | {fsd_samples:.1f} | {score(samples)['score']:.3f} "
              f"| {model.train_seconds_:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
