"""Sample-quality metrics in a feature space: precision and recall (Kynkäänniemi et al. 2019) and the
Fréchet distance (Heusel et al. 2017).

Both compare feature vectors of real and generated samples ``[N, D]``. Computed on features of a
small network trained here (not Inception), so the numbers are comparable within this project only:
call the Fréchet distance on such features "FD", not FID.

* Precision: the share of generated samples that fall inside the real manifold, estimated as the union
  of balls around every real feature with radius its distance to its k-th nearest real neighbour
  (k = 3 in the paper); recall: the share of real samples inside the generated manifold (the same with
  the roles swapped). Fidelity shows in precision, diversity (coverage) in recall.
* Fréchet distance: ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}), with the trace of the matrix
  square root from the eigenvalues of Σ_r^{1/2} Σ_g Σ_r^{1/2} (symmetric, so the computation is stable).
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_int, check_tensor

__all__ = ["frechet_distance", "knn_radii", "precision_recall"]


def _check_pair(real: Tensor, fake: Tensor) -> None:
    check_tensor("real", real, dim=2, floating=True)
    check_tensor("fake", fake, dim=2, floating=True)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake must have the same feature size, got {real.shape[1]} and {fake.shape[1]}"
        )


def knn_radii(features: Tensor, k: int = 3) -> Tensor:
    """Each row's distance to its k-th nearest other row ``[N]``."""
    check_int("k", k, 1)
    if features.shape[0] <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {features.shape[0]}")
    distances = torch.cdist(features.double(), features.double())
    return distances.kthvalue(k + 1, dim=1).values  # the 1st is the point itself (distance 0)


def _coverage(reference: Tensor, queries: Tensor, k: int) -> float:
    radii = knn_radii(reference, k)
    inside = torch.cdist(queries.double(), reference.double()) <= radii[None, :]
    return inside.any(dim=1).double().mean().item()


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` features (module docstring)."""
    _check_pair(real, fake)
    return _coverage(real, fake, k), _coverage(fake, real, k)


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to ``real`` and ``fake`` features."""
    _check_pair(real, fake)
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("need at least two samples on each side for a covariance")
    real, fake = real.double(), fake.double()
    mu_r, mu_g = real.mean(0), fake.mean(0)
    cov_r, cov_g = torch.cov(real.T).reshape(real.shape[1], -1), torch.cov(fake.T).reshape(fake.shape[1], -1)
    root = _sqrt_psd(cov_r)
    cross = torch.linalg.eigvalsh(root @ cov_g @ root).clamp(min=0).sqrt().sum()
    return ((mu_r - mu_g).square().sum() + cov_r.trace() + cov_g.trace() - 2 * cross).item()
