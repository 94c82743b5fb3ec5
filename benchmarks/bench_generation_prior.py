"""Why decoded white noise leaves the data: the whitening dimension and the model of the codes.

For each whitening dimension of ``--dims``, fits a :class:`wavephase.models.GenerativeScattering`
on the first ``--n-train`` training images and measures, on held-out data:

- reconstruction: PSNR of training and test images, and the Fréchet scattering distance (FSD)
  of the test reconstructions (what the decoder can do at best from true codes);
- the codes: their excess kurtosis (0 for a Gaussian), and the mean log-density of the test
  codes under each model of the codes (nats per image);
- samples of each model of the codes (white noise, white noise scaled down by 0.7 and 0.85,
  Gaussian mixtures): FSD to the test images and sample score
  (:mod:`wavephase.experiments.generation_scores`).

Every FSD is measured in one embedding (256 whitened components fitted on the training
images), whatever the model's dimension, so the rows compare. Prints a Markdown table.

    OMP_NUM_THREADS=1 python benchmarks/bench_generation_prior.py [--dataset mnist] [--n-train 5000]
        [--epochs 8] [--dims 64 256] [--mixtures diag:50 full:10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wavephase.experiments.generation import DATASETS, load_generation_images
from wavephase.experiments.generation_scores import fit_sample_scorer
from wavephase.metrics.generation import frechet_distance, psnr
from wavephase.models.code_prior import code_log_likelihood, fit_code_mixture, sample_code_mixture
from wavephase.models.generative import GenerativeScattering
from wavephase.models.whitening import WhitenedScattering


def main() -> None:
    """Fit one model per whitening dimension, sample each model of the codes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--mixtures", nargs="+", default=["diag:50", "full:10"], help="COVARIANCE:COMPONENTS pairs")
    args = parser.parse_args()
    train, test, pad = load_generation_images(args.dataset, args.n_train, args.n_test)
    J = 4 if train.shape[-1] >= 64 else 3
    crop = (slice(None), slice(pad, train.shape[-2] - pad), slice(pad, train.shape[-1] - pad))
    reference = WhitenedScattering(J, tuple(train.shape[1:]), 8, 256)
    reference.fit_features(reference.features(train), random_state=0)
    with torch.no_grad():
        reference_test = reference(test)

    def fsd(images: torch.Tensor) -> float:
        with torch.no_grad():
            return frechet_distance(reference(images), reference_test)

    score, info = fit_sample_scorer(args.dataset, train, test, pad)
    print(f"{args.dataset}, {len(train)} training images, {args.epochs} epochs. Real training images: FSD "
          f"{fsd(train[-args.n_samples:]):.1f}, sample score {score(train[-args.n_samples:])['score']:.3f}; "
          f"real test images: score {score(test)['score']:.3f} {info}")
    print("| dims | PSNR train / test | FSD reconstructions | code excess kurtosis (median) | model of the codes "
          "| held-out log-density | FSD samples | sample score | class entropy (bits) | fit time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dims in args.dims:
        model = GenerativeScattering(J=J, n_components=dims, epochs=args.epochs, progress=False).fit(train)
        with torch.no_grad():
            codes = torch.cat([model.encode(train[i : i + 1000]) for i in range(0, len(train), 1000)])
            test_codes = model.encode(test)
        rec_train, rec_test = model.reconstruct(train[: args.n_test]), model.reconstruct(test)
        kurtosis = float(np.median(((codes**4).mean(0) - 3).numpy()))
        head = (f"| {dims} | {psnr(rec_train[crop], train[: args.n_test][crop]).mean():.2f} / "
                f"{psnr(rec_test[crop], test[crop]).mean():.2f} dB | {fsd(rec_test):.1f} | {kurtosis:.2f} ")
        gen = torch.Generator().manual_seed(1)
        noise = torch.randn(args.n_samples, dims, generator=gen)
        priors: list[tuple[str, torch.Tensor, float, float]] = [
            (f"N(0, {t}² I)" if t != 1 else "N(0, I)", t * noise, code_log_likelihood(None, test_codes / t)
             - dims * float(np.log(t)), 0.0) for t in (1.0, 0.85, 0.7)]
        for spec in args.mixtures:
            covariance, k = spec.split(":")
            t0 = time.perf_counter()
            mixture = fit_code_mixture(codes, int(k), covariance=covariance)
            seconds = time.perf_counter() - t0
            draws = sample_code_mixture(mixture, args.n_samples, torch.Generator().manual_seed(1))
            priors.append((f"mixture, {k} {covariance}", draws, code_log_likelihood(mixture, test_codes), seconds))
        for name, z, loglik, seconds in priors:
            with torch.no_grad():
                images = model.decode(z)
            s = score(images)
            entropy = s.get("class_entropy_bits", float("nan"))
            print(f"{head}| {name} | {loglik:.1f} | {fsd(images):.1f} | {s['score']:.3f} | {entropy:.2f} "
                  f"| {model.train_seconds_:.0f} + {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
