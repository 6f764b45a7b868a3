"""A PointNet classifier (Qi et al., CVPR 2017, arXiv 1612.00593): the baseline we train on ShapeNet-style
point clouds (:mod:`aicanon.vision.shapenet` samples them from the meshes).

A point cloud is an unordered set, so the classifier must be a symmetric function of its points.
PointNet approximates any continuous set function by a shared per-point network ``h`` followed by a
symmetric pooling ``g`` (max over the points) and a classifier ``gamma`` (PointNet, Eq. 1)::

    f({x_1, ..., x_n}) ~= gamma( MAX_{i=1..n} h(x_i) )                                    (1)

``h`` is a shared MLP (1x1 convolutions: 64, 64 | 64, 128, 1024 channels, batch norm and ReLU
after each), ``gamma`` an MLP 512, 256 with dropout before the last layer. An optional input
transform net (T-net) predicts a 3x3 matrix applied to the coordinates, and an optional feature
T-net a 64x64 matrix applied after the first two layers; the latter is regularised towards an
orthogonal matrix (PointNet, Eq. 2)::

    L_reg = || I - A A^T ||_F^2                                                             (2)

Both T-nets are PointNets themselves (shared MLP 64, 128, 1024, max pool, FC 512, 256, k*k), their
output added to the identity so that they start as the identity transform.

``pooling`` selects the symmetric function: ``"max"`` (the paper's), ``"mean"`` (the paper's
average-pooling variant, Fig. 5) or ``"flatten"``: the per-point features concatenated in input
order and fed to the classifier, an order-*dependent* "MLP on unsorted input" (the baseline of
Fig. 5) that needs a fixed ``num_points``; it is the ablation of the symmetric function.

Departures: the channel widths are arguments (the experiment's quick run narrows them); the
T-nets' own widths follow them (``widths[0], 2 widths[0], widths[-1]``, then FC ``widths[-1] / 2,
widths[-1] / 4``: PointNet's 64, 128, 1024 / 512, 256 at the paper's widths); dropout is a
probability of dropping (the paper's keep ratio 0.7 is ``dropout=0.3``); batch norm's statistics
are taken over the batch and the points together, as a 1x1 convolution's are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor

__all__ = ["PointNetClassifier", "TransformNet", "orthogonality_loss"]


class _SharedMLP(nn.Module):
    """Per-point layers ``Linear -> BatchNorm -> ReLU`` on ``[B, N, C]`` (1x1 convolutions)."""

    def __init__(self, in_features: int, widths: Sequence[int], batch_norm: bool = True):
        super().__init__()
        layers = []
        for width in widths:
            layers.append(nn.Linear(in_features, width, bias=not batch_norm))
            layers.append(nn.BatchNorm1d(width) if batch_norm else nn.Identity())
            in_features = width
        self.layers = nn.ModuleList(layers)
        self.out_features = in_features

    def forward(self, x: Tensor) -> Tensor:
        for i in range(0, len(self.layers), 2):
            x = self.layers[i](x)
            norm = self.layers[i + 1]
            if isinstance(norm, nn.BatchNorm1d):
                x = norm(x.transpose(1, 2)).transpose(1, 2)  # statistics over batch and points
            x = torch.relu(x)
        return x


def _head(in_features: int, widths: Sequence[int], out_features: int, dropout: float, batch_norm: bool):
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers.append(nn.Linear(in_features, width, bias=not batch_norm))
        layers.append(nn.BatchNorm1d(width) if batch_norm else nn.Identity())
        layers.append(nn.ReLU())
        if i == len(widths) - 1 and dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


class TransformNet(nn.Module):
    """T-net: a small PointNet predicting a ``k x k`` matrix, initialised to the identity."""

    def __init__(self, k: int, widths: Sequence[int] = (64, 128, 1024), head: Sequence[int] = (512, 256)):
        super().__init__()
        self.k = check_int("k", k)
        self.features = _SharedMLP(k, widths)
        self.head = _head(self.features.out_features, head, k * k, 0.0, True)
        last = self.head[-1]
        nn.init.zeros_(last.weight)  # output I + 0: the network starts as the identity transform
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, N, k]`` -> matrices ``[B, k, k]``."""
        pooled = self.features(x).amax(dim=1)
        identity = torch.eye(self.k, device=x.device, dtype=x.dtype)
        return self.head(pooled).view(-1, self.k, self.k) + identity


