"""DeiT: data-efficient image transformers and distillation through attention (Touvron et al. 2021).

DeiT is ViT (:class:`aicanon.vision.vit.VisionTransformer`, the same encoder) trained with a strong
recipe and, in its distilled form, one extra learned token: the *distillation token*, appended after
the class token, which interacts with the patches through self-attention like the class token and
is read out by its own linear head (Section 4, Figure 2). The class head learns from the labels,
the distillation head from a teacher (a convnet in the paper).

Hard-label distillation (Section 4, "Hard-label distillation"): with ``Z_s`` the class head's
logits, ``Z_s^dist`` the distillation head's, ``psi`` the softmax and ``y_t = argmax_c Z_t(c)`` the
teacher's decision::

    L_global^hardDistill = 1/2 L_CE(psi(Z_s), y) + 1/2 L_CE(psi(Z_s^dist), y_t)

Soft distillation (Hinton et al. 2015; Section 4, "Soft distillation"), with temperature ``tau`` and
weight ``lambda``, the distillation head matching the teacher's tempered distribution::

    L_global = (1 - lambda) L_CE(psi(Z_s), y) + lambda tau^2 KL(psi(Z_s^dist / tau), psi(Z_t / tau))

At test time "we add the softmax output by the two classifiers to make the prediction" (Section 4,
"Classification with our approach: joint classifiers"): :meth:`DistilledVisionTransformer.predict_proba`.

Layout and names are timm's (``cls_token, dist_token, pos_embed`` with two prefix positions,
``blocks.*``, ``norm``, ``head``, ``head_dist``), so timm ``deit_*`` state dicts load unchanged:
``load_state_dict_strict(model, from_timm(state_dict))`` (:func:`from_timm` is ViT's,
:func:`aicanon.vision.vit_weights.from_timm`; :func:`aicanon.core.state_dict.load_state_dict_strict`
lists every missing, unexpected or mis-shaped entry). In one call, from a state dict or a
``.safetensors`` file: ``DistilledVisionTransformer.from_timm(path, "deit_tiny_distilled_patch16_224")``
(``VisionTransformer.from_timm(path, "deit_tiny_patch16_224")`` for the plain ones). Non-distilled DeiT is a ViT:
:func:`deit` builds either (sizes Ti/S/B of Table 1).

Departures from the paper, and why:

* ``forward`` returns the *mean of the two heads' logits*, as the official code and timm do (so the
  reference's outputs are ours to compare), while the paper adds the softmax outputs;
  :meth:`~DistilledVisionTransformer.predict_proba` gives the paper's rule, and argmax of either rarely
  differs. Training uses :meth:`~DistilledVisionTransformer.forward_heads`, both heads' logits.
* The soft-distillation KL is averaged over the batch (``batchmean``, the per-example KL of the
  equation); the official code sums it and divides by the number of *logits* (batch x classes),
  a constant factor ``1/classes`` that only rescales ``lambda``.
* Initialisation is ViT's (the JAX code's), with the distillation token normal with std 0.02 like
  the position embeddings and its head zero like the class head; DeiT/timm use truncated normal
  0.02 throughout. It does not matter for loading weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.vision.backbone import match_timm_variant
from aicanon.vision.vit import TIMM_SIZE_NAMES, VIT_SIZES, VisionTransformer, resample_pos_embed
from aicanon.vision.vit_weights import from_timm

__all__ = [
    "DEIT_SIZES",
    "DistilledVisionTransformer",
    "deit",
    "from_timm",
    "hard_distillation_loss",
    "soft_distillation_loss",
]

# Table 1 of DeiT: Ti, S, B with patches of 16 (Ti and S are also in ViT's VIT_SIZES).
DEIT_SIZES = {name: VIT_SIZES[name] for name in ("Ti", "S", "B")}


class DistilledVisionTransformer(VisionTransformer):
    """ViT with a distillation token and head (Section 4, Figure 2).

    Takes :class:`~aicanon.vision.vit.VisionTransformer`'s arguments (``global_pool`` must be
    ``"token"``: both heads read a token). ``pos_embed`` covers the two prefix tokens.
    """

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("global_pool", "token") != "token":
            raise ValueError(
                f"global_pool must be 'token' for DeiT (the heads read the class and distillation tokens), "
                f"got {kwargs['global_pool']!r}"
            )
        if kwargs.get("representation_size") is not None:
            raise ValueError(
                "representation_size must be None for DeiT (linear heads), got "
                f"{kwargs['representation_size']!r}"
            )
        super().__init__(*args, **kwargs)
        self.num_prefix_tokens = 2
        dim = self.embed_dim
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        num_patches = self.grid_size[0] * self.grid_size[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 2, dim))
        self.head_dist = nn.Linear(dim, self.num_classes) if self.num_classes else nn.Identity()
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.dist_token, std=0.02)
        if isinstance(self.head_dist, nn.Linear):
            nn.init.zeros_(self.head_dist.weight)
            nn.init.zeros_(self.head_dist.bias)

    def embed(self, x: Tensor) -> Tensor:
        """``[class; distillation; patches] + E_pos`` (Figure 2): ``[B, 2 + N, D]``."""
        grid = self._check_input(x)
        tokens = self.patch_embed(x)
        pos_embed = self.pos_embed
        if grid != self.grid_size:
            pos_embed = resample_pos_embed(pos_embed, grid, self.grid_size, self.num_prefix_tokens)
        b = tokens.shape[0]
        tokens = torch.cat(
            [self.cls_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1), tokens], dim=1
        )
        return self.pos_drop(tokens + pos_embed)

    def _check_features(self, features: Tensor) -> None:
        if not isinstance(features, Tensor) or features.dim() != 3 or features.shape[-1] != self.embed_dim:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be tokens [batch, tokens, {self.embed_dim}], got {got}")

    def heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(Z_s, Z_s^dist)``: the class head on token 0, the distillation head on token 1."""
        self._check_features(features)
        cls, dist = self.head_drop(features[:, 0]), self.head_drop(features[:, 1])
        return self.head(cls), self.head_dist(dist)

    def forward_heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Both heads' logits for images ``x`` (what the distillation losses take)."""
        return self.heads(self.forward_features(x))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Mean of the two heads' logits (official code and timm; see the module docstring)."""
        self._check_features(features)
        if pre_logits:
            return (self.head_drop(features[:, 0]) + self.head_drop(features[:, 1])) / 2
        cls, dist = self.heads(features)
        return (cls + dist) / 2

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """The paper's joint classifier: the mean of the two heads' softmax outputs ``[B, classes]``."""
        cls, dist = self.forward_heads(x)
        return (cls.float().softmax(-1) + dist.float().softmax(-1)) / 2

    def reset_classifier(self, num_classes: int, representation_size: int | None = None) -> None:
        """New zero-initialised class and distillation heads."""
        if representation_size is not None:
            raise ValueError(f"representation_size must be None for DeiT, got {representation_size!r}")
        super().reset_classifier(num_classes)
        device = self.pos_embed.device
        self.head_dist = nn.Linear(self.embed_dim, num_classes).to(device) if num_classes else nn.Identity()
        if num_classes:
            nn.init.zeros_(self.head_dist.weight)
            nn.init.zeros_(self.head_dist.bias)

    @classmethod
    def timm_variant_kwargs(cls, variant: str) -> dict:
        """Constructor arguments of a timm ``deit_<tiny|small|base>_distilled_patch16_<res>`` model
        (the plain ``deit_*_patch16_*`` ones are :class:`VisionTransformer`'s)."""
        match = match_timm_variant(
            variant,
            r"deit_(tiny|small|base)_distilled_patch(16)_(\d+)",
            "distilled DeiT",
            "'deit_tiny_distilled_patch16_224' or 'deit_base_distilled_patch16_384'",
        )
        size = DEIT_SIZES[TIMM_SIZE_NAMES[match.group(1)]]
        return {
            "img_size": int(match.group(3)),
            "patch_size": int(match.group(2)),
            "embed_dim": size.embed_dim,
            "depth": size.depth,
            "num_heads": size.num_heads,
            "mlp_ratio": size.mlp_dim / size.embed_dim,
        }


