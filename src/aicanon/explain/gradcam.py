"""Grad-CAM, Guided Backpropagation and Guided Grad-CAM (Selvaraju et al., ICCV 2017, arXiv 1610.02391).

Grad-CAM explains a differentiable scalar ``y^c`` (a class score, a caption token's log-probability)
by the feature maps ``A^k`` (``k = 1..K``, each ``h x w``) of a chosen convolutional layer:

* Eq. 1, neuron-importance weights: ``alpha_k^c = (1/Z) sum_i sum_j dy^c / dA^k_ij`` (global average
  pooling of the gradients, ``Z = h w``);
* Eq. 2, the class-discriminative map: ``L^c = ReLU(sum_k alpha_k^c A^k)``, an ``h x w`` map, then
  upsampled to the input's size (bilinear, Section 3) to overlay it on the image.

Guided Backpropagation (Springenberg et al.) back-propagates ``y^c`` to the pixels, passing a
gradient through a ReLU only where both its input and the incoming gradient are positive.
Guided Grad-CAM (Section 3) is the point-wise product of the Guided Backpropagation image and the
upsampled ``L^c``: fine-grained and class-discriminative.

Counterfactual explanations (Section 3): negating the gradients, ``alpha_k^c = (1/Z) sum_ij
-dy^c/dA^k_ij``, highlights the regions whose removal would make the network more confident in
``c``.

Mechanics. A forward hook on the named layer keeps its output ``A`` (the hook is removed on exit,
also when an error is raised); ``torch.autograd.grad`` takes ``dy/dA`` (and ``dy/dx`` for the guided
methods) without touching any parameter's ``.grad``; the model is put in eval mode while explaining
and its previous mode is restored. Guided Backpropagation adds a forward hook to every ``nn.ReLU``
module that routes its output through an identity whose backward pass clamps the gradient at 0,
giving ``dR/dx = [x > 0] * max(g, 0)``, the guided rule; these hooks are removed on exit too.

Vision transformers: ``reshape_transform`` maps the layer's output (tokens ``[N, 1 + HW, C]``) to
a grid ``[N, C, H, W]`` (see :func:`vit_reshape_transform`); the same transform is applied to the
gradient, which is correct because a reshape only moves entries.

Departures from the paper and why:

* Batched: ``N`` images are explained at once; the per-image targets are summed before the single
  backward pass, which gives each image its own gradient as long as images do not interact (eval
  mode: batch norm uses running statistics).
* Guided Backpropagation only modifies ``nn.ReLU`` modules; ReLUs called functionally
  (``F.relu``) cannot be hooked and keep the plain gradient (captum has the same limitation).
* The maps are not normalised (the paper's figures scale each map to [0, 1] for display; the
  plotter does that, the values stay in the model's units so that they can be compared).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.explain.explanation import Explanation

__all__ = ["grad_cam", "guided_backprop", "guided_grad_cam", "vit_reshape_transform"]

Target = int | list[int] | tuple[int, ...] | Tensor | Callable[[Tensor], Tensor]
INTERPOLATE_MODES = ("bilinear", "nearest", "bicubic")


# =============================================================================== checks
def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (hooks need modules), got {type(model).__name__}")
    return model


def _check_inputs(inputs: Any) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor of images [N, C, H, W], got {type(inputs).__name__}")
    if inputs.ndim != 4:
        raise ValueError(f"inputs must have shape [N, C, H, W] (4 dims), got shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be a floating-point tensor, got dtype {inputs.dtype}")
    if inputs.shape[0] == 0:
        raise ValueError(f"inputs must hold at least one image, got shape {tuple(inputs.shape)}")
    return inputs


def _find_layer(model: nn.Module, layer: Any) -> nn.Module:
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("layer must be a submodule of model, got a module that is not part of it")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name (str) or an nn.Module, got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        available = [name for name in modules if name]
        raise ValueError(f"layer {layer!r} is not a module of model; available layers: {available}")
    return modules[layer]


def _check_mode(interpolate_mode: str) -> str:
    if interpolate_mode not in INTERPOLATE_MODES:
        raise ValueError(f"interpolate_mode must be one of {INTERPOLATE_MODES}, got {interpolate_mode!r}")
    return interpolate_mode


def _target_scores(output: Tensor, target: Any, n: int) -> tuple[Tensor, Any]:
    """The scalar ``y^c`` of every image ``[N]`` and a JSON-able record of the target."""
    if callable(target) and not isinstance(target, Tensor):
        scores = target(output)
        if not isinstance(scores, Tensor):
            raise TypeError(f"target callable must return a torch.Tensor, got {type(scores).__name__}")
        if scores.ndim == 0 and n == 1:
            scores = scores.reshape(1)
        if scores.shape != (n,):
            raise ValueError(
                f"target callable must return one scalar per image, shape [{n}], got {tuple(scores.shape)}"
            )
        return scores, "callable"
    if not isinstance(output, Tensor) or output.ndim != 2 or output.shape[0] != n:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"a class-index target needs model outputs of shape [N, classes] with N={n}, got {shape}; "
            "pass a callable target for other outputs"
        )
    classes = output.shape[1]
    if isinstance(target, bool):
        raise TypeError(f"target must be an int, a sequence of ints, a tensor or a callable, got {target!r}")
    if isinstance(target, int):
        indices = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, (list, tuple, Tensor)):
        indices = torch.as_tensor(target)
        if indices.is_floating_point() or indices.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got dtype {indices.dtype}")
        indices = indices.long().reshape(-1)
        if indices.numel() != n:
            raise ValueError(f"target must hold one class index per image ({n}), got {indices.numel()}")
    else:
        raise TypeError(
            f"target must be an int, a sequence of ints, a tensor or a callable, got {type(target).__name__}"
        )
    if (indices < 0).any() or (indices >= classes).any():
        raise ValueError(f"target must be class indices in [0, {classes}), got {indices.tolist()}")
    indices = indices.to(output.device)
    return output.gather(1, indices[:, None])[:, 0], indices.tolist()


# =============================================================================== hooks
@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.train(training)


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward passes ``max(g, 0)``: with ReLU's own ``[x > 0]`` this is the guided rule."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.clamp(min=0)


@contextmanager
def _guided_relus(model: nn.Module) -> Iterator[int]:
    handles = [
        module.register_forward_hook(lambda _m, _i, out: _PositiveGradient.apply(out))
        for module in model.modules()
        if isinstance(module, nn.ReLU)
    ]
    try:
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _capture(layer: nn.Module, store: dict[str, Tensor]) -> Iterator[None]:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor):
            raise TypeError(f"layer output must be a torch.Tensor to explain it, got {type(output).__name__}")
        store["activation"] = output

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def vit_reshape_transform(
    height: int | None = None, width: int | None = None, prefix_tokens: int = 1
) -> Callable[[Tensor], Tensor]:
    """Tokens ``[N, prefix + H W, C]`` -> grid ``[N, C, H, W]``, dropping the class (prefix) tokens.

    ``height``/``width`` default to a square grid.
    """
    check_int("prefix_tokens", prefix_tokens, 0)

    def transform(tokens: Tensor) -> Tensor:
        if tokens.ndim != 3:
            raise ValueError(
                f"reshape_transform expects tokens [N, tokens, C], got shape {tuple(tokens.shape)}"
            )
        grid = tokens[:, prefix_tokens:]
        count = grid.shape[1]
        h, w = height, width
        if h is None and w is None:
            h = w = round(count**0.5)
        elif h is None:
            h = count // w  # type: ignore[operator]
        elif w is None:
            w = count // h
        if h * w != count:  # type: ignore[operator]
            raise ValueError(
                f"reshape_transform: {count} patch tokens do not form a {h}x{w} grid "
                f"(tokens shape {tuple(tokens.shape)}, prefix_tokens={prefix_tokens})"
            )
        return grid.reshape(grid.shape[0], h, w, grid.shape[2]).permute(0, 3, 1, 2)

    return transform


# =============================================================================== core passes
def _forward_backward(
    model: nn.Module,
    inputs: Tensor,
    target: Any,
    layer: nn.Module | None,
    guided: bool,
    input_gradient: bool,
) -> dict[str, Any]:
    store: dict[str, Tensor] = {}
    x = inputs.detach().clone().requires_grad_(True)
    with _eval_mode(model), torch.enable_grad():
        with _guided_relus(model) if guided else nullcontext():
            if layer is not None:
                with _capture(layer, store):
                    output = model(x)
            else:
                output = model(x)
        scores, record = _target_scores(output, target, inputs.shape[0])
        wrt: list[Tensor] = []
        if layer is not None:
            if "activation" not in store:
                raise ValueError(
                    "layer was not called during the forward pass of model; choose a layer on the path"
                )
            wrt.append(store["activation"])
        if input_gradient:
            wrt.append(x)
        if not scores.requires_grad:
            raise ValueError(
                "target does not depend on inputs differentiably (no gradient); check model and target"
            )
        grads = torch.autograd.grad(scores.sum(), wrt, allow_unused=True)
    result: dict[str, Any] = {"scores": scores.detach(), "target": record}
    position = 0
    if layer is not None:
        activation = store["activation"].detach()
        gradient = grads[0] if grads[0] is not None else torch.zeros_like(activation)
        result["activation"], result["layer_gradient"] = activation, gradient
        position = 1
    if input_gradient:
        g = grads[position]
        result["input_gradient"] = g if g is not None else torch.zeros_like(x)
    return result


def _cam(
    activation: Tensor, gradient: Tensor, counterfactual: bool, reshape_transform: Any
) -> tuple[Tensor, Tensor]:
    if reshape_transform is not None:
        activation, gradient = reshape_transform(activation), reshape_transform(gradient)
    if activation.ndim != 4:
        raise ValueError(
            f"layer output must be a feature map [N, K, h, w] (4 dims), got shape {tuple(activation.shape)}; "
            "pass reshape_transform for token outputs"
        )
    if counterfactual:  # Section 3, counterfactual explanations: negated gradients
        gradient = -gradient
    weights = gradient.mean(dim=(2, 3))  # Eq. 1: global average pooling of dy/dA over i, j
    cam = F.relu((weights[:, :, None, None] * activation).sum(dim=1))  # Eq. 2
    return cam, weights


def _upsample(cam: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(cam[:, None], size=size, mode=mode, **kwargs)[:, 0]


# =============================================================================== plotting
def _normalise(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _image(data: np.ndarray | None, index: int) -> np.ndarray | None:
    if data is None:
        return None
    image = np.asarray(data[index])
    image = np.moveaxis(image, 0, -1)  # [C, H, W] -> [H, W, C]
    if image.shape[-1] == 1:
        image = image[..., 0]
    elif image.shape[-1] != 3:
        image = image.mean(-1)
    return _normalise(image)


def _plot_heatmap(explanation: Explanation, ax: Any, index: int = 0) -> None:
    """The paper's Figure 1 kind: the map (scaled to [0, 1]) in a jet colour map over the image."""
    image = _image(explanation.data, index)
    values = np.asarray(explanation.values[index])
    if values.ndim == 3:  # guided maps are per colour channel: show them as an image
        ax.imshow(_normalise(np.moveaxis(values, 0, -1)))
    else:
        if image is not None:
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        ax.imshow(_normalise(values), cmap="jet", alpha=0.5 if image is not None else 1.0)
    target = explanation.extras.get("target")
    label = target[index] if isinstance(target, list) else target
    ax.set_title(f"{explanation.method} (target {label})")
    ax.set_axis_off()


