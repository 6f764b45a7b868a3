"""An independent digit classifier that judges generated images: fidelity, and features for
precision/recall and the Fréchet distance (the generative papers' sample metrics on a CPU).

The diffusion experiments generate digits (scikit-learn's 8×8 digits, MNIST, Fashion-MNIST). A model
that never saw the generator's training loop is trained here on the real training split and asked:

* fidelity: the share of samples it assigns to the requested class (``accuracy``) and its mean
  probability of that class (``confidence``): the "classifier accuracy" guidance papers trade
  against diversity;
* features (its penultimate layer) for :func:`aicanon.generative.sample_metrics.precision_recall`
  and :func:`~aicanon.generative.sample_metrics.frechet_distance`; computed here on a small network, so
  the Fréchet distance is "FD on the judge's features", not FID.

Images are given as the diffusion models produce them: ``[N, 1, H, W]`` in [−1, 1] at the dataset's
size (8 for ``digits8``, 28 for MNIST and Fashion-MNIST). The judge is trained deterministically
from its config and cached by the config's hash under ``results_dir()/_cache/digit_judge`` (the
MNIST ones take ~20 s to train on two cores; the 8×8 one ~2 s).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checkpoint import load_checkpoint, save_checkpoint
from aicanon.core.checks import check_choice, check_int, check_tensor
from aicanon.core.results import results_dir
from aicanon.datasets.digits import load_digits_split
from aicanon.datasets.mnist import load_fashion_mnist, load_mnist

__all__ = ["DATASETS", "DigitJudge", "JudgeConfig", "digit_images", "digit_judge"]

DATASETS = ("digits8", "mnist", "fashion-mnist")


@dataclass(frozen=True)
class JudgeConfig:
    """``dataset``, training ``epochs``, ``batch_size``, ``lr`` and ``seed`` of the judge."""

    dataset: str = "digits8"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        check_int("seed", self.seed, 0)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def digit_images(dataset: str, split: str) -> tuple[Tensor, Tensor]:
    """Images ``[N, 1, H, W]`` in [−1, 1] and labels of ``dataset``'s ``split`` (``"train"``/``"test"``;
    the 8×8 digits use a fixed stratified 75/25 split)."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("split", split, ("train", "test"))
    if dataset == "digits8":
        data = load_digits_split(test_fraction=0.25, seed=0, as_images=True)
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        return x * 2 - 1, y
    images, labels = (load_mnist if dataset == "mnist" else load_fashion_mnist)(split)
    return images.unsqueeze(1).float().div(127.5).sub(1), labels.long()


class _Net(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        if size == 8:
            self.body = nn.Sequential(
                nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()
            )
        else:
            self.body = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(),
            )  # fmt: skip
        self.head = nn.Linear(128, 10)


class DigitJudge:
    """A trained classifier with :meth:`fidelity` and :meth:`features` (module docstring)."""

    def __init__(self, net: _Net, size: int, test_accuracy: float) -> None:
        self.net, self.size, self.test_accuracy = net.eval(), size, test_accuracy

    def _check(self, images: Tensor) -> Tensor:
        check_tensor("images", images, shape=(None, 1, self.size, self.size), floating=True)
        return images.float()

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 512) -> Tensor:
        """Penultimate-layer features ``[N, 128]``."""
        images = self._check(images)
        return torch.cat(
            [self.net.body(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        )

    @torch.no_grad()
    def probabilities(self, images: Tensor) -> Tensor:
        return self.net.head(self.features(images)).softmax(-1)

    def fidelity(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """``accuracy``: share classified as ``labels``; ``confidence``: mean probability of them."""
        check_tensor("labels", labels, shape=(images.shape[0],), dtype=(torch.long, torch.int))
        probabilities = self.probabilities(images)
        chosen = probabilities.gather(1, labels.long()[:, None]).squeeze(1)
        return {
            "accuracy": (probabilities.argmax(-1) == labels).float().mean().item(),
            "confidence": chosen.mean().item(),
        }


def _train(cfg: JudgeConfig) -> tuple[_Net, int, float]:
    x, y = digit_images(cfg.dataset, "train")
    x_test, y_test = digit_images(cfg.dataset, "test")
    size = x.shape[-1]
    torch.manual_seed(cfg.seed)
    net = _Net(size)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            batch = x[index]
            if size > 8:  # one-pixel shifts: robust to slightly off-centre samples (too coarse at 8x8)
                shifts = tuple(torch.randint(-1, 2, (2,), generator=generator).tolist())
                batch = torch.roll(batch, shifts=shifts, dims=(2, 3))
            loss = F.cross_entropy(net.head(net.body(batch)), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net.head(net.body(x_test)).argmax(-1) == y_test).float().mean().item()
    return net, size, accuracy


def digit_judge(cfg: JudgeConfig | str = "digits8", cache: str | Path | None = None) -> DigitJudge:
    """The judge of ``cfg`` (or the default config of a dataset name), from the cache when trained
    before. ``cache``: a folder, ``""`` for no cache, None for ``results_dir()/_cache/digit_judge``."""
    if isinstance(cfg, str):
        cfg = JudgeConfig(dataset=cfg, epochs=30 if cfg == "digits8" else 2)
    if not isinstance(cfg, JudgeConfig):
        raise TypeError(f"cfg must be a JudgeConfig or a dataset name, got {type(cfg).__name__}")
    folder = (
        None
        if cache == ""
        else (Path(cache) if cache is not None else results_dir() / "_cache" / "digit_judge")
    )
    folder = folder / cfg.key() if folder is not None else None
    # Built (trained or loaded) under a fork of the global RNG: a caller's random state after this
    # call is the one before it, whether the judge was trained now or loaded from the cache (else a
    # first run on a machine would differ from the later ones).
    with torch.random.fork_rng(devices=[]):
        return _judge(cfg, folder)


def _judge(cfg: JudgeConfig, folder: Path | None) -> DigitJudge:
    if folder is not None:
        state = load_checkpoint(folder, config=asdict(cfg)) if folder.exists() else None
        if state is not None:
            net = _Net(int(state["size"]))
            net.load_state_dict(state["model"])
            return DigitJudge(net, int(state["size"]), float(state["test_accuracy"]))
    net, size, accuracy = _train(cfg)
    if folder is not None:
        save_checkpoint(
            folder, {"model": net.state_dict(), "size": size, "test_accuracy": accuracy}, config=asdict(cfg)
        )
    return DigitJudge(net, size, accuracy)
