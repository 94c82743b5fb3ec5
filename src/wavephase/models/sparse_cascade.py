"""The sparse scattering cascade: log-scattering -> 1x1 projection -> ISTC sparse code -> linear classifier.

:class:`SparseScatteringNet` is the network; :func:`train_cascade` trains one
with Adam, saving a checkpoint every epoch, and resumes bit-identically.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from wavephase.runs import Checkpoint
from wavephase.sparse.istc import ISTC

__all__ = ["ByteDropout", "SparseScatteringNet", "train_cascade"]


class ByteDropout(nn.Module):
    """Dropout whose keep/drop draws are random bytes, 3x faster than ``nn.Dropout`` on CPU.

    ``torch.bernoulli_`` draws one double per element, which made dropout a tenth of
    a training step of the sparse cascade; one random byte per element suffices.
    The drop probability is rounded to a multiple of 1/256 (0.3 -> 77/256).
    The draws come from torch's global generator (seed it with ``torch.manual_seed``).

    Parameters
    ----------
    p : float
        Drop probability, in [0, 1).

    Shapes
    ------
    x: (...) -> (...); the identity in eval mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p}.")
        self.cut = round(p * 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Randomly zeroed and rescaled ``x`` in training mode, ``x`` itself in eval mode.

        Shapes
        ------
        x: (...) -> (...), same dtype and device
        """
        if not self.training or self.cut == 0:
            return x
        n = x.numel()
        # int32 over its full range has 32 uniform bits, i.e. four uniform bytes.
        words = torch.randint(-(2**31), 2**31, ((n + 3) // 4,), dtype=torch.int32, device=x.device)
        keep = words.view(torch.uint8)[:n].view(x.shape) >= self.cut
        return (x * keep).mul_(256 / (256 - self.cut))

    def extra_repr(self) -> str:
        return f"p={self.cut / 256}"


class SparseScatteringNet(nn.Module):
    """Log-scattering -> BN -> 1x1 projection + BN -> ISTC sparse code -> BN -> dropout -> linear.

    The hyper-parameters have no defaults here: those of
    :class:`~wavephase.models.sparse_classifier.SparseScatteringClassifier` are the ones.

    Parameters
    ----------
    in_channels : int
        Scattering channels C.
    spatial : tuple of int
        Spatial size (h, w) of the scattering maps.
    n_classes : int
        Output classes.
    n_proj : int
        Projection channels P.
    n_atoms : int
        Dictionary atoms K.
    n_steps : int
        Unrolled ISTC steps.
    lam : float
        Initial λ*.
    dropout : float
        Dropout before the classifier.
    log_eps : float
        Offset of the log applied to scattering coefficients.

    Shapes
    ------
    s: (B, C, h, w) scattering -> (B, n_classes) logits
    """

    def __init__(self, in_channels: int, spatial: tuple[int, int], n_classes: int, *, n_proj: int, n_atoms: int,
                 n_steps: int, lam: float, dropout: float, log_eps: float) -> None:
        super().__init__()
        self.log_eps = log_eps
        self.input_norm = nn.BatchNorm2d(in_channels)
        self.proj = nn.Conv2d(in_channels, n_proj, 1, bias=False)
        self.proj_norm = nn.BatchNorm2d(n_proj)
        self.istc = ISTC(n_proj, n_atoms, n_steps, lam)
        # Normalises each atom over batch and positions like a BatchNorm2d, but on the
        # codes' (B·h·w, K) layout, where its backward is 10x faster than on a permuted view.
        self.code_norm = nn.BatchNorm1d(n_atoms)
        self.dropout = ByteDropout(dropout)
        self.head = nn.Linear(n_atoms * spatial[0] * spatial[1], n_classes)

    def code(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected features and their sparse codes.

        Parameters
        ----------
        s : torch.Tensor
            Scattering coefficients.

        Returns
        -------
        x, z : torch.Tensor
            Projections and their non-negative codes.

        Shapes
        ------
        s: (B, C, h, w) -> x: (B, h, w, P), z: (B, h, w, K)
        """
        x = self.proj_norm(self.proj(self.input_norm(torch.log(s.clamp_min(0) + self.log_eps))))
        x = x.permute(0, 2, 3, 1)
        return x, self.istc(x)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Class logits of scattering coefficients ``s``.

        Shapes
        ------
        s: (B, C, h, w) -> (B, n_classes)
        """
        _, z = self.code(s)
        z = self.code_norm(z.reshape(-1, z.shape[-1])).reshape(z.shape)
        return self.head(self.dropout(z.permute(0, 3, 1, 2).flatten(1)))


def train_cascade(
    feats: torch.Tensor,
    targets: torch.Tensor,
    n_classes: int,
    *,
    architecture: dict[str, Any],
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    label_smoothing: float,
    random_state: int,
    checkpoint: Checkpoint,
    device: torch.device,
    progress: bool = False,
    position: int = 0,
    name: str = "",
) -> tuple[SparseScatteringNet, list[dict[str, float]]]:
    """Train one :class:`SparseScatteringNet`, resuming from and saving to ``checkpoint`` every epoch.

    Every random draw (initialisation, then per epoch the data order, the
    version of each sample and the dropout masks) derives from
    ``random_state`` and the epoch, so a run resumed from its checkpoint ends
    with the same model as one never interrupted; a finished checkpoint is
    loaded without training. The caller's global torch RNG is left untouched.

    Parameters
    ----------
    feats : torch.Tensor
        Training features, V versions of each sample (host memory; mini-batches
        travel to ``device``).
    targets : torch.Tensor
        Class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    architecture : dict
        ``n_proj``, ``n_atoms``, ``n_steps``, ``lam``, ``dropout``, ``log_eps`` of the network.
    epochs, batch_size : int
        Training length and mini-batch size.
    lr, weight_decay : float
        Adam's peak learning rate (one-cycle schedule) and weight decay.
    label_smoothing : float
        Label smoothing of the cross-entropy.
    random_state : int
        Seed.
    checkpoint : Checkpoint
        Where the state is saved each epoch (a disabled one, path None, saves nothing).
    device : torch.device
        Where the network trains.
    progress : bool
        Progress bars.
    position, name : int, str
        Row and label of the progress bar (ensemble members train side by side).

    Returns
    -------
    net : SparseScatteringNet
        The trained network, in eval mode.
    history : list of dict
        Per epoch: ``epoch``, ``loss``, ``train_accuracy``.

    Shapes
    ------
    feats: (V, n, C, h, w), targets: (n,)
    """
    n_versions, n = feats.shape[:2]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)  # also seeds the CUDA generators
        net = SparseScatteringNet(feats.shape[2], tuple(feats.shape[3:]), n_classes, **architecture).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=epochs * math.ceil(n / batch_size), pct_start=0.15
        )
        start_epoch, history = 0, []
        state = checkpoint.load()
        if state is not None:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, history = int(state["epoch"]), list(state["history"])
        for epoch in range(start_epoch, epochs):
            net.train()
            # Seeding per epoch makes the data order and dropout masks a function
            # of (seed, epoch) only, so a resumed run replays them exactly.
            torch.manual_seed(random_state * 1_000_003 + epoch + 1)  # also seeds the CUDA generators
            order = torch.randperm(n)
            # One version (original or augmented copy) per sample and epoch.
            version = torch.randint(n_versions, (n,)) if n_versions > 1 else torch.zeros(n, dtype=torch.long)
            # Sums stay on the device: reading them every step would stall a GPU.
            total, correct, loss_sum = 0, torch.zeros((), dtype=torch.long, device=device), \
                torch.zeros((), dtype=torch.float64, device=device)
            bar = tqdm(range(0, n, batch_size), desc=f"epoch {epoch + 1}/{epochs}{name}", disable=not progress,
                       leave=False, position=position)
            for start in bar:
                idx = order[start : start + batch_size]
                if len(idx) < 2:  # batch norm needs two samples
                    scheduler.step()
                    continue
                batch = feats[version[idx], idx].to(device, non_blocking=True)
                labels = targets[idx].to(device, non_blocking=True)
                logits = net(batch)
                loss = nn.functional.cross_entropy(logits, labels, label_smoothing=label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach().double() * len(idx)
                correct += (logits.argmax(1) == labels).sum()
                total += len(idx)
            history.append({"epoch": epoch + 1, "loss": float(loss_sum) / max(total, 1),
                            "train_accuracy": int(correct) / max(total, 1)})
            checkpoint.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history})
    return net.eval(), history
