"""Grad-CAM, Guided Backpropagation, Guided Grad-CAM: golden values, invariants, parity with captum
and pytorch_grad_cam, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.explain.gradcam import grad_cam, guided_backprop, guided_grad_cam, vit_reshape_transform

pytestmark = pytest.mark.paper("gradcam")

ATOL = 1e-5


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    return model.eval()


def images(n: int = 3, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# =============================================================================== golden values
class Squares(nn.Module):
    """y = sum of squares of the layer output: dy/dA = 2A, so alpha_k = 2 mean(A_k) (Eq. 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x)
        return (a**2).sum(dim=(1, 2, 3))[:, None].repeat(1, 2)


def test_golden_value_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [0.0, -1.0]]]])  # [1, 2, 2, 2]
    explanation = grad_cam(Squares(), x, "features", 0)
    # alpha_1 = 2 * 2.5 = 5, alpha_2 = 2 * (-0.5) = -1; map = ReLU(5 A_1 - A_2)
    expected = torch.tensor([[5.0 + 1.0, 10.0], [15.0, 20.0 + 1.0]])
    np.testing.assert_allclose(explanation.extras["weights"], [[5.0, -1.0]], atol=ATOL)
    np.testing.assert_allclose(explanation.extras["layer_map"][0], expected.numpy(), atol=ATOL)
    # same size as the input: upsampling is the identity
    np.testing.assert_allclose(explanation.values[0], expected.numpy(), atol=ATOL)
    # counterfactual: alpha negated -> ReLU(-5 A_1 + A_2) = 0 everywhere here
    counter = grad_cam(Squares(), x, "features", 0, counterfactual=True)
    np.testing.assert_allclose(counter.values, 0.0)
    np.testing.assert_allclose(counter.extras["weights"], [[-5.0, 1.0]], atol=ATOL)


def test_weights_are_the_spatial_mean_of_autograd_gradients():
    model, x = small_cnn(), images()
    explanation = grad_cam(model, x, "5", [0, 3, 4])
    store = {}
    handle = model[5].register_forward_hook(lambda m, i, o: store.update(a=o))
    out = model(x)
    handle.remove()
    y = out[torch.arange(3), torch.tensor([0, 3, 4])].sum()
    (grad,) = torch.autograd.grad(y, store["a"])
    np.testing.assert_allclose(explanation.extras["weights"], grad.mean((2, 3)).numpy(), atol=ATOL)
    cam = F.relu((grad.mean((2, 3))[:, :, None, None] * store["a"]).sum(1))
    np.testing.assert_allclose(explanation.extras["layer_map"], cam.detach().numpy(), atol=ATOL)
    assert explanation.values.shape == (3, 16, 16) and explanation.extras["layer_map"].shape == (3, 8, 8)
    assert explanation.extras["target"] == [0, 3, 4]


def test_zero_map_when_every_alpha_is_negative():
    # conv -> ReLU -> global average pool -> a linear head with negative weights for class 0: the
    # gradient at the ReLU output is spatially constant and negative, A >= 0, so ReLU(sum) = 0.
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    with torch.no_grad():
        model[4].weight[0] = -torch.rand(4) - 0.1
    explanation = grad_cam(model.eval(), images(), "1", 0)
    assert (explanation.extras["weights"] < 0).all()
    assert np.all(explanation.values == 0)
    # the counterfactual explanation of the same class is then positive somewhere
    assert grad_cam(model, images(), "1", 0, counterfactual=True).values.max() > 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.integers(0, 4), counterfactual=st.booleans())
def test_maps_are_non_negative(seed, target, counterfactual):
    x = images(2, 12, seed)
    explanation = grad_cam(small_cnn(seed % 3), x, "2", target, counterfactual=counterfactual)
    assert explanation.values.shape == (2, 12, 12)
    assert (explanation.values >= 0).all() and (explanation.extras["layer_map"] >= 0).all()


def test_model_unchanged_hooks_removed_and_mode_restored():
    model, x = small_cnn().train(), images()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.eval()
        reference = model(x)
        model.train()
    guided_grad_cam(model, x, "5", 1)
    grad_cam(model, x, "5", 1, counterfactual=True)
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), reference)


def test_hooks_removed_when_the_target_fails():
    model, x = small_cnn(), images()

    def broken(_output):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        guided_grad_cam(model, x, "5", broken)
    for module in model.modules():
        assert not module._forward_hooks
    model.train()
    with pytest.raises(ValueError, match="target must be class indices"):
        grad_cam(model, x, "5", 7)
    assert model.training