def orthogonality_loss(matrix: Tensor) -> Tensor:
    """Eq. (2) averaged over the batch: ``mean_b || I - A_b A_b^T ||_F^2`` for ``matrix [B, k, k]``."""
    check_tensor("matrix", matrix, dim=3, floating=True)
    if matrix.shape[1] != matrix.shape[2]:
        raise ValueError(f"matrix must be square [B, k, k], got {tuple(matrix.shape)}")
    identity = torch.eye(matrix.shape[1], device=matrix.device, dtype=matrix.dtype)
    return (identity - matrix @ matrix.transpose(1, 2)).square().sum(dim=(1, 2)).mean()


class PointNetClassifier(nn.Module):
    """PointNet classification network (Eq. 1): points ``[B, N, in_features]`` -> logits ``[B, num_classes]``.

    ``widths`` are the shared MLP's channels; the feature transform (when on) sits after the first
    ``split`` layers (PointNet: 64, 64 then 64, 128, 1024, so ``split=2``, the default where there
    are three or more layers; one layer before it otherwise).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        in_features: int = 3,
        widths: Sequence[int] = (64, 64, 64, 128, 1024),
        split: int | None = None,
        head: Sequence[int] = (512, 256),
        dropout: float = 0.3,
        pooling: str = "max",
        num_points: int | None = None,
        input_transform: bool = True,
        feature_transform: bool = False,
        batch_norm: bool = True,
    ):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.in_features = check_int("in_features", in_features)
        widths = tuple(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got {widths!r}")
        if split is None:  # PointNet: the feature transform after the first two of five layers
            split = min(2, max(len(widths) - 1, 1))
        self.split = check_int("split", split, 1, len(widths))
        check_probability("dropout", dropout, allow_one=False)
        self.pooling = check_choice("pooling", pooling, ("max", "mean", "flatten"))
        if pooling == "flatten":
            check_int("num_points", num_points, note="needed by pooling='flatten'")
        self.num_points = num_points
        # T-net widths follow the main network's (64, 128, 1024 / 512, 256 at the paper's widths)
        tnet_widths = (widths[0], 2 * widths[0], widths[-1])
        tnet_head = (max(widths[-1] // 2, 8), max(widths[-1] // 4, 8))
        self.input_transform = TransformNet(in_features, tnet_widths, tnet_head) if input_transform else None
        self.local = _SharedMLP(in_features, widths[:split], batch_norm)
        middle = self.local.out_features
        self.feature_transform = TransformNet(middle, tnet_widths, tnet_head) if feature_transform else None
        self.global_mlp = _SharedMLP(middle, widths[split:], batch_norm)
        pooled = self.global_mlp.out_features * (num_points if pooling == "flatten" else 1)
        self.classifier = _head(pooled, tuple(head), num_classes, dropout, batch_norm)

    def forward(self, points: Tensor, return_transforms: bool = False):
        """Logits ``[B, num_classes]``; with ``return_transforms`` also ``(input, feature)`` matrices
        (None where that T-net is off), for the regulariser (2)."""
        check_tensor("points", points, dim=3, floating=True)
        if points.shape[2] != self.in_features:
            raise ValueError(f"points must be [batch, points, {self.in_features}], got {tuple(points.shape)}")
        if self.pooling == "flatten" and points.shape[1] != self.num_points:
            raise ValueError(
                f"points must have {self.num_points} points per cloud (pooling='flatten'), "
                f"got {points.shape[1]}"
            )
        if points.shape[1] < 1:
            raise ValueError(f"points must hold at least one point per cloud, got {tuple(points.shape)}")
        input_matrix = feature_matrix = None
        x = points
        if self.input_transform is not None:
            input_matrix = self.input_transform(x)
            x = x @ input_matrix
        x = self.local(x)
        if self.feature_transform is not None:
            feature_matrix = self.feature_transform(x)
            x = x @ feature_matrix
        x = self.global_mlp(x)
        if self.pooling == "max":
            pooled = x.amax(dim=1)  # Eq. (1): the symmetric function g
        elif self.pooling == "mean":
            pooled = x.mean(dim=1)
        else:
            pooled = x.flatten(1)  # order-dependent ablation: no symmetric function
        logits = self.classifier(pooled)
        if return_transforms:
            return logits, (input_matrix, feature_matrix)
        return logits
