"""wavephase.sparse."""

from wavephase.sparse.ista import fista, ista, ista_step, lipschitz_constant, sparse_coding_report
from wavephase.sparse.istc import ISTC, homotopy_lambdas

__all__ = ["ISTC", "fista", "homotopy_lambdas", "ista", "ista_step", "lipschitz_constant", "sparse_coding_report"]
