"""The three best networks of "Deep learning for time series classification: a review" (Ismail Fawaz,
Forestier, Weber, Idoumghar and Muller, DMKD 2019, arXiv 1809.04356): MLP, FCN and ResNet, as
proposed by Wang, Yan and Oates (IJCNN 2017) and trained by the review's protocol.

The review's taxonomy (Section 2, Figure 2) splits deep networks for time series classification into
*generative* models (auto-encoders, echo state networks: an unsupervised stage, then a classifier)
and *discriminative* ones, which either take hand-engineered features or learn *end to end* from the
raw series (MLP, CNN, hybrid). Its three best networks are all discriminative and end-to-end
(:data:`TAXONOMY`; :func:`build_classifier` builds one by name). The generative branch is not
implemented here: none of its members (TWIESN, Encoder's pre-training) is among the top three.

The networks, for an input ``x`` of shape ``[batch, channels, length]`` (Section 3.1):

* **MLP** (Section 3.1.1): ``x`` flattened, then three fully connected layers of 500 ReLU units, each
  preceded by dropout (rates 0.1, 0.2, 0.2) and a softmax layer preceded by dropout 0.3::

      h_0 = flatten(x),  h_i = ReLU(W_i dropout(h_{i-1}, p_i) + b_i),  i = 1, 2, 3    (Eq. 1 of the review)
      y = softmax(W_4 dropout(h_3, 0.3) + b_4)

* **FCN** (Section 3.1.2): three convolution blocks ``Conv1d -> BatchNorm -> ReLU`` with 128, 256 and
  128 filters of lengths 8, 5 and 3 (stride 1, zero "same" padding), global average pooling over time
  and a softmax layer::

      C = W * x + b,  s = BN(C),  h = ReLU(s)                                           (Eq. 4)

* **ResNet** (Section 3.1.3): three residual blocks of 64, 128 and 128 filters; each block is three
  convolution blocks (lengths 8, 5, 3; the last without its ReLU) added to a shortcut (a 1x1
  convolution and BatchNorm where the number of channels changes, BatchNorm alone where it does not),
  then ReLU; then global average pooling and a softmax layer.

Training (Section 4.1, Table 3 of the review, read with the authors' code, github.com/hfawaz/dl-4-tsc,
``classifiers/{mlp,fcn,resnet}.py``): categorical cross-entropy; mini-batches of
``min(floor(N_train / 10), batch_size)`` series, shuffled every epoch; the learning rate halved when the
epoch's training loss has not improved for ``patience`` epochs (Keras ``ReduceLROnPlateau`` on
``loss``); **the model kept is the one with the lowest training loss** (Keras ``ModelCheckpoint`` on
``loss``): the test set is never used to choose it.

==========  ===========  =========  ======  ========  =======================================
network     optimiser    lr         epochs  batch     learning-rate schedule (on train loss)
==========  ===========  =========  ======  ========  =======================================
MLP         Adadelta     1.0        5000    16        x0.5 after 200 flat epochs, floor 0.1
FCN         Adam         0.001      2000    16        x0.5 after 50 flat epochs, floor 1e-4
ResNet      Adam         0.001      1500    64        x0.5 after 50 flat epochs, floor 1e-4
==========  ===========  =========  ======  ========  =======================================

Keras's defaults, which the authors' code inherits, are reproduced: Glorot-uniform weights and zero
biases in every dense and convolution layer, BatchNorm momentum 0.99 (PyTorch's 0.01) and epsilon
1e-3, Adam and Adadelta epsilon 1e-7, Adadelta rho 0.95.

Departures, and why:

* MLP's learning rate: the code calls ``keras.optimizers.Adadelta()``, whose default learning rate is
  1.0, with a floor of 0.1 for the plateau schedule; Table 3 of the review is reported to list 0.1.
  We use the code's 1.0 (what produced the published numbers); ``ReviewTraining.learning_rate``
  changes it.
* ResNet's batch size is the code's 64 (Table 3's value could not be checked here).
* Keras reduces the learning rate after ``patience`` epochs without improvement of more than 1e-4;
  :class:`KerasPlateau` does the same (PyTorch's scheduler waits one epoch longer).
* Keras's epoch loss (used for the schedule and the checkpoint) is the mean of the mini-batch losses
  weighted by batch size, in training mode (dropout on, BatchNorm on batch statistics); so is ours.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_probability, check_tensor

__all__ = [
    "FCN",
    "MLP",
    "NETWORKS",
    "REVIEW_TRAINING",
    "TAXONOMY",
    "KerasPlateau",
    "ResNet",
    "ReviewTraining",
    "TrainingOutcome",
    "build_classifier",
    "mini_batch_size",
    "predict",
    "set_batchnorm_momentum",
    "train_classifier",
    "with_epochs",
]

# The review's taxonomy (Figure 2), restricted to what this module implements.
TAXONOMY: dict[str, tuple[str, ...]] = {
    "mlp": ("discriminative", "end-to-end", "multi-layer perceptron"),
    "fcn": ("discriminative", "end-to-end", "convolutional neural network"),
    "resnet": ("discriminative", "end-to-end", "convolutional neural network"),
}
NETWORKS: tuple[str, ...] = tuple(TAXONOMY)

# Keras's BatchNormalization: momentum 0.99 for the running statistics (PyTorch counts the other way).
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3


def _keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases: Keras's defaults for Dense and Conv1D layers."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _check_input(x: Tensor, channels: int, length: int | None) -> None:
    check_tensor("x", x, dim=3, floating=True, note="[batch, channels, length]")
    if x.shape[1] != channels:
        raise ValueError(f"x must have {channels} channels (dimension 1), got shape {tuple(x.shape)}")
    if length is not None and x.shape[2] != length:
        raise ValueError(
            f"x must have length {length} (dimension 2; the MLP is fixed-size), got {tuple(x.shape)}"
        )


class MLP(nn.Module):
    """Wang et al.'s MLP: dropout 0.1 -> 500 ReLU -> dropout 0.2 -> 500 ReLU -> dropout 0.2 -> 500 ReLU
    -> dropout 0.3 -> linear (Eq. 1). Input ``[batch, channels, length]``, output logits."""

    def __init__(
        self,
        in_channels: int,
        length: int,
        num_classes: int,
        hidden: int = 500,
        dropouts: tuple[float, float, float, float] = (0.1, 0.2, 0.2, 0.3),
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.length = check_int("length", length)
        check_int("num_classes", num_classes, 2)
        check_int("hidden", hidden)
        if not isinstance(dropouts, (tuple, list)) or len(dropouts) != 4:
            raise ValueError(
                f"dropouts must be 4 rates (before each of the 4 dense layers), got {dropouts!r}"
            )
        for i, rate in enumerate(dropouts):
            check_probability(f"dropouts[{i}]", rate, allow_one=False)
        widths = [in_channels * length, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Dropout(dropouts[i]), nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropouts[3]), nn.Linear(hidden, num_classes))
        _keras_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self.length)
        return self.classifier(self.features(x.flatten(1)))


class ConvBlock(nn.Module):
    """``Conv1d(kernel, 'same') -> BatchNorm -> ReLU`` (Eq. 4); ``activation=False`` drops the ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same")
        self.norm = nn.BatchNorm1d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.activation = nn.ReLU() if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.norm(self.conv(x)))


