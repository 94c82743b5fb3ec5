"""Every tuning constant of the 2D scattering cascade, with the benchmark case that sets it (private).

The cases are those of ``benchmarks/bench_scattering2d.py``: (a) J=2, L=8, 256
images of 28 x 28; (b) J=3, L=8, 64 images of 32 x 32; (c) J=4, L=8, 8 images of
256 x 256. None of these constants changes a coefficient, only how fast and in
how much memory they are computed.
"""

from __future__ import annotations

MiB = 2**20

# Largest padded side for which backend="auto" picks the matrix-product DFTs: their
# cost grows as n^3 against n^2 log n, and they break even with FFTs near 64-80.
# Cases (a) and (b) (padded 36 and 48) run faster with matrices, case (c) (264) with FFTs.
MATMUL_MAX_SIZE = 64

# Default bound on the largest intermediate of a chunk of images: it bounds the peak
# memory of large images (case (c): 8 images of 256 x 256 then run in chunks of 3)
# without slowing small ones.
DEFAULT_CHUNK_BYTES = 16 * MiB

# Chunk size of the matrix-product backend in the caller's thread: intermediates that
# stay in cache. bench_scattering2d.py case (a) at one thread.
MATMUL_CHUNK_BYTES = 4 * MiB

# Chunk size of the one-thread workers that scatter parts of a batch side by side
# (each part is one chunk, the workers take them in turn), with and without autograd:
# bench_scattering2d.py case (a) at two threads. Forward, chunks of 21 to 64 images
# ran at the same rate; 32 (eight parts for two workers) leave room to balance a busy
# machine. Forward+backward, 43-image chunks ran faster in one thread alone (200 against
# 230 ms per 256 images) but 10-13 % slower than 32-image ones with both workers
# (five alternating rounds each, after/before ratios 0.87x against 1.03-1.06x).
WORKER_CHUNK_BYTES = 5 * MiB + MiB // 2
WORKER_GRAD_CHUNK_BYTES = WORKER_CHUNK_BYTES

# Smallest part worth a worker: case (b) (64 images of 32 x 32) gains from two parts;
# 32 images of 28 x 28 in two parts of 16 ran forward+backward slower than in torch's
# threads, 64 in two parts of 32 faster (case (a)'s images).
WORKER_MIN_PART_BYTES = 4 * MiB

# Widest slice of the wide operand in the matrix-product backend's row transforms
# (small (2m x 2m) matrices times (2m, maps) ones): case (a)'s order-2 inverse,
# (36 x 36) @ (36 x 73728) for 64 images, ran in 4.5 ms as one GEMM and in 3.8 ms
# as eight of 9216 columns (one thread).
GEMM_SLICE_COLUMNS = 9216

# Fewest maps (columns) for which the adjoint of the Fourier product runs as one
# batched GEMM of (blocks x L) @ (L x maps) per frequency; below, as a product and a
# sum over L. Case (a)'s order 1 (32 maps per chunk): 0.75 ms as GEMMs, 0.18 ms as
# a product and a sum; its order 2 (256 maps): 0.30 ms against 1.7 ms.
ADJOINT_GEMM_MIN_COLUMNS = 64
