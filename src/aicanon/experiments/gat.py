"""GAT on Cora and CiteSeer, transductive (Veličković et al., ICLR 2018, Section 3.3, Table 2).

The paper's protocol, per dataset and seed:

1. Load the Planetoid graph with the standard public split (20 labelled nodes per class for training,
   500 for validation, 1000 for testing) and row-normalise the bag-of-words features.
2. Train the two-layer GAT (8 heads x 8 features, ELU, one averaged output head) with Adam
   (lr 0.005, L2 5e-4 on every parameter), dropout 0.6 on both layers' inputs and on the attention
   coefficients, full-batch cross-entropy on the training nodes.
3. Early stopping as the paper's code does: patience 100 epochs on validation loss *and* accuracy
   (the counter resets when either improves; stop when neither has for 100 epochs); the model kept
   is the last one whose validation accuracy and loss were both at least as good as every earlier
   epoch's; the test accuracy is measured with that model.

Table 2 reports GAT at 83.0 +- 0.7 % (Cora) and 72.5 +- 0.7 % (CiteSeer) over 100 runs, against an
MLP at 55.1 % and 46.5 %. Our graph-free ablation is the same network with every edge removed
(only self loops remain, so every attention coefficient is 1 and each layer is ``W h + b``): an MLP
of the same width, dropout and training, which shows what the graph contributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.datasets.planetoid import Planetoid, load_planetoid
from aicanon.graphs.gat import GAT
from aicanon.testbeds.planetoid import PatienceStopping, node_inputs, train_patience


@dataclass
class Config(ExperimentConfig):
    datasets: tuple[str, ...] = ("cora", "citeseer")
    """Planetoid graphs to train on (Table 2's transductive tasks; PubMed's files are not staged)."""
    use_graph: bool = True
    """False drops every edge (self loops only): the graph-free ablation, an MLP of the same shape."""
    mlp_baseline: bool = True
    """Also train the graph-free network on the first dataset, reported as ``<name>_mlp_test_accuracy``."""
    hidden_features: int = 8
    """Features per head in the hidden layer (F' = 8, Section 3.3)."""
    heads: int = 8
    """Attention heads in the hidden layer (K = 8)."""
    output_heads: int = 1
    """Heads of the output layer, averaged (1 for Cora/CiteSeer; the paper used 8 for PubMed)."""
    dropout: float = 0.6
    """Dropout on both layers' inputs and on the attention coefficients (p = 0.6)."""
    learning_rate: float = 0.005
    """Adam learning rate (0.005 for Cora and CiteSeer)."""
    weight_decay: float = 5e-4
    """L2 penalty on all parameters (lambda = 0.0005), applied as Adam's coupled weight decay."""
    patience: int = 100
    """Early stopping patience in epochs, on validation loss and accuracy."""
    max_epochs: int = 100_000
    """Upper bound on epochs (the paper's code uses 100000; early stopping ends runs far sooner)."""
    sparse_features: bool = True
    """Feed the bag-of-words features as SparseFeatures (about 1% nonzero): same model and dropout
    distribution, several times faster on CPU."""

    @classmethod
    def quick(cls) -> Config:
        # Cora only, 3 seeds, at the paper's settings: one run stops after a few hundred epochs.
        # The graph-free baseline is left to the full run (it would add half again to the minute);
        # tests/experiments/test_gat.py trains it at quick scale to show it fails the Cora claim.
        return cls(scale="quick", seeds=3, datasets=("cora",), max_epochs=1000, mlp_baseline=False)

    @classmethod
    def full(cls) -> Config:
        # Table 2: mean over 100 runs on each dataset.
        return cls(scale="full", seeds=100, datasets=("cora", "citeseer"))


# Thresholds, set from our runs (CPU, this code; the numbers are in RESULTS.md): the quick Cora
# threshold, 81.5, sits below our 3-seed means by more than their seed noise, while the graph-free
# twin fails it by far. Full: Cora 82.0 (the paper's 83.0 less 1.4 of its run sd). CiteSeer: our
# single seeds landed about a point under the paper's 72.5 (PyG's example lands in the same place);
# 71.0 is what we can honestly promise until a 100-seed run says more.
CLAIMS = [
    Claim(
        metric="cora_test_accuracy",
        description="GAT test accuracy on Cora (public split, 1000 test nodes)",
        paper=83.0,
        source="Table 2 (83.0 +- 0.7 %, 100 runs)",
        quick=81.5,
        full=82.0,
        unit="%",
    ),
    Claim(
        metric="citeseer_test_accuracy",
        description="GAT test accuracy on CiteSeer (public split, 1000 test nodes)",
        paper=72.5,
        source="Table 2 (72.5 +- 0.7 %, 100 runs)",
        quick=None,
        full=71.0,
        unit="%",
    ),
    Claim(
        metric="cora_mlp_test_accuracy",
        description="the same network without the graph (self loops only): an MLP",
        paper=55.1,
        source="Table 2, MLP row (a 2-layer MLP, from Kipf & Welling)",
        quick=None,
        full=None,
        unit="%",
    ),
]


def train_gat(data: Planetoid, cfg: Config, device: torch.device, use_graph: bool, label: str) -> dict:
    """Build the two-layer GAT of Section 3.3 and train it with the paper's early stopping
    (:func:`aicanon.testbeds.planetoid.train_patience`); add the first layer's attention."""
    inputs = node_inputs(data, device, use_graph=use_graph, sparse_features=cfg.sparse_features)
    model = GAT(
        data.num_features,
        data.num_classes,
        hidden_features=cfg.hidden_features,
        heads=cfg.heads,
        output_heads=cfg.output_heads,
        dropout=cfg.dropout,
    ).to(device)
    stopping = PatienceStopping(
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        patience=cfg.patience,
        max_epochs=cfg.max_epochs,
    )
    outcome = train_patience(model, inputs, stopping, label)
    outcome["attention"] = None
    if use_graph:
        model.eval()
        with torch.no_grad():
            _, (edges, alpha) = model.layers[0](inputs.x, inputs.edge_index, return_attention=True)
        outcome["attention"] = (edges.cpu(), alpha.cpu())
    outcome["num_nodes"] = data.num_nodes
    return outcome


def _curve_figure(runs: dict[str, dict]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    for name, run in runs.items():
        epochs = np.arange(1, len(run["curves"]["val_loss"]) + 1)
        loss_axis.plot(epochs, run["curves"]["val_loss"], label=f"{name} validation")
        loss_axis.plot(epochs, run["curves"]["train_loss"], alpha=0.4, label=f"{name} training")
        accuracy_axis.plot(epochs, 100 * np.array(run["curves"]["val_accuracy"]), label=name)
        accuracy_axis.axvline(run["best_epoch"], linestyle=":", color="grey")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.set(
        xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy (dotted: kept model)"
    )
    loss_axis.legend(fontsize="small")
    accuracy_axis.legend(fontsize="small")
    return figure


def _attention_figure(name: str, run: dict) -> Figure:
    """First-layer attention relative to uniform: alpha_ij * |N_i| (1 = uniform over the neighbourhood)."""
    edges, alpha = run["attention"]
    degree = torch.bincount(edges[1], minlength=run["num_nodes"]).float()
    relative = (alpha * degree[edges[1]].unsqueeze(1)).flatten().numpy()
    figure = Figure(figsize=(5, 4), layout="constrained")
    axis = figure.subplots()
    axis.hist(np.clip(relative, 0, 4), bins=80)
    axis.axvline(1.0, color="black", linestyle=":")
    axis.set(
        xlabel="alpha_ij x |N_i| (1 = uniform)",
        ylabel="edges x heads",
        title=f"{name}: first-layer attention (median {np.median(relative):.2f})",
    )
    return figure


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    device = select_device(cfg.device)
    if not cfg.datasets:
        raise ValueError("datasets must name at least one Planetoid graph, got an empty tuple")
    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    details: dict = {}
    for name in cfg.datasets:
        data = load_planetoid(name, normalize_features=True)
        runs[name] = train_gat(data, cfg, device, cfg.use_graph, f"GAT {name}")
        metrics[f"{name}_test_accuracy"] = runs[name]["test_accuracy"]
        details[name] = {
            "test_accuracy": runs[name]["test_accuracy"],
            "epochs_trained": runs[name]["epochs"],
            "kept_epoch": runs[name]["best_epoch"],
        }
        if cfg.mlp_baseline and name == cfg.datasets[0]:
            # Without the graph the main run already is the MLP; do not train it twice.
            mlp = runs[name] if not cfg.use_graph else train_gat(data, cfg, device, False, f"MLP {name}")
            if cfg.use_graph:
                runs[f"{name} (no graph)"] = mlp
            metrics[f"{name}_mlp_test_accuracy"] = mlp["test_accuracy"]
            details[f"{name}_mlp"] = {
                "test_accuracy": mlp["test_accuracy"],
                "epochs_trained": mlp["epochs"],
                "kept_epoch": mlp["best_epoch"],
            }

    figures = {"training_curves": _curve_figure(runs)}
    first = cfg.datasets[0]
    if runs[first]["attention"] is not None:
        figures["attention"] = _attention_figure(first, runs[first])
    notes = [
        (
            "Input dropout is one mask per layer input shared by the 8 heads (paper text and PyG); "
            "the paper's code draws a mask per head and also drops the transformed features W h."
        ),
        (
            "The attention scores a_1.Wh_i and a_2.Wh_j carry no scalar bias (Eq. 3 and PyG); the "
            "paper's code gives each a bias through tf.layers.conv1d."
        ),
        (
            "The graph-free baseline is this GAT with every edge removed (an MLP of the same width "
            "and dropout), not the 2-layer MLP of Table 2's row."
        ),
    ]
    if not cfg.use_graph:
        notes.append("use_graph=False: the GAT was trained without edges (ablation).")
    if cfg.scale == "quick":
        notes.append(
            f"quick: Cora only, {cfg.seeds} seeds, at most {cfg.max_epochs} epochs, no graph-free "
            "baseline (the full run trains it); Table 2 uses 100 runs."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
