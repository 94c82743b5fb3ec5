"""CPU cores shared by jobs that run side by side in the threads of one process.

torch's thread count is a setting of each thread (OpenMP's), so jobs running in
a thread pool can each use a part of the cores. :class:`CoreShare` hands each
unfinished job an equal part, and a job that ends gives its cores to those
still running: a long simulation that shared the cores with shorter ones runs
its last stretch on all of them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wavephase.validation import check_positive_int

__all__ = ["CoreShare", "usable_cores"]


def usable_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask where the OS has one).

    Returns
    -------
    int
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class CoreShare:
    """``cores`` shared equally by ``jobs`` jobs, each of which ends by calling :meth:`job`'s exit.

    Parameters
    ----------
    cores : int
        Cores to share (e.g. :func:`usable_cores`).
    jobs : int
        Number of jobs that will share them, queued or running.

    Examples
    --------
    >>> share = CoreShare(cores=2, jobs=3)
    >>> share.threads()  # three unfinished jobs: one thread each
    1
    >>> with share.job():
    ...     pass  # a job ends
    >>> with share.job():
    ...     pass
    >>> share.threads()  # the last job may use both cores
    2
    """

    def __init__(self, cores: int, jobs: int) -> None:
        self.cores = check_positive_int(cores, "cores")
        self._unfinished = check_positive_int(jobs, "jobs")
        self._lock = threading.Lock()

    def threads(self) -> int:
        """Threads each unfinished job may use now: ``cores // unfinished jobs``, at least 1."""
        return max(1, self.cores // max(1, self._unfinished))

    @contextmanager
    def job(self) -> Iterator[Callable[[], int]]:
        """Run one job: yields :meth:`threads` for it to poll; its exit (even by an exception) ends the job."""
        try:
            yield self.threads
        finally:
            with self._lock:
                self._unfinished -= 1
