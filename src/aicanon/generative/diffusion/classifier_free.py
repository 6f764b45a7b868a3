"""Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"): one network
is trained both conditionally and unconditionally, and sampling extrapolates from the unconditional
towards the conditional prediction, with no classifier.

Training (Algorithm 1): each example's condition c is replaced by the null token ∅ with probability
p_uncond, so the same network learns ε_θ(z, c) and ε_θ(z) = ε_θ(z, ∅). Here ∅ is an extra class index
(``null_label``, usually ``num_classes``: build the UNet with ``num_classes + 1`` embeddings);
:func:`label_dropout` is the transform that :func:`aicanon.testbeds.diffusion_training.train_denoiser`
applies to every mini-batch's model inputs (``kwargs_transform``).

Sampling (Algorithm 2, Eq. 6): at every step the score estimate is

    ε̃_θ(z_λ, c) = (1 + w) ε_θ(z_λ, c) − w ε_θ(z_λ)                                        (Eq. 6)

with guidance strength w ≥ 0 (w = 0: the plain conditional model). :class:`ClassifierFreeGuidance`
wraps the network as a model callable ``model(x_t, t, **model_kwargs)`` returning ε̃, so every
sampler of the core (ancestral, DDIM, respaced chains, the NLL code) uses it unchanged; by default
one forward pass evaluates the batch ``[conditional; unconditional]`` (twice the batch, one call).
The relation to classifier guidance (Section 3): ε̃ corresponds to the implicit classifier
p^i(c | z) ∝ p(z | c) / p(z), whose gradient ∇ log p^i(c | z) = −(ε(z, c) − ε(z)) / σ is scaled by w.

Departures and choices: the paper states Eq. 6 for ε; for models that predict x_0 or v the same
affine combination is applied to their output (both are affine in ε at a fixed z_t, so this is the
same guided ε). With ``guided_channels`` (e.g. the first C of a learned-variance model's 2C
outputs) only those channels are combined; the rest (the variance) are taken from the conditional
prediction, as GLIDE does. The paper's continuous-time (λ-indexed) sampler is replaced by the
core's discrete samplers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability, check_tensor

__all__ = ["ClassifierFreeGuidance", "guided_output", "label_dropout"]


def label_dropout(
    p_uncond: float, null_label: int, *, label_key: str = "class_labels"
) -> Callable[[dict[str, Tensor], torch.Generator], dict[str, Tensor]]:
    """``transform(kwargs, generator) -> kwargs`` with each row's ``kwargs[label_key]`` replaced by
    ``null_label`` with probability ``p_uncond`` (Algorithm 1, line 3), the other inputs unchanged."""
    p_uncond = float(check_probability("p_uncond", p_uncond))
    null_label = check_int("null_label", null_label, 0)

    def transform(kwargs: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        if label_key not in kwargs:
            raise ValueError(f"label dropout needs the labels under {label_key!r}, got keys {sorted(kwargs)}")
        labels = check_tensor(label_key, kwargs[label_key], dim=1, dtype=(torch.long, torch.int))
        drop = torch.rand(labels.shape, generator=generator) < p_uncond
        dropped = torch.where(drop.to(labels.device), torch.full_like(labels, null_label), labels)
        return {**kwargs, label_key: dropped}

    return transform


def guided_output(conditional: Tensor, unconditional: Tensor, weight: float) -> Tensor:
    """Eq. 6: (1 + w) · conditional − w · unconditional."""
    if conditional.shape != unconditional.shape:
        raise ValueError(
            f"conditional and unconditional outputs must have the same shape, got "
            f"{tuple(conditional.shape)} and {tuple(unconditional.shape)}"
        )
    return conditional + weight * (conditional - unconditional)


class ClassifierFreeGuidance(nn.Module):
    """The guided model ``(x_t, t, **model_kwargs) -> ε̃`` of Eq. 6 around ``model``.

    ``weight`` is w (finite; the paper's range w ≥ 0, negative values interpolate towards the
    unconditional model and are allowed). ``null_label`` is the label of the unconditional model
    (∅). ``batched``: one call over the concatenated batch ``[conditional; unconditional]`` (all
    other model inputs with the batch's first dimension are repeated); otherwise two calls.
    ``guided_channels``: how many leading output channels Eq. 6 combines (None: all).
    """

    def __init__(
        self,
        model: Callable[..., Tensor],
        weight: float,
        null_label: int,
        *,
        label_key: str = "class_labels",
        batched: bool = True,
        guided_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        self.model = model
        self.weight = float(check_float("weight", weight, finite=True))
        self.null_label = check_int("null_label", null_label, 0)
        self.label_key = label_key
        self.batched = bool(batched)
        self.guided_channels = check_int("guided_channels", guided_channels, allow_none=True)

    def forward(self, x: Tensor, t: Tensor, **model_kwargs: Any) -> Tensor:
        check_tensor("x", x, floating=True)
        batch = x.shape[0]
        labels = model_kwargs.get(self.label_key)
        if labels is None:
            raise ValueError(f"classifier-free guidance needs the condition under {self.label_key!r}")
        check_tensor(self.label_key, labels, shape=(batch,), dtype=(torch.long, torch.int))
        if self.weight == 0.0:  # Eq. 6 at w = 0 is the conditional model: skip the second pass
            return self.model(x, t, **model_kwargs)
        null = torch.full_like(labels, self.null_label)
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(batch)
        if self.batched:
            doubled = {
                key: torch.cat([value, value])
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch
                else value
                for key, value in model_kwargs.items()
            }
            doubled[self.label_key] = torch.cat([labels, null])
            conditional, unconditional = self.model(torch.cat([x, x]), torch.cat([t, t]), **doubled).chunk(2)
        else:
            conditional = self.model(x, t, **model_kwargs)
            unconditional = self.model(x, t, **{**model_kwargs, self.label_key: null})
        if self.guided_channels is None:
            return guided_output(conditional, unconditional, self.weight)
        n = self.guided_channels
        if n > conditional.shape[1]:
            raise ValueError(
                f"guided_channels={n} exceeds the model's {conditional.shape[1]} output channels"
            )
        guided = guided_output(conditional[:, :n], unconditional[:, :n], self.weight)
        return torch.cat([guided, conditional[:, n:]], dim=1)