class FCN(nn.Module):
    """Wang et al.'s fully convolutional network: conv blocks of 128, 256, 128 filters (lengths 8, 5,
    3), global average pooling over time, linear. Input ``[batch, channels, length]`` of any length."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        filters: tuple[int, ...] = (128, 256, 128),
        kernel_sizes: tuple[int, ...] = (8, 5, 3),
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        check_int("num_classes", num_classes, 2)
        if len(filters) != len(kernel_sizes) or not filters:
            raise ValueError(
                f"filters and kernel_sizes must be non-empty and of one length, got {filters}, {kernel_sizes}"
            )
        widths = (in_channels, *filters)
        self.blocks = nn.Sequential(
            *[
                ConvBlock(widths[i], widths[i + 1], check_int("kernel_size", k))
                for i, k in enumerate(kernel_sizes)
            ]
        )
        self.classifier = nn.Linear(filters[-1], num_classes)
        _keras_init(self)

    def features(self, x: Tensor) -> Tensor:
        """The last convolution block's output ``[batch, filters, length]`` (its GAP is the feature)."""
        _check_input(x, self.in_channels, None)
        return self.blocks(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).mean(dim=2))


class ResidualBlock(nn.Module):
    """Three convolution blocks (lengths 8, 5, 3; no ReLU after the third) plus a shortcut, then ReLU.
    The shortcut is a 1x1 convolution + BatchNorm when the width changes and BatchNorm alone when it
    does not (the review's code); ``shortcut=False`` removes it (a plain 9-layer CNN, for ablations)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: tuple[int, int, int] = (8, 5, 3),
        shortcut: bool = True,
    ):
        super().__init__()
        k1, k2, k3 = kernel_sizes
        self.body = nn.Sequential(
            ConvBlock(in_channels, out_channels, k1),
            ConvBlock(out_channels, out_channels, k2),
            ConvBlock(out_channels, out_channels, k3, activation=False),
        )
        self.shortcut: nn.Module | None
        if not shortcut:
            self.shortcut = None
        elif in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1),
                nn.BatchNorm1d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM),
            )
        else:
            self.shortcut = nn.BatchNorm1d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return torch.relu(out)


class ResNet(nn.Module):
    """Wang et al.'s ResNet: residual blocks of 64, 128, 128 filters, global average pooling over time,
    linear. Input ``[batch, channels, length]`` of any length."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        filters: tuple[int, ...] = (64, 128, 128),
        kernel_sizes: tuple[int, int, int] = (8, 5, 3),
        shortcut: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        check_int("num_classes", num_classes, 2)
        if not filters or len(kernel_sizes) != 3:
            raise ValueError(
                f"filters must be non-empty and kernel_sizes 3 lengths, got {filters}, {kernel_sizes}"
            )
        widths = (in_channels, *filters)
        self.blocks = nn.Sequential(
            *[ResidualBlock(widths[i], widths[i + 1], kernel_sizes, shortcut) for i in range(len(filters))]
        )
        self.classifier = nn.Linear(filters[-1], num_classes)
        _keras_init(self)

    def features(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, None)
        return self.blocks(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).mean(dim=2))