# =============================================================================== public API
def grad_cam(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    target: Target,
    *,
    counterfactual: bool = False,
    reshape_transform: Callable[[Tensor], Tensor] | None = None,
    interpolate_mode: str = "bilinear",
) -> Explanation:
    """Grad-CAM maps ``[N, H, W]`` (Eq. 1-2) of ``target`` at ``layer``, upsampled to the inputs' size.

    ``target``: a class index (for every image), one index per image, or a callable taking the
    model's output and returning one differentiable scalar per image ``[N]``.
    ``extras``: ``target``, ``layer``, ``layer_map`` (the ``[N, h, w]`` map before upsampling),
    ``weights`` (``alpha``, ``[N, K]``), ``scores`` (``y^c``), ``counterfactual``.
    """
    model = _check_model(model)
    inputs = _check_inputs(inputs)
    module = _find_layer(model, layer)
    mode = _check_mode(interpolate_mode)
    if reshape_transform is not None and not callable(reshape_transform):
        raise TypeError(f"reshape_transform must be callable or None, got {type(reshape_transform).__name__}")
    passes = _forward_backward(model, inputs, target, module, guided=False, input_gradient=False)
    cam, weights = _cam(passes["activation"], passes["layer_gradient"], counterfactual, reshape_transform)
    upsampled = _upsample(cam, tuple(inputs.shape[-2:]), mode)
    return Explanation(
        values=upsampled,
        data=inputs,
        method="grad_cam_counterfactual" if counterfactual else "grad_cam",
        extras={
            "target": passes["target"],
            "layer": layer if isinstance(layer, str) else type(layer).__name__,
            "layer_map": cam.detach().cpu().numpy(),
            "weights": weights.detach().cpu().numpy(),
            "scores": passes["scores"].cpu().numpy(),
            "counterfactual": counterfactual,
        },
        plotter=_plot_heatmap,
    )


