"""Testbed: transductive node classification on a Planetoid graph (Cora, CiteSeer), full batch, with
the two stopping rules of the papers that set the benchmark's protocol.

* :func:`train_patience`: GAT's rule (Veličković et al. 2018, Section 3.3, and their released code):
  patience on validation loss *and* accuracy (the counter resets when either improves; training
  stops when neither has for ``patience`` epochs); the model kept is the last one whose validation
  accuracy and loss were both at least as good as every earlier epoch's, and it is the one tested.
* :func:`train_window`: Kipf & Welling's rule (2017, Section 5.2, their ``train.py``): stop when the
  validation loss (cross-entropy plus the L2 term ``wd/2 ||W||^2`` of the decayed parameters, as
  their ``model.loss``) exceeds the mean of the previous ``window`` epochs'; the last model is tested.

Both train on the public split's training nodes with Adam and full-batch cross-entropy, evaluate
the validation nodes after every step, and return the test accuracy (in %) with the curves. The
caller builds the model (its initialisation draws from the global RNG, so the caller's seeding
decides it) and gives every hyperparameter through a small config.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core import track
from aicanon.datasets.planetoid import Planetoid
from aicanon.graphs.inputs import SparseFeatures

__all__ = ["NodeInputs", "PatienceStopping", "WindowStopping", "node_inputs", "train_patience", "train_window"]


@dataclass
class NodeInputs:
    """A graph's tensors on one device: features, edges (empty for the graph-free ablation), labels, masks."""

    x: Tensor | SparseFeatures
    edge_index: Tensor
    y: Tensor
    train: Tensor
    val: Tensor
    test: Tensor


def node_inputs(
    data: Planetoid, device: torch.device, *, use_graph: bool = True, sparse_features: bool = True
) -> NodeInputs:
    """``data`` on ``device``. ``use_graph=False`` drops every edge (the layers' self loops remain),
    which turns a GNN into an MLP of the same shape; ``sparse_features`` feeds the bag-of-words as
    :class:`SparseFeatures` (about 1 % nonzero; same model and dropout distribution, faster on CPU)."""
    x = SparseFeatures(data.x).to(device) if sparse_features else data.x.to(device)
    edge_index = (
        data.edge_index.to(device) if use_graph else torch.empty(2, 0, dtype=torch.long, device=device)
    )
    train, val, test = (m.to(device) for m in (data.train_mask, data.val_mask, data.test_mask))
    return NodeInputs(x, edge_index, data.y.to(device), train, val, test)


@dataclass
class PatienceStopping:
    """GAT's training (defaults: Section 3.3 for Cora and CiteSeer)."""

    learning_rate: float = 0.005
    """Adam learning rate."""
    weight_decay: float = 5e-4
    """L2 penalty on every parameter, as Adam's coupled weight decay."""
    patience: int = 100
    """Epochs without improvement of validation loss or accuracy before stopping."""
    max_epochs: int = 100_000
    """Upper bound on epochs (the paper's code: 100000; early stopping ends runs far sooner)."""


@dataclass
class WindowStopping:
    """Kipf & Welling's training (defaults: their Section 5.2)."""

    learning_rate: float = 0.01
    """Adam learning rate."""
    weight_decay: float = 5e-4
    """L2 penalty on the decayed parameters only (their code: the first layer's weights)."""
    epochs: int = 200
    """Maximum training epochs (0 evaluates the untrained model)."""
    window: int = 10
    """Stop when the validation loss exceeds the mean of this many previous epochs'."""


def _accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    return float((logits[mask].argmax(1) == y[mask]).float().mean())


def train_patience(model: nn.Module, inputs: NodeInputs, cfg: PatienceStopping, label: str = "model") -> dict:
    """Train ``model`` with GAT's stopping rule (module docstring); the kept model is loaded back.

    Returns ``test_accuracy`` (%), ``best_epoch`` (the kept model's), ``epochs`` (trained) and
    ``curves`` (``train_loss``, ``val_loss``, ``val_accuracy`` per epoch).
    """
    x, edge_index, y = inputs.x, inputs.edge_index, inputs.y
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def evaluate() -> tuple[Tensor, float, float]:
        model.eval()
        with torch.no_grad():
            logits = model(x, edge_index)
        return logits, float(F.cross_entropy(logits[inputs.val], y[inputs.val])), _accuracy(logits, y, inputs.val)

    best_accuracy, best_loss, waited = 0.0, math.inf, 0
    best_state, best_epoch = copy.deepcopy(model.state_dict()), 0
    curves: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    epoch = 0
    for epoch in track(range(1, cfg.max_epochs + 1), label, total=cfg.max_epochs):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, edge_index)[inputs.train], y[inputs.train])
        loss.backward()
        optimizer.step()
        _, val_loss, val_accuracy = evaluate()
        curves["train_loss"].append(loss.item())
        curves["val_loss"].append(val_loss)
        curves["val_accuracy"].append(val_accuracy)
        # The paper's code: keep the model when it is best on both, reset patience when best on either.
        if val_accuracy >= best_accuracy or val_loss <= best_loss:
            if val_accuracy >= best_accuracy and val_loss <= best_loss:
                best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
            best_accuracy, best_loss = max(val_accuracy, best_accuracy), min(val_loss, best_loss)
            waited = 0
        else:
            waited += 1
            if waited == cfg.patience:
                break
    model.load_state_dict(best_state)
    logits, _, _ = evaluate()
    return {
        "test_accuracy": 100.0 * _accuracy(logits, y, inputs.test),
        "best_epoch": best_epoch,
        "epochs": epoch,
        "curves": curves,
    }


def train_window(
    model: nn.Module,
    inputs: NodeInputs,
    cfg: WindowStopping,
    decayed: Iterable[nn.Parameter],
    label: str = "model",
) -> dict:
    """Train ``model`` with Kipf & Welling's stopping rule (module docstring); ``decayed`` are the
    parameters the L2 penalty applies to (their code: the first layer's). The last model is tested.

    Returns ``test_accuracy`` (%), ``epochs`` (trained) and ``val_accuracy`` (per epoch).
    """
    x, edge_index, y = inputs.x, inputs.edge_index, inputs.y
    decayed = list(decayed)
    decayed_ids = {id(p) for p in decayed}
    rest = [p for p in model.parameters() if id(p) not in decayed_ids]
    optimizer = torch.optim.Adam(
        [{"params": decayed, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    val_losses: list[float] = []
    val_accuracies: list[float] = []
    epoch = 0
    for epoch in track(range(1, cfg.epochs + 1), label, total=cfg.epochs):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, edge_index)[inputs.train], y[inputs.train]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x, edge_index)
        # Kipf & Welling's code stops on model.loss: the cross-entropy plus the L2 term (wd/2 ||W||^2).
        penalty = 0.5 * cfg.weight_decay * sum(float(p.detach().square().sum()) for p in decayed)
        val_losses.append(float(F.cross_entropy(logits[inputs.val], y[inputs.val])) + penalty)
        val_accuracies.append(_accuracy(logits, y, inputs.val))
        if epoch > cfg.window and val_losses[-1] > np.mean(val_losses[-(cfg.window + 1) : -1]):
            break
    model.eval()
    with torch.no_grad():
        logits = model(x, edge_index)
    return {
        "test_accuracy": 100.0 * _accuracy(logits, y, inputs.test),
        "epochs": epoch,
        "val_accuracy": val_accuracies,
    }