def set_batchnorm_momentum(model: nn.Module, momentum: float) -> nn.Module:
    """Set every BatchNorm layer's running-statistics momentum (PyTorch's convention: the weight of the
    new batch). The review's 0.01 needs thousands of steps to forget the initial statistics; short
    runs use a larger one. Returns ``model``."""
    check_float("momentum", momentum, 0, 1, min_inclusive=False)
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = momentum
    return model


def build_classifier(name: str, in_channels: int, length: int, num_classes: int) -> nn.Module:
    """One of the review's top networks by name (``mlp``, ``fcn``, ``resnet``: :data:`TAXONOMY`)."""
    check_choice("name", name, NETWORKS)
    if name == "mlp":
        return MLP(in_channels, length, num_classes)
    if name == "fcn":
        return FCN(in_channels, num_classes)
    return ResNet(in_channels, num_classes)


@dataclass(frozen=True)
class ReviewTraining:
    """One network's training settings (Table 3 of the review and its code)."""

    optimizer: str
    """``adam`` or ``adadelta``."""
    learning_rate: float
    epochs: int
    batch_size: int
    """Upper bound of the mini-batch; the batch is ``min(floor(N / 10), batch_size)``."""
    plateau_patience: int
    """Epochs without improvement of the training loss before the learning rate is halved."""
    min_learning_rate: float
    plateau_factor: float = 0.5
    plateau_min_delta: float = 1e-4
    """Keras's default: an improvement must exceed this (absolute) to reset the patience."""

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, ("adam", "adadelta"))
        check_float("learning_rate", self.learning_rate, 0, min_inclusive=False, finite=True)
        check_int("epochs", self.epochs, 0)
        check_int("batch_size", self.batch_size)
        check_int("plateau_patience", self.plateau_patience)
        check_float("min_learning_rate", self.min_learning_rate, 0, finite=True)
        check_float("plateau_factor", self.plateau_factor, 0, 1, min_inclusive=False, max_inclusive=False)
        check_float("plateau_min_delta", self.plateau_min_delta, 0, finite=True)


REVIEW_TRAINING: dict[str, ReviewTraining] = {
    "mlp": ReviewTraining("adadelta", 1.0, 5000, 16, 200, 0.1),
    "fcn": ReviewTraining("adam", 1e-3, 2000, 16, 50, 1e-4),
    "resnet": ReviewTraining("adam", 1e-3, 1500, 64, 50, 1e-4),
}