def test_callable_target_and_torch_no_grad_context():
    model, x = small_cnn(), images()
    by_index = grad_cam(model, x, "5", 2)
    with torch.no_grad():  # explaining works even when called under no_grad
        by_callable = grad_cam(model, x, model[5], lambda out: out.log_softmax(-1)[:, 2] + out.logsumexp(-1))
    np.testing.assert_allclose(by_callable.values, by_index.values, atol=ATOL)
    assert by_callable.extras["target"] == "callable"


def test_guided_backprop_is_the_guided_rule():
    # One hidden ReLU: d/dx w2 . ReLU(W1 x) under the guided rule = W1^T ([h > 0] * max(w2, 0)).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    x = images(1, 2, 3)
    hidden = model[1](x.flatten(1))
    w2 = model[3].weight[1]
    expected = ((hidden > 0).float() * w2.clamp(min=0)) @ model[1].weight
    values = guided_backprop(model, x, 1).values
    np.testing.assert_allclose(values.reshape(1, -1), expected.detach().numpy(), atol=ATOL)


def test_guided_grad_cam_is_the_product():
    model, x = small_cnn(), images()
    combined = guided_grad_cam(model, x, "5", 3)
    cam = grad_cam(model, x, "5", 3).values
    guided = guided_backprop(model, x, 3).values
    np.testing.assert_allclose(combined.values, guided * cam[:, None], atol=ATOL)
    assert combined.values.shape == (3, 3, 16, 16)


def test_plot_draws_heatmap_over_image():
    explanation = grad_cam(small_cnn(), images(), "5", 1)
    figure = explanation.plot()
    assert len(figure.axes[0].images) == 2  # the image and the heat map over it
    assert len(guided_grad_cam(small_cnn(), images(), "5", 1).plot().axes[0].images) == 1


# =============================================================================== reference parity
@pytest.mark.parity
@pytest.mark.parametrize("layer", ["2", "5", "6"])
def test_parity_with_captum_layer_gradcam(layer):
    from captum.attr import LayerAttribution, LayerGradCam

    model, x = small_cnn(), images()
    target = torch.tensor([0, 2, 4])
    ours = grad_cam(model, x, layer, target)
    reference = LayerGradCam(model, dict(model.named_modules())[layer]).attribute(
        x, target=target, relu_attributions=True
    )
    np.testing.assert_allclose(ours.extras["layer_map"], reference[:, 0].detach().numpy(), atol=ATOL)
    upsampled = LayerAttribution.interpolate(reference, (16, 16), "bilinear")
    np.testing.assert_allclose(ours.values, upsampled[:, 0].detach().numpy(), atol=ATOL)
    nearest = grad_cam(model, x, layer, target, interpolate_mode="nearest")
    np.testing.assert_allclose(
        nearest.values, LayerAttribution.interpolate(reference, (16, 16))[:, 0].detach().numpy(), atol=ATOL
    )


@pytest.mark.parity
def test_parity_with_captum_guided_backprop_and_guided_gradcam():
    from captum.attr import GuidedBackprop, GuidedGradCam

    model, x = small_cnn(), images()
    target = torch.tensor([1, 1, 3])
    ours = guided_backprop(model, x, target).values
    reference = GuidedBackprop(model).attribute(x, target=target).detach().numpy()
    np.testing.assert_allclose(ours, reference, atol=ATOL)
    assert np.abs(reference).max() > 0
    ours_combined = guided_grad_cam(model, x, "5", target).values
    reference_combined = (
        GuidedGradCam(model, model[5])
        .attribute(x, target=target, interpolate_mode="bilinear")
        .detach()
        .numpy()
    )
    np.testing.assert_allclose(ours_combined, reference_combined, atol=ATOL)


def _scale_to_unit(maps: np.ndarray) -> np.ndarray:
    # pytorch_grad_cam's scale_cam_image: per image, subtract the min and divide by (1e-7 + max).
    shifted = maps - maps.min(axis=(1, 2), keepdims=True)
    return shifted / (1e-7 + shifted.max(axis=(1, 2), keepdims=True))


