"""The review's MLP, FCN and ResNet: shapes, parameter counts by hand, Keras conventions, the training
protocol (batch size, plateau schedule, model kept) and bad input.

No reference parity: the authors' networks are Keras models and neither TensorFlow nor Keras is
installed (aeon's deep classifiers need them too); the Keras conventions are tested one by one below.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from aicanon.timeseries.tsc import (
    FCN,
    MLP,
    NETWORKS,
    REVIEW_TRAINING,
    TAXONOMY,
    KerasPlateau,
    ResNet,
    ReviewTraining,
    build_classifier,
    mini_batch_size,
    predict,
    set_batchnorm_momentum,
    train_classifier,
    with_epochs,
)

pytestmark = pytest.mark.paper("tsc-review")


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_output_shapes_univariate_and_multivariate():
    torch.manual_seed(0)
    for channels, length in ((1, 150), (12, 29)):
        x = torch.randn(4, channels, length)
        for name in NETWORKS:
            model = build_classifier(name, channels, length, 9).eval()
            assert model(x).shape == (4, 9)
    # The convolutional networks take any length (global average pooling); the MLP is fixed-size.
    assert FCN(1, 3).eval()(torch.randn(2, 1, 37)).shape == (2, 3)
    assert ResNet(1, 3).eval()(torch.randn(2, 1, 5)).shape == (2, 3)


def test_parameter_counts_by_hand():
    # MLP, 1 x 150 input, 2 classes: 150*500+500 + 2*(500*500+500) + 500*2+2.
    assert _trainable(MLP(1, 150, 2)) == 75_500 + 2 * 250_500 + 1_002
    # FCN: conv 1->128 k8, 128->256 k5, 256->128 k3 (+ biases), BN gamma/beta, dense 128->2.
    fcn = 128 * 8 + 128 + 256 + 128 * 256 * 5 + 256 + 512 + 256 * 128 * 3 + 128 + 256 + 128 * 2 + 2
    assert _trainable(FCN(1, 2)) == fcn
    # ResNet: three blocks; the shortcut is conv1x1 + BN when the width changes, BN alone otherwise.
    block1 = (1 * 64 * 8 + 64 * 64 * 5 + 64 * 64 * 3 + 3 * 64) + 3 * 128 + (1 * 64 + 64 + 128)
    block2 = (64 * 128 * 8 + 128 * 128 * 5 + 128 * 128 * 3 + 3 * 128) + 3 * 256 + (64 * 128 + 128 + 256)
    block3 = (128 * 128 * 8 + 128 * 128 * 5 + 128 * 128 * 3 + 3 * 128) + 3 * 256 + 256
    assert _trainable(ResNet(1, 2)) == block1 + block2 + block3 + 128 * 2 + 2


def test_structure_follows_wang_et_al():
    mlp = MLP(1, 10, 2)
    rates = [m.p for m in mlp.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.1, 0.2, 0.2, 0.3]
    fcn = FCN(1, 2)
    assert [b.conv.kernel_size[0] for b in fcn.blocks] == [8, 5, 3]
    assert [b.conv.out_channels for b in fcn.blocks] == [128, 256, 128]
    resnet = ResNet(1, 2)
    assert [b.body[0].conv.out_channels for b in resnet.blocks] == [64, 128, 128]
    assert isinstance(resnet.blocks[0].shortcut, torch.nn.Sequential)
    assert isinstance(resnet.blocks[2].shortcut, torch.nn.BatchNorm1d)
    assert isinstance(resnet.blocks[2].body[2].activation, torch.nn.Identity)  # no ReLU before the sum
    assert ResNet(1, 2, shortcut=False).blocks[0].shortcut is None
    assert TAXONOMY["resnet"] == ("discriminative", "end-to-end", "convolutional neural network")


def test_keras_conventions():
    torch.manual_seed(0)
    fcn = FCN(1, 2)
    conv = fcn.blocks[1].conv
    bound = math.sqrt(6 / (128 * 5 + 256 * 5))  # Glorot uniform: fan_in = 128*5, fan_out = 256*5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert torch.all(conv.bias == 0)
    norm = fcn.blocks[0].norm
    assert (norm.momentum, norm.eps) == (0.01, 1e-3)  # Keras momentum 0.99, epsilon 1e-3
    # 'same' padding with an even kernel pads 3 on the left and 4 on the right, as TensorFlow does.
    x = torch.randn(1, 1, 20)
    expected = F.conv1d(F.pad(x, (3, 4)), fcn.blocks[0].conv.weight, fcn.blocks[0].conv.bias)
    assert torch.allclose(fcn.blocks[0].conv(x), expected, atol=1e-6)
    set_batchnorm_momentum(fcn, 0.1)
    assert all(b.norm.momentum == 0.1 for b in fcn.blocks)


def test_review_training_settings():
    assert REVIEW_TRAINING["mlp"] == ReviewTraining("adadelta", 1.0, 5000, 16, 200, 0.1)
    assert REVIEW_TRAINING["fcn"] == ReviewTraining("adam", 1e-3, 2000, 16, 50, 1e-4)
    assert REVIEW_TRAINING["resnet"] == ReviewTraining("adam", 1e-3, 1500, 64, 50, 1e-4)
    assert with_epochs(REVIEW_TRAINING["fcn"], 20).epochs == 20
    # int(min(N / 10, batch)): GunPoint (50) -> 5, ItalyPowerDemand (67) -> 6, OSULeaf (200) -> 16 or 20.
    assert mini_batch_size(50, 16) == 5
    assert mini_batch_size(67, 16) == 6
    assert mini_batch_size(200, 16) == 16 and mini_batch_size(200, 64) == 20
    assert mini_batch_size(3, 16) == 1


def test_keras_plateau_halves_after_patience_and_stops_at_the_floor():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    plateau = KerasPlateau(optimizer, factor=0.5, patience=2, min_lr=0.3, min_delta=1e-4)
    rates = []
    for loss in [1.0, 0.99995, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]:
        plateau.step(loss)
        rates.append(optimizer.param_groups[0]["lr"])
    # 0.99995 is not an improvement (min_delta); two flat epochs halve; the floor 0.3 holds.
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3]


def _toy(n=40, length=16, seed=0):
    """Two classes: a bump early or late in the series."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.1 * torch.randn(n, 1, length, generator=gen)
    x[y == 0, 0, 2:5] += 2.0
    x[y == 1, 0, 10:13] += 2.0
    return x, y


