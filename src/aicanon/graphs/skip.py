r"""Skip connections across GNN layers (Zhou et al., GNN review, Section 3.3, "skip connection").

Stacking many propagation layers lets noise from an exponentially growing neighbourhood in and
smooths representations together; skip connections let a layer fall back on what came before.

* :class:`ResidualConnection`: ``H^(l+1) = sigma(conv(H^(l))) + P H^(l)`` (Kipf & Welling 2017,
  Appendix B, Eq. 14: ``H^(l+1) = sigma(A^ H^(l) W^(l)) + H^(l)``), with ``P`` the identity when the
  widths agree and a learned linear projection when they differ.
* :class:`JumpingKnowledge`: jumping knowledge networks (Xu, Li, Tian, Sonobe, Kawarabayashi,
  Jegelka, ICML 2018, arXiv 1806.03536), Section 5: the final representation of node ``v`` combines
  its representations at every layer ``h_v^(1) .. h_v^(L)``, so that each node picks its own
  neighbourhood range:

  - concatenation: ``[h_v^(1) || ... || h_v^(L)]`` (then a linear map, left to the model);
  - max-pooling: element-wise ``max(h_v^(1), ..., h_v^(L))``;
  - LSTM-attention: a bi-directional LSTM reads ``h_v^(1) .. h_v^(L)``; a linear map of its forward
    and backward states at layer ``l`` gives a score ``s_v^(l)``, and the output is
    ``sum_l softmax_l(s_v^(l)) h_v^(l)``.

Departures, and why: the LSTM has ``floor(L C / 2)`` hidden units per direction and the score is a
linear map with a bias, as in PyTorch Geometric's ``JumpingKnowledge`` (the paper gives no size), so
that its weights load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.inputs import SparseFeatures
from aicanon.nn.init import glorot_uniform_

__all__ = ["JumpingKnowledge", "ResidualConnection"]

MODES = ("cat", "max", "lstm")


class ResidualConnection(nn.Module):
    r"""``out = activation(layer(h, *args)) + P h`` (Appendix B, Eq. 14 of Kipf & Welling).

    Args:
        layer: a propagation module called as ``layer(h, *args, **kwargs)`` (e.g. :class:`GCNConv`).
        in_features, out_features: the widths of ``h`` and of ``layer``'s output; ``P`` is the
            identity when they agree, else a learned ``[out, in]`` matrix (Glorot-uniform).
        activation: applied to the layer's output before the sum (``sigma`` of Eq. 14); None for none.
    """

    def __init__(self, layer: nn.Module, in_features: int, out_features: int, activation=torch.relu) -> None:
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        self.layer, self.activation = layer, activation
        self.in_features, self.out_features = in_features, out_features
        if in_features == out_features:
            self.projection = None
        else:
            self.projection = nn.Parameter(glorot_uniform_(torch.empty(out_features, in_features)))

    def forward(self, h: Tensor | SparseFeatures, *args, **kwargs) -> Tensor:
        """``h`` ``[N, in_features]`` (dense, or SparseFeatures when the widths differ); ``args`` and
        ``kwargs`` go to ``layer`` (e.g. ``edge_index``)."""
        if not isinstance(h, (Tensor, SparseFeatures)):
            raise TypeError(f"h must be a torch.Tensor [N, in_features], got {type(h).__name__}")
        if h.dim() != 2 or h.size(1) != self.in_features:
            raise ValueError(f"h must have shape [N, in_features={self.in_features}], got {tuple(h.size())}")
        out = self.layer(h, *args, **kwargs)
        if self.activation is not None:
            out = self.activation(out)
        if self.projection is None:
            if isinstance(h, SparseFeatures):
                h = h.to_dense()
            return out + h
        if isinstance(h, SparseFeatures):
            return out + h.matmul_transposed(self.projection)
        return out + h @ self.projection.t()


class JumpingKnowledge(nn.Module):
    r"""Layer aggregation of Xu et al. 2018, Section 5: ``"cat"``, ``"max"`` or ``"lstm"``.

    Args:
        mode: ``"cat"`` (output ``L C`` wide), ``"max"`` or ``"lstm"`` (output ``C`` wide).
        channels: ``C``, the width of every layer's representation (``"lstm"`` only).
        num_layers: ``L``, how many representations are combined (``"lstm"`` only).

    ``forward(xs)`` takes the list ``[h^(1), ..., h^(L)]`` of ``[N, C]`` tensors. With ``"lstm"``,
    ``return_attention=True`` also returns the layer weights ``[N, L]``.
    """

    def __init__(self, mode: str, channels: int | None = None, num_layers: int | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.channels, self.num_layers = mode, channels, num_layers
        if mode == "lstm":
            check_int("channels", channels, note="mode 'lstm' needs it")
            check_int("num_layers", num_layers, note="mode 'lstm' needs it")
            hidden = max((num_layers * channels) // 2, 1)
            self.lstm = nn.LSTM(channels, hidden, bidirectional=True, batch_first=True)
            self.att = nn.Linear(2 * hidden, 1)

    def forward(self, xs: Sequence[Tensor], return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not isinstance(xs, (list, tuple)) or not xs or not all(isinstance(x, Tensor) for x in xs):
            raise TypeError(f"xs must be a non-empty list of [N, C] tensors, got {type(xs).__name__}")
        shapes = {tuple(x.shape) for x in xs}
        if self.mode != "cat" and len(shapes) != 1:
            raise ValueError(f"xs must all have the same shape for mode {self.mode!r}, got {sorted(shapes)}")
        if self.mode == "cat":
            return torch.cat(list(xs), dim=-1)
        if self.mode == "max":
            return torch.stack(list(xs), dim=-1).amax(dim=-1)
        if len(xs) != self.num_layers or xs[0].size(-1) != self.channels:
            raise ValueError(
                f"xs must hold num_layers={self.num_layers} tensors of {self.channels} channels, got "
                f"{len(xs)} of {xs[0].size(-1)}"
            )
        stacked = torch.stack(list(xs), dim=1)  # [N, L, C]: each node's layer sequence
        states, _ = self.lstm(stacked)
        alpha = torch.softmax(self.att(states).squeeze(-1), dim=-1)  # [N, L], sums to 1 over layers
        out = (stacked * alpha.unsqueeze(-1)).sum(dim=1)
        return (out, alpha) if return_attention else out

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (
            f", channels={self.channels}, num_layers={self.num_layers}" if self.mode == "lstm" else ""
        )