def guided_backprop(model: nn.Module, inputs: Tensor, target: Target) -> Explanation:
    """Guided Backpropagation ``[N, C, H, W]``: d target / d inputs with the guided ReLU rule."""
    model = _check_model(model)
    inputs = _check_inputs(inputs)
    passes = _forward_backward(model, inputs, target, None, guided=True, input_gradient=True)
    return Explanation(
        values=passes["input_gradient"],
        data=inputs,
        method="guided_backprop",
        extras={"target": passes["target"], "scores": passes["scores"].cpu().numpy()},
        plotter=_plot_heatmap,
    )


def guided_grad_cam(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    target: Target,
    *,
    counterfactual: bool = False,
    reshape_transform: Callable[[Tensor], Tensor] | None = None,
    interpolate_mode: str = "bilinear",
) -> Explanation:
    """Guided Grad-CAM ``[N, C, H, W]`` (Section 3): Guided Backpropagation times the upsampled Grad-CAM map.

    ``extras`` add ``grad_cam`` (the upsampled ``[N, H, W]`` map) to Grad-CAM's ``layer_map``,
    ``weights`` and ``scores``.
    """
    cam = grad_cam(
        model,
        inputs,
        layer,
        target,
        counterfactual=counterfactual,
        reshape_transform=reshape_transform,
        interpolate_mode=interpolate_mode,
    )
    guided = guided_backprop(model, inputs, target)
    values = guided.values * cam.values[:, None]
    extras = dict(cam.extras)
    extras["grad_cam"] = cam.values
    return Explanation(
        values=values,
        data=inputs,
        method="guided_grad_cam",
        extras=extras,
        plotter=_plot_heatmap,
    )