def test_training_keeps_the_model_of_lowest_training_loss():
    x, y = _toy()
    torch.manual_seed(0)
    model = FCN(1, 2, filters=(8, 8, 8))
    outcome = train_classifier(
        model, x, y, with_epochs(REVIEW_TRAINING["fcn"], 15), generator=torch.Generator().manual_seed(0)
    )
    assert outcome.best_epoch == 1 + min(range(15), key=lambda i: outcome.train_loss[i])
    assert len(outcome.train_loss) == len(outcome.learning_rate) == 15
    assert not outcome.model.training
    assert (predict(outcome.model, x) == y).float().mean() == 1.0
    untouched = train_classifier(FCN(1, 2, filters=(8, 8, 8)), x, y, with_epochs(REVIEW_TRAINING["fcn"], 0))
    assert untouched.best_epoch == 0 and untouched.train_loss == []


def test_training_is_repeatable_with_a_seeded_generator():
    x, y = _toy()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = MLP(1, 16, 2)
        outcome = train_classifier(
            model, x, y, with_epochs(REVIEW_TRAINING["mlp"], 5), generator=torch.Generator().manual_seed(1)
        )
        runs.append(outcome.train_loss)
    assert runs[0] == runs[1]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="name must be one of"):
        build_classifier("lstm", 1, 10, 2)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        FCN(1, 1)
    with pytest.raises(TypeError, match="in_channels must be an int"):
        ResNet(1.5, 2)
    with pytest.raises(ValueError, match="dropouts"):
        MLP(1, 10, 2, dropouts=(0.1, 0.2))
    with pytest.raises(ValueError, match=r"dropouts\[3\] must be a probability"):
        MLP(1, 10, 2, dropouts=(0.1, 0.2, 0.2, 1.0))
    with pytest.raises(ValueError, match="x must be a 3-D tensor"):
        FCN(1, 2)(torch.randn(2, 10))
    with pytest.raises(ValueError, match="x must have 1 channels"):
        FCN(1, 2)(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="x must have length 10"):
        MLP(1, 10, 2)(torch.randn(2, 1, 11))
    with pytest.raises(TypeError, match="floating-point"):
        FCN(1, 2)(torch.ones(2, 1, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        ReviewTraining("sgd", 0.1, 10, 16, 5, 0.0)
    with pytest.raises(ValueError, match="learning_rate must be"):
        ReviewTraining("adam", 0.0, 10, 16, 5, 0.0)
    x, y = _toy()
    with pytest.raises(ValueError, match="same number of series"):
        train_classifier(FCN(1, 2), x, y[:-1], REVIEW_TRAINING["fcn"])
    with pytest.raises(TypeError, match="y must be a torch.int64"):
        train_classifier(FCN(1, 2), x, y.float(), REVIEW_TRAINING["fcn"])
    with pytest.raises(TypeError, match="settings must be a ReviewTraining"):
        train_classifier(FCN(1, 2), x, y, {"epochs": 1})
    with pytest.raises(ValueError, match="momentum"):
        set_batchnorm_momentum(FCN(1, 2), 0.0)
