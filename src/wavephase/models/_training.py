"""The training loop shared by the generative decoder and the VAE baseline: epochs, resumable."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from wavephase.runs import Checkpoint

__all__ = ["train_epochs"]


def train_epochs(
    module: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    checkpoint: Checkpoint,
    state: dict[str, Any],
    t_start: float,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    progress: bool = False,
    desc: str = "training",
) -> tuple[list[float], float]:
    """Train ``module`` on shuffled mini-batches, checkpointing after every epoch.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network; left in eval mode.
    batch_loss : callable
        ``batch_loss(idx)``: the mean loss of the samples ``idx`` (a tensor of
        indices on the module's device).
    n : int
        Number of training samples.
    epochs : int
        Epochs to reach (those already in ``state`` are not run again).
    batch_size : int
        Samples per mini-batch; a last batch of one is skipped, since batch-norm needs two.
    optimizer, generator, scheduler :
        The optimizer, the CPU generator of the batch order (and of any noise
        ``batch_loss`` draws from it), and an optional learning-rate schedule
        stepped once per epoch.
    checkpoint : wavephase.runs.Checkpoint
        Where the state is saved after every epoch.
    state : dict
        The state to resume from: ``epoch``, ``history`` and ``seconds``, and, once
        an epoch has run, ``model``, ``optimizer``, ``scheduler`` and ``generator``.
        Its other entries are saved along unchanged.
    t_start : float
        ``time.perf_counter()`` when this run started.
    progress : bool
        Show a progress bar.
    desc : str
        Its label.

    Returns
    -------
    history : list of float
        Mean training loss per epoch, resumed epochs included.
    seconds : float
        Training time, summed over resumed runs.
    """
    start_epoch, history, elapsed = int(state["epoch"]), list(state["history"]), float(state["seconds"])
    if start_epoch > 0:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
    device = next(module.parameters()).device
    module.train()
    for epoch in tqdm(range(start_epoch, epochs), desc=desc, disable=not progress, initial=start_epoch, total=epochs,
                      leave=False):
        perm = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for i in range(0, n - 1, batch_size):
            idx = perm[i : i + batch_size]
            loss = batch_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        if scheduler is not None:
            scheduler.step()
        history.append(total / n)
        checkpoint.save({**state, "epoch": epoch + 1, "history": history, "model": module.state_dict(),
                         "optimizer": optimizer.state_dict(),
                         "scheduler": None if scheduler is None else scheduler.state_dict(),
                         "generator": generator.get_state(), "seconds": elapsed + time.perf_counter() - t_start})
    module.eval()
    return history, elapsed + time.perf_counter() - t_start
