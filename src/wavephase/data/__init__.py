"""wavephase.data."""

from wavephase.data.fashion_mnist import load_fashion_mnist
from wavephase.data.mnist import load_mnist
from wavephase.data.molecules import Molecules
from wavephase.data.polygons import make_polygons
from wavephase.data.qm9 import load_qm9
from wavephase.data.safe_pickle import UnsafePickleError, safe_loads

__all__ = ["load_fashion_mnist", "load_mnist", "safe_loads", "UnsafePickleError", "make_polygons", "load_qm9", "Molecules"]