def _check_logits(name: str, logits: Tensor, like: Tensor | None = None) -> None:
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be float logits [batch, classes], got {got}")
    if like is not None and logits.shape != like.shape:
        raise ValueError(
            f"{name} must have the shape of class_logits {tuple(like.shape)}, got {tuple(logits.shape)}"
        )


def _check_labels(labels: Tensor, logits: Tensor) -> None:
    if not isinstance(labels, Tensor) or labels.dtype != torch.long or labels.shape != logits.shape[:1]:
        got = (tuple(labels.shape), labels.dtype) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be int64 class indices of shape {tuple(logits.shape[:1])}, got {got}")


def hard_distillation_loss(
    class_logits: Tensor,
    dist_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    label_smoothing: float = 0.0,
) -> Tensor:
    """``1/2 CE(Z_s, y) + 1/2 CE(Z_s^dist, argmax Z_t)`` (Section 4, hard-label distillation).

    ``label_smoothing`` applies to both targets (the paper notes the teacher's hard labels "can also
    be converted" to smoothed ones, epsilon = 0.1).
    """
    _check_logits("class_logits", class_logits)
    _check_logits("dist_logits", dist_logits, class_logits)
    _check_logits("teacher_logits", teacher_logits, class_logits)
    _check_labels(labels, class_logits)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    teacher_labels = teacher_logits.detach().argmax(-1)  # y_t = argmax_c Z_t(c)
    return 0.5 * F.cross_entropy(
        class_logits.float(), labels, label_smoothing=label_smoothing
    ) + 0.5 * F.cross_entropy(dist_logits.float(), teacher_labels, label_smoothing=label_smoothing)


