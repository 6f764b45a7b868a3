"""PointNet: the symmetric function (Eq. 1) makes it invariant to the order of points, the T-nets start
as the identity, the regulariser (Eq. 2) vanishes on orthogonal matrices; a hand-computed forward pass;
bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.vision.pointnet import PointNetClassifier, TransformNet, orthogonality_loss

pytestmark = pytest.mark.paper("shapenet")


def _clouds(batch=4, points=32, seed=0):
    return torch.randn(batch, points, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pooling", ["max", "mean"])
@pytest.mark.parametrize("transforms", [(False, False), (True, False), (True, True)])
def test_symmetric_pooling_is_invariant_to_point_order(pooling, transforms):
    torch.manual_seed(0)
    model = PointNetClassifier(
        5,
        widths=(16, 16, 32, 64),
        head=(32, 16),
        pooling=pooling,
        input_transform=transforms[0],
        feature_transform=transforms[1],
    ).eval()
    x = _clouds()
    permutation = torch.randperm(x.shape[1])
    torch.testing.assert_close(model(x), model(x[:, permutation]), atol=1e-5, rtol=0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), points=st.integers(2, 40))
def test_max_pool_invariance_over_many_inputs(seed, points):
    torch.manual_seed(1)
    model = PointNetClassifier(3, widths=(8, 8, 16), head=(8,)).eval()
    x = _clouds(2, points, seed)
    permutation = torch.randperm(points, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(model(x), model(x[:, permutation]), atol=1e-5, rtol=0)


def test_flatten_ablation_depends_on_point_order():
    torch.manual_seed(0)
    model = PointNetClassifier(4, widths=(8, 16), head=(16,), pooling="flatten", num_points=10).eval()
    x = _clouds(2, 10)
    assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-4)


def test_transform_nets_start_as_the_identity():
    tnet = TransformNet(3, (8, 16, 32), (16, 8)).eval()
    torch.testing.assert_close(tnet(_clouds()), torch.eye(3).expand(4, 3, 3))
    model = PointNetClassifier(4, widths=(8, 8, 16, 32), head=(16,), feature_transform=True).eval()
    logits, (input_matrix, feature_matrix) = model(_clouds(), return_transforms=True)
    assert logits.shape == (4, 4)
    torch.testing.assert_close(input_matrix, torch.eye(3).expand(4, 3, 3))
    torch.testing.assert_close(feature_matrix, torch.eye(8).expand(4, 8, 8))
    _, (none_in, none_feature) = PointNetClassifier(3, input_transform=False, widths=(8, 16), head=(8,))(
        _clouds(), return_transforms=True
    )
    assert none_in is None and none_feature is None


def test_orthogonality_loss_golden_values():
    rotation, _ = torch.linalg.qr(torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(0)))
    assert orthogonality_loss(rotation).item() == pytest.approx(0.0, abs=1e-10)
    # A = 2 I: I - 4 I = -3 I, squared Frobenius norm 9 k
    assert orthogonality_loss(2 * torch.eye(4).expand(2, 4, 4)).item() == pytest.approx(36.0)
    # a batch mean: one orthogonal matrix (0) and one 2 I (9 * 3 = 27)
    batch = torch.stack([torch.eye(3), 2 * torch.eye(3)])
    assert orthogonality_loss(batch).item() == pytest.approx(13.5)


def test_forward_matches_a_hand_computed_pointnet():
    """Without batch norm, dropout and T-nets, Eq. (1) is relu layers, a max and linear layers."""
    torch.manual_seed(2)
    model = PointNetClassifier(
        3, widths=(4, 6), split=1, head=(5,), dropout=0.0, input_transform=False, batch_norm=False
    ).eval()
    x = _clouds(2, 7)
    w1, w2 = model.local.layers[0], model.global_mlp.layers[0]
    h = torch.relu(torch.relu(x @ w1.weight.T + w1.bias) @ w2.weight.T + w2.bias)
    pooled = h.max(dim=1).values
    fc1, fc2 = model.classifier[0], model.classifier[-1]
    expected = torch.relu(pooled @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias
    torch.testing.assert_close(model(x), expected)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = PointNetClassifier(3, widths=(8, 8, 16), head=(8,), feature_transform=True)
    logits, (_, feature_matrix) = model(_clouds(), return_transforms=True)
    (logits.square().sum() + orthogonality_loss(feature_matrix)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_bad_input_is_rejected():
    model = PointNetClassifier(3, widths=(8, 16), head=(8,))
    with pytest.raises(ValueError, match="points must be a 3-D tensor"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"points must be \[batch, points, 3\]"):
        model(torch.zeros(2, 5, 4))
    with pytest.raises(TypeError, match="points must be a floating-point tensor"):
        model(torch.zeros(2, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        PointNetClassifier(1)
    with pytest.raises(ValueError, match="pooling must be one of"):
        PointNetClassifier(3, pooling="sum")
    with pytest.raises(TypeError, match="num_points must be an int"):
        PointNetClassifier(3, pooling="flatten")
    with pytest.raises(ValueError, match="dropout must be a probability"):
        PointNetClassifier(3, dropout=1.0)
    with pytest.raises(ValueError, match="widths must be a non-empty sequence"):
        PointNetClassifier(3, widths=())
    with pytest.raises(ValueError, match="split must be in"):
        PointNetClassifier(3, widths=(8, 16), split=3)
    flat = PointNetClassifier(3, widths=(8, 16), head=(8,), pooling="flatten", num_points=10)
    with pytest.raises(ValueError, match="must have 10 points per cloud"):
        flat(torch.zeros(2, 9, 3))
    with pytest.raises(ValueError, match=r"matrix must be square"):
        orthogonality_loss(torch.zeros(2, 3, 4))