@pytest.mark.parity
def test_parity_with_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x = small_cnn(), images()
    targets = [0, 2, 4]
    with GradCAM(model=model, target_layers=[model[5]]) as cam:
        reference = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    ours = grad_cam(model, x, "5", targets)
    # Normalisation difference: pytorch_grad_cam scales each layer-resolution map to [0, 1] before
    # resizing (cv2 bilinear) and again after; ours keeps raw units. Same scaling applied to ours:
    scaled = torch.from_numpy(_scale_to_unit(ours.extras["layer_map"]))
    ours_scaled = F.interpolate(scaled[:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(_scale_to_unit(ours_scaled.numpy()), reference, atol=ATOL)


class TinyViT(nn.Module):
    """Patch embedding, a class token, one token-mixing block and a mean-pooled head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.block = nn.Sequential(nn.Linear(8, 8), nn.GELU())
        self.mix = nn.Linear(17, 17)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # [N, 16, 8]
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self.block(tokens)
        tokens = self.mix(tokens.transpose(1, 2)).transpose(1, 2)
        return self.head(tokens[:, 0] + tokens.mean(1))


@pytest.mark.parity
def test_vision_transformer_reshape_matches_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x = TinyViT().eval(), images(2, 16)
    transform = vit_reshape_transform()
    ours = grad_cam(model, x, "block", [1, 2], reshape_transform=transform)
    assert ours.extras["layer_map"].shape == (2, 4, 4) and ours.values.shape == (2, 16, 16)
    with GradCAM(model=model, target_layers=[model.block], reshape_transform=transform) as cam:
        reference = cam(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
    scaled = torch.from_numpy(_scale_to_unit(ours.extras["layer_map"]))
    ours_scaled = F.interpolate(scaled[:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(_scale_to_unit(ours_scaled.numpy()), reference, atol=ATOL)


# =============================================================================== bad input
def test_missing_layer_names_the_available_ones():
    with pytest.raises(
        ValueError, match=r"layer 'conv9' is not a module of model; available layers: \['0', '1'"
    ):
        grad_cam(small_cnn(), images(), "conv9", 0)
    with pytest.raises(TypeError, match="layer must be a module name"):
        grad_cam(small_cnn(), images(), 3, 0)
    with pytest.raises(ValueError, match="layer must be a submodule of model"):
        grad_cam(small_cnn(), images(), nn.ReLU(), 0)


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (5, ValueError, r"target must be class indices in \[0, 5\), got \[5, 5, 5\]"),
        (-1, ValueError, r"target must be class indices in \[0, 5\)"),
        ([0, 1], ValueError, r"target must hold one class index per image \(3\), got 2"),
        (1.5, TypeError, "target must be an int, a sequence of ints, a tensor or a callable, got float"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "target must hold integer class indices"),
        (True, TypeError, "target must be an int"),
        (
            lambda out: out[:, :2],
            ValueError,
            r"target callable must return one scalar per image, shape \[3\]",
        ),
        (lambda out: 1.0, TypeError, "target callable must return a torch.Tensor, got float"),
    ],
)
def test_bad_target(target, error, message):
    for explain in (
        lambda t: grad_cam(small_cnn(), images(), "5", t),
        lambda t: guided_backprop(small_cnn(), images(), t),
    ):
        with pytest.raises(error, match=message):
            explain(target)


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        (
            torch.randn(3, 16, 16),
            ValueError,
            r"inputs must have shape \[N, C, H, W\] \(4 dims\), got shape \(3, 16, 16\)",
        ),
        (np.zeros((1, 3, 16, 16)), TypeError, "inputs must be a torch.Tensor of images"),
        (
            torch.zeros(1, 3, 16, 16, dtype=torch.long),
            TypeError,
            "inputs must be a floating-point tensor, got dtype torch.int64",
        ),
        (torch.zeros(0, 3, 16, 16), ValueError, "inputs must hold at least one image"),
    ],
)
def test_bad_inputs(inputs, error, message):
    with pytest.raises(error, match=message):
        grad_cam(small_cnn(), inputs, "5", 0)
    with pytest.raises(error, match=message):
        guided_grad_cam(small_cnn(), inputs, "5", 0)


def test_bad_model_mode_and_layer_output():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        grad_cam(lambda x: x, images(), "5", 0)
    with pytest.raises(ValueError, match="interpolate_mode must be one of"):
        grad_cam(small_cnn(), images(), "5", 0, interpolate_mode="cubic")
    with pytest.raises(TypeError, match="reshape_transform must be callable"):
        grad_cam(small_cnn(), images(), "5", 0, reshape_transform=3)
    with pytest.raises(ValueError, match=r"layer output must be a feature map \[N, K, h, w\]"):
        grad_cam(small_cnn(), images(), "8", 0)  # Flatten's output [N, 8]
    with pytest.raises(ValueError, match="a class-index target needs model outputs of shape"):
        grad_cam(nn.Sequential(nn.Identity()), images(), "0", 0)  # output [N, C, H, W], not [N, classes]
    with pytest.raises(ValueError, match="patch tokens do not form a 3x3 grid"):
        grad_cam(TinyViT().eval(), images(2, 16), "block", 0, reshape_transform=vit_reshape_transform(3, 3))
    with pytest.raises(ValueError, match="prefix_tokens must be >= 0, got -1"):
        vit_reshape_transform(prefix_tokens=-1)