def soft_distillation_loss(
    class_logits: Tensor,
    dist_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    temperature: float = 3.0,
    alpha: float = 0.1,
) -> Tensor:
    """``(1 - lambda) CE(Z_s, y) + lambda tau^2 KL(psi(Z_t/tau) || psi(Z_s^dist/tau))`` (Section 4).

    ``alpha`` is ``lambda`` and ``temperature`` is ``tau`` (the paper's soft-distillation setting:
    tau = 3, lambda = 0.1). The KL is per example, averaged over the batch.
    """
    _check_logits("class_logits", class_logits)
    _check_logits("dist_logits", dist_logits, class_logits)
    _check_logits("teacher_logits", teacher_logits, class_logits)
    _check_labels(labels, class_logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    tau = float(temperature)
    student = F.log_softmax(dist_logits.float() / tau, dim=-1)
    teacher = F.log_softmax(teacher_logits.detach().float() / tau, dim=-1)
    kl = F.kl_div(student, teacher, reduction="batchmean", log_target=True)
    return (1 - alpha) * F.cross_entropy(class_logits.float(), labels) + alpha * tau * tau * kl


def deit(name: str, distilled: bool = True, **kwargs) -> VisionTransformer:
    """DeiT of a named size with patches of 16 (Table 1): ``deit("Ti", num_classes=10)``.

    ``distilled=False`` gives the plain DeiT, which is a :class:`VisionTransformer`.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'Ti', got {type(name).__name__}")
    key = name.removeprefix("DeiT-")
    if key not in DEIT_SIZES:
        raise ValueError(
            f"name must be one of {sorted(DEIT_SIZES)} (optionally 'DeiT-' prefixed), got {name!r}"
        )
    for field in ("embed_dim", "depth", "num_heads", "mlp_ratio"):
        if field in kwargs:
            raise ValueError(f"{field} is set by the name {name!r}; build the model directly to change it")
    size = DEIT_SIZES[key]
    cls = DistilledVisionTransformer if distilled else VisionTransformer
    kwargs.setdefault("patch_size", 16)
    check_int("patch_size", kwargs["patch_size"])
    return cls(
        embed_dim=size.embed_dim,
        depth=size.depth,
        num_heads=size.num_heads,
        mlp_ratio=size.mlp_dim / size.embed_dim,
        **kwargs,
    )