def mini_batch_size(num_train: int, batch_size: int) -> int:
    """``int(min(N / 10, batch_size))`` as the review's code computes it (at least 1)."""
    check_int("num_train", num_train)
    check_int("batch_size", batch_size)
    return max(1, int(min(num_train / 10, batch_size)))


class KerasPlateau:
    """Keras's ``ReduceLROnPlateau(monitor='loss', mode='min', cooldown=0)``: after ``patience`` epochs
    without an improvement larger than ``min_delta`` the learning rate is multiplied by ``factor``
    (never below ``min_lr``) and the count restarts."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, factor: float, patience: int, min_lr: float, min_delta: float
    ):
        self.optimizer, self.factor, self.patience = optimizer, factor, patience
        self.min_lr, self.min_delta = min_lr, min_delta
        self.best = math.inf
        self.wait = 0

    def step(self, loss: float) -> None:
        if loss < self.best - self.min_delta:
            self.best, self.wait = loss, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in self.optimizer.param_groups:
                old = group["lr"]
                # Keras compares with a small tolerance so a rate at its floor stays there.
                if old > self.min_lr * (1 + 1e-7):
                    group["lr"] = max(old * self.factor, self.min_lr)
            self.wait = 0


@dataclass
class TrainingOutcome:
    """What :func:`train_classifier` returns: the kept model (lowest training loss) and its history."""

    model: nn.Module
    best_epoch: int
    """1-based epoch of the kept model (0: untrained, when ``epochs`` is 0)."""
    train_loss: list[float]
    learning_rate: list[float]


def _optimizer(model: nn.Module, settings: ReviewTraining) -> torch.optim.Optimizer:
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate, eps=1e-7)
    return torch.optim.Adadelta(model.parameters(), lr=settings.learning_rate, rho=0.95, eps=1e-7)


def train_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    settings: ReviewTraining,
    *,
    generator: torch.Generator | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainingOutcome:
    """Train ``model`` on ``x`` ``[N, channels, length]`` and integer labels ``y`` ``[N]`` by the review's
    protocol (module docstring) and return the model of lowest epoch training loss.

    ``generator`` draws the epoch shuffles (pass a seeded one for repeatable runs; the global RNG
    otherwise). The returned model is a copy in eval mode; ``model`` itself ends at the last epoch.
    """
    check_tensor("x", x, dim=3, floating=True, note="[N, channels, length]")
    check_tensor("y", y, dim=1, dtype=torch.long)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of series, got {x.shape[0]} and {y.shape[0]}")
    if not isinstance(settings, ReviewTraining):
        raise TypeError(f"settings must be a ReviewTraining, got {type(settings).__name__}")
    n = x.shape[0]
    batch = mini_batch_size(n, settings.batch_size)
    optimizer = _optimizer(model, settings)
    plateau = KerasPlateau(
        optimizer,
        settings.plateau_factor,
        settings.plateau_patience,
        settings.min_learning_rate,
        settings.plateau_min_delta,
    )
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    best_loss, best_epoch = math.inf, 0
    best_state = copy.deepcopy(model.state_dict())
    losses: list[float] = []
    rates: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(x.device)
        total = torch.zeros((), device=x.device)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            (loss / index.numel()).backward()
            optimizer.step()
            total += loss.detach()
        epoch_loss = float(total) / n
        losses.append(epoch_loss)
        rates.append(optimizer.param_groups[0]["lr"])
        # Keras's ModelCheckpoint(monitor='loss', save_best_only=True): keep the lowest training loss.
        if epoch_loss < best_loss:
            best_loss, best_epoch = epoch_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        plateau.step(epoch_loss)
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss)
    kept = copy.deepcopy(model)
    kept.load_state_dict(best_state)
    kept.eval()
    return TrainingOutcome(kept, best_epoch, losses, rates)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """Class indices ``[N]`` predicted by ``model`` (in eval mode) for ``x`` ``[N, channels, length]``."""
    check_tensor("x", x, dim=3, floating=True, note="[N, channels, length]")
    check_int("batch_size", batch_size)
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, x.shape[0], batch_size)])


def with_epochs(settings: ReviewTraining, epochs: int) -> ReviewTraining:
    """``settings`` with another number of epochs (quick runs)."""
    return replace(settings, epochs=check_int("epochs", epochs, 0))
