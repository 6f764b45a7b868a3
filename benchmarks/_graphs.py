"""Graphs shared by the GNN layer benchmarks: the staged Cora, or a large random graph."""

from __future__ import annotations

import torch

from aicanon.core import DataUnavailable


def cora_or_none():
    """Cora with row-normalised features, or None (saying why) when its files are not staged."""
    from aicanon.datasets.planetoid import load_planetoid

    try:
        return load_planetoid("cora", normalize_features=True)
    except (DataUnavailable, ValueError) as error:  # data not staged: the random graph still runs
        print(f"Cora skipped: {type(error).__name__}: {str(error).splitlines()[0]}")
        return None


def random_graph(
    nodes: int = 100_000, edges: int = 1_000_000, features: int = 128, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian node features and uniformly drawn edges: ``(x [nodes, features], edge_index [2, edges])``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, features, generator=generator)
    return x, torch.randint(0, nodes, (2, edges), generator=generator)
