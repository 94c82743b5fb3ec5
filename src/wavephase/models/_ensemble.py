"""Ensembles of sparse cascades: which view a member fits, and members trained side by side in forked processes."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import TypeVar

import torch

__all__ = ["fit_in_processes", "member_view"]

T = TypeVar("T")


def member_view(views: Sequence[T], member: int) -> T:
    """What member ``member`` of an ensemble fits: view ``member mod len(views)``.

    Parameters
    ----------
    views : sequence
        One item (features, a canvas) per view.
    member : int
        Member index.

    Returns
    -------
    object
        The member's item.
    """
    return views[member % len(views)]


def _run_member(fit_member: Callable[[int], object], member: int, parent: int) -> None:
    # Runs in a forked child: one thread, since the members share the cores, and
    # death with the parent (Linux prctl PR_SET_PDEATHSIG), so that a killed run
    # leaves no orphan writing the checkpoints that its restart resumes.
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)
    torch.set_num_threads(1)
    fit_member(member)


def fit_in_processes(fit_member: Callable[[int], object], n_members: int, n_jobs: int) -> None:
    """Call ``fit_member(m)`` for every member, at most ``n_jobs`` at once, each in a forked process.

    The children inherit the parent's memory (the features, copy-on-write) and
    hand their result back through their checkpoint file; each uses one thread.
    When a member fails, the others are stopped: their checkpoints let a rerun
    resume them.

    Parameters
    ----------
    fit_member : callable
        Trains member ``m`` and saves it; run in the child process (Linux ``fork``).
    n_members : int
        Number of members.
    n_jobs : int
        Most members trained at once.

    Raises
    ------
    RuntimeError
        If a member's process failed (its traceback is printed by the child).
    """
    ctx = multiprocessing.get_context("fork")
    pending, running, failed = list(range(n_members)), {}, []
    try:
        while pending or running:
            while pending and len(running) < n_jobs:
                m = pending.pop(0)
                running[m] = ctx.Process(target=_run_member, args=(fit_member, m, os.getpid()), daemon=True)
                running[m].start()
            wait([p.sentinel for p in running.values()])
            for m, proc in list(running.items()):
                if proc.exitcode is not None:
                    del running[m]
                    if proc.exitcode != 0:
                        failed.append(f"member {m} (exit code {proc.exitcode})")
            if failed:
                break
    finally:
        for proc in running.values():
            proc.kill()
            proc.join()
    if failed:
        raise RuntimeError(f"training of ensemble {', '.join(failed)} failed (see its error above); "
                           f"run fit again to resume from the checkpoints.")
