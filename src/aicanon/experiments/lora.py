"""LoRA (Hu et al. 2021): low-rank adaptation matches full fine-tuning with far fewer trainable
parameters (Tables 2 and 3), and the top directions learned at two ranks overlap (Section 7.2).

The experiment, top to bottom:

1. pre-train the small character-level base model (:func:`aicanon.testbeds.char_lm.pretrain_char_lm`, cached
   under ``<results>/_cache/char_lm`` so it is trained once);
2. fine-tune it on SST-2 (binary sentiment, :func:`aicanon.datasets.sst.load_sst_binary`) as a
   sequence classifier: the final hidden states (the base's ``lm_head`` dropped) are mean-pooled over
   the sentence's characters and read by a new linear head, trained in every arm:
   * full fine-tuning: every parameter of the base and the head;
   * LoRA ``r = 8`` on the query and value projections (Section 4.2's choice, Table 2), the rest frozen;
   * LoRA ``r = r_high`` the same way, only to compare subspaces (Section 7.2);
3. report dev accuracy, trainable parameters (the head, trained in both arms, counted apart), the
   bytes of Adam state, and Eq. 4's subspace similarity ``phi(A_8, A_high, 1, 1)`` of each adapted
   matrix's top right-singular direction, against the same number for random matrices of those shapes.

Departures from the paper, and why:

* Scale: a 2-layer, width-64 character model instead of RoBERTa/DeBERTa/GPT-2/GPT-3; SST-2 dev
  accuracy of such a model is far below the paper's 94-97 %. The claim is the paper's point,
  LoRA's accuracy relative to full fine-tuning (>= 97 % of it), not the absolute number.
* Trainable fraction: with width 64, ``r = 8`` on W_q and W_v is ``2 * 2 * 8 * 64`` parameters per
  layer, several per cent of the model rather than the paper's 0.24 % (RoBERTa-base, Table 2) or
  0.003 % (GPT-3, Table 4): the fraction scales as ``r / d``. We claim the fraction below 10 % and
  report the paper's number beside it.
* Section 7.2 compares ``r = 8`` with ``r = 64`` at d = 12288; at width 64 an ``r = 64`` ``A`` spans
  the whole input space (phi = 1 trivially), so quick uses ``r_high = 32`` and a random baseline.
* Fine-tuning uses a random subset of the training sentences, truncated, for one or two epochs, to
  fit the quick budget; full scale uses all of them.
* Learning rates differ between the arms as in the paper (Appendix D: LoRA's are larger).
* Section 7.2's phi is read after a short fine-tuning, so ``A`` has moved little from its random
  start: the overlap of the top directions is claimed against random matrices (about 1/width), not
  at the paper's > 0.5, which full scale only reports.

What the metrics show: the accuracy ratio (LoRA r = 8 over full fine-tuning, the same base, data and
budget) carries the paper's point, LoRA matching full fine-tuning (Table 2: 95.1 vs 94.8 on
RoBERTa-base); the trainable fraction and the Adam-state ratio are what LoRA buys, both fixed by the
shapes (``r / d``), so they check the wiring (which weights are frozen, which have optimiser state)
rather than training; ``phi_top1`` against the random baseline says whether two ranks learn a shared
top direction (Section 7.2). Absolute accuracy is low (dev is 51 % positive): a two-layer character
model pre-trained for ``base_steps`` (200 at quick) steps, so only the ratio is claimed. The broken
variant (LoRA arm and head untrained) stays near chance and fails the ratio claim. The numbers are
in the run's record (``results/lora/``) and in RESULTS.md.

What a high-accuracy comparison would take (a probe, 2026-12-07, not part of the run): LoRA matches
full fine-tuning only on a base whose frozen features already carry the task, and no base we can
pre-train on two CPU cores does. On the masked-LM testbed (:mod:`aicanon.testbeds.masked_lm`, a
RoBERTa-style encoder, the paper's own Table 2 setting) full fine-tuning reaches 0.77-0.78 on SST-2
dev from the sentences and 0.80 from GLUE-style phrases, but it reaches 0.78 from a *random* encoder
too (it learns the words from the labels), while LoRA r = 8 on W_q, W_v reaches 0.66 on the 1,500-step
base and 0.70 (sentences) / 0.72 (phrases) on a 6,000-step base with WikiText (10 CPU-minutes); larger
LoRA learning rates do worse. The gap shrinks with pre-training, so the issue's target (full >= 0.78,
LoRA within 2 points) needs a GPU-scale pre-trained base.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from aicanon.align.lora import apply_lora, count_parameters, lora_layers, subspace_similarity
from aicanon.core import Result, seed, select_device, track
from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_int
from aicanon.core.experiment import Claim, ExperimentConfig
from aicanon.core.results import checkpoint_folder
from aicanon.datasets.sst import load_sst_binary
from aicanon.datasets.text import CharTokenizer
from aicanon.language.llama import Llama
from aicanon.testbeds.char_lm import CharLMConfig, cache_folder, pretrain_char_lm


@dataclass
class Config(ExperimentConfig):
    base_steps: int = 200
    """Pre-training steps of the base model."""
    base_hidden: int = 64
    """Width of the base model."""
    base_layers: int = 2
    """Blocks of the base model."""
    base_seq_len: int = 64
    """Pre-training window (characters)."""
    base_batch: int = 32
    """Pre-training windows per step."""
    train_sentences: int = 2000
    """SST-2 training sentences used (a seeded random subset; 0 = all 6,920)."""
    max_chars: int = 96
    """Sentences are truncated to this many characters."""
    epochs: int = 2
    """Passes over the fine-tuning sentences."""
    batch_size: int = 32
    """Sentences per fine-tuning step."""
    full_lr: float = 2e-3
    """Adam learning rate of full fine-tuning."""
    lora_lr: float = 1e-2
    """Adam learning rate of LoRA (larger, as in the paper's Appendix D)."""
    rank: int = 8
    """LoRA rank of the claimed arm (Table 2: r = 8 on W_q, W_v)."""
    rank_high: int = 32
    """The second rank for Section 7.2's subspace comparison (paper: 64, see the docstring)."""
    alpha: float = 16.0
    """LoRA alpha (update scaled by alpha / r; Table 9 uses alpha = 16 for RoBERTa with r = 8)."""
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    """Adapted weights (Section 4.2: the query and value projections)."""
    train_lora: bool = True
    """False = the broken variant: the LoRA arm (adapter and head) is never trained."""
    cache: str | None = None
    """Folder of the cached base model (None: ``_cache/char_lm`` under the results folder, which
    ``aicanon reproduce --out`` sets; '' = retrain every run)."""
    checkpoint_every: int = 0
    """Fine-tuning steps between checkpoints of an arm's whole state under the results folder
    (``_checkpoints/lora/<config hash>``); a rerun of a killed run resumes there and ends with the same
    result; a finished arm is not retrained. 0 = no checkpoints (quick)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            base_steps=3000,
            base_hidden=256,
            base_layers=4,
            base_seq_len=256,
            train_sentences=0,
            max_chars=256,
            epochs=3,
            rank_high=64,
            full_lr=3e-4,
            lora_lr=1e-3,
            checkpoint_every=200,
        )


CLAIMS = [
    Claim(
        metric="accuracy_ratio",
        description="LoRA r=8 on W_q, W_v reaches >= 97 % of full fine-tuning's SST-2 accuracy",
        paper=95.1 / 94.8,
        source="Table 2 (RoBERTa-base: LoRA 95.1 vs FT 94.8 on SST-2)",
        quick=0.97,
        full=0.97,
    ),
    Claim(
        metric="trainable_fraction",
        description="LoRA's trainable parameters over full fine-tuning's (head counted apart, in neither)",
        paper=0.3 / 125.0,
        source="Table 2 (RoBERTa-base: 0.3M of 125M)",
        quick=0.10,
        full=0.05,
        higher_is_better=False,
    ),
    Claim(
        metric="optimizer_state_ratio",
        description="bytes of Adam state, LoRA over full fine-tuning (head included in both)",
        paper=None,
        source="Section 4.2 (VRAM 1.2TB -> 350GB for GPT-3; Adam state of frozen weights not kept)",
        quick=0.15,
        full=0.10,
        higher_is_better=False,
    ),
    Claim(
        metric="phi_top1",
        description="Eq. 4 phi(A_8, A_high, 1, 1), mean over adapted matrices: well above random matrices' phi",
        paper=None,
        source="Section 7.2, Figure 3 (the top direction overlaps, phi > 0.5; random: ~1/width)",
        quick=0.03,
        full=None,
    ),
    Claim(
        metric="phi_top1_random",
        description="the same phi for Gaussian matrices of the adapters' shapes (the baseline)",
        paper=None,
        source="Eq. 4 on random matrices (expected 1/width for i = j = 1)",
    ),
    Claim(
        metric="accuracy_lora",
        description="LoRA r=8 SST-2 dev accuracy",
        paper=0.951,
        source="Table 2 (RoBERTa-base)",
    ),
    Claim(
        metric="accuracy_full",
        description="full fine-tuning SST-2 dev accuracy",
        paper=0.948,
        source="Table 2 (RoBERTa-base)",
    ),
]


class SentenceClassifier(nn.Module):
    """The base model's final hidden states, mean-pooled over real characters, then a linear head."""

    def __init__(self, backbone: Llama, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(backbone)
        self.backbone.lm_head = nn.Identity()  # the model now returns its normalised hidden states
        self.head = nn.Linear(backbone.config.hidden_size, num_classes)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        hidden = self.backbone(ids, attention_mask=mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * weights).sum(1) / weights.sum(1))


def encode(sentences: list[str], tokenizer: CharTokenizer, max_chars: int) -> tuple[Tensor, Tensor]:
    """Right-padded ids and their mask for sentences truncated to ``max_chars``."""
    cut = [s[:max_chars] for s in sentences]
    length = max(len(s) for s in cut)
    ids = torch.zeros(len(cut), length, dtype=torch.long)
    mask = torch.zeros(len(cut), length, dtype=torch.bool)
    for row, sentence in enumerate(cut):
        ids[row, : len(sentence)] = tokenizer.encode(sentence)
        mask[row, : len(sentence)] = True
    return ids, mask


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the tensors the optimizer keeps per parameter (Adam: exp_avg, exp_avg_sq, step)."""
    return sum(
        v.numel() * v.element_size()
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, Tensor)
    )


def fine_tune(
    model: SentenceClassifier,
    data,
    cfg: Config,
    lr: float,
    device,
    name: str,
    checkpoint: Path | None = None,
) -> dict:
    """Adam on the trainable parameters, cross-entropy, a seeded order; returns loss and state bytes.

    With ``checkpoint`` (a folder) the whole state (model, optimiser, schedule, step, losses, RNG) is
    saved every ``cfg.checkpoint_every`` steps and at the end, and a rerun continues from it."""
    ids, mask, labels = data
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed)
    steps = cfg.epochs * ((len(labels) + cfg.batch_size - 1) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / max(1, steps))
    losses: list[float] = []
    model.train()
    batches = [
        order[i : i + cfg.batch_size]
        for _ in range(cfg.epochs)
        for order in [torch.randperm(len(labels), generator=generator)]
        for i in range(0, len(labels), cfg.batch_size)
    ]
    record = {"arm": name, "lr": lr, "steps": len(batches)}
    start = 0
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, config=record)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            set_rng_state(state["rng"])  # dropout draws continue where they stopped
            start, losses = int(state["step"]), list(state["losses"])

    def save(step: int) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "rng": rng_state(),
            "step": step,
            "losses": losses,
        }
        save_checkpoint(checkpoint, state, config=record)

    for step in track(range(start, len(batches)), f"fine-tuning: {name}", total=len(batches) - start):
        index = batches[step]
        width = int(mask[index].sum(1).max())  # trim padding columns of this batch
        logits = model(ids[index, :width].to(device), mask[index, :width].to(device))
        loss = F.cross_entropy(logits, labels[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if checkpoint is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == len(batches)):
            save(step + 1)
    return {"loss": losses, "optimizer_state_bytes": optimizer_state_bytes(optimizer)}


@torch.no_grad()
def accuracy(model: SentenceClassifier, data, device, batch_size: int = 128) -> float:
    ids, mask, labels = data
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        width = int(mask[i : i + batch_size].sum(1).max())
        logits = model(
            ids[i : i + batch_size, :width].to(device), mask[i : i + batch_size, :width].to(device)
        )
        correct += int((logits.argmax(-1).cpu() == labels[i : i + batch_size]).sum())
    return correct / len(labels)


def lora_arm(base: Llama, rank: int, cfg: Config) -> SentenceClassifier:
    torch.manual_seed(cfg.seed + 1000 * rank)  # the head's and A's initialisation, per rank
    model = SentenceClassifier(base)
    apply_lora(model, list(cfg.target_modules), r=rank, alpha=cfg.alpha, modules_to_save=["head"])
    return model


def run(cfg: Config) -> Result:
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    seed(cfg.seed)
    device = select_device(cfg.device)
    base_cfg = CharLMConfig(
        hidden_size=cfg.base_hidden,
        num_layers=cfg.base_layers,
        num_heads=max(1, cfg.base_hidden // 16),
        intermediate_size=int(cfg.base_hidden * 8 / 3 + 3) // 4 * 4,
        steps=cfg.base_steps,
        batch_size=cfg.base_batch,
        seq_len=cfg.base_seq_len,
        warmup_steps=max(1, cfg.base_steps // 10),
    )
    base, tokenizer = pretrain_char_lm(base_cfg, cache_folder(cfg.cache))

    # SST-2: a seeded subset of the training sentences, the whole dev split for evaluation.
    train_text, train_labels = load_sst_binary("train")
    if cfg.train_sentences:
        pick = np.random.default_rng(cfg.seed).permutation(len(train_text))[: cfg.train_sentences]
        train_text, train_labels = [train_text[i] for i in pick], train_labels[pick]
    dev_text, dev_labels = load_sst_binary("dev")
    train = (*encode(train_text, tokenizer, cfg.max_chars), torch.as_tensor(train_labels))
    dev = (*encode(dev_text, tokenizer, cfg.max_chars), torch.as_tensor(dev_labels))

    # A long run checkpoints each arm's training under the results folder: a killed run resumes.
    checkpoints = checkpoint_folder("lora", cfg.to_dict()) if cfg.checkpoint_every else None

    def arm_folder(name: str) -> Path | None:
        return None if checkpoints is None else checkpoints / name

    # Full fine-tuning: every parameter of the base and the head.
    torch.manual_seed(cfg.seed)
    full = SentenceClassifier(base).to(device)
    full_log = fine_tune(full, train, cfg, cfg.full_lr, device, "full", arm_folder("full"))
    acc_full = accuracy(full, dev, device)

    # LoRA at rank r (claimed) and at r_high (Section 7.2 only).
    arms, logs, accs = {}, {}, {}
    for rank in (cfg.rank, cfg.rank_high):
        arms[rank] = lora_arm(base, rank, cfg).to(device)
        if cfg.train_lora:
            logs[rank] = fine_tune(
                arms[rank], train, cfg, cfg.lora_lr, device, f"LoRA r={rank}", arm_folder(f"lora_r{rank}")
            )
        else:  # broken variant: nothing trained, so Adam holds no state
            logs[rank] = {"loss": [], "optimizer_state_bytes": 0}
        accs[rank] = accuracy(arms[rank], dev, device)
        if not cfg.train_lora:
            break
    lora = arms[cfg.rank]

    # Parameter accounting: the head (hidden*2 + 2) is trained in both arms and counted apart.
    head = count_parameters(full.head)
    full_trainable = count_parameters(full, trainable_only=True) - head
    lora_trainable = count_parameters(lora, trainable_only=True) - head
    full_state, lora_state = full_log["optimizer_state_bytes"], logs[cfg.rank]["optimizer_state_bytes"]

    # Section 7.2, Eq. 4: phi of the top right-singular directions, per adapted matrix.
    phis, randoms = {}, []
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.rank_high in arms:
        high = lora_layers(arms[cfg.rank_high])
        for name, layer in lora_layers(lora).items():
            a_low, a_high = layer.lora_A.weight.detach().cpu(), high[name].lora_A.weight.detach().cpu()
            phis[name] = float(subspace_similarity(a_low, a_high, 1, 1))
            randoms.append(
                float(
                    subspace_similarity(
                        torch.randn(a_low.shape, generator=generator),
                        torch.randn(a_high.shape, generator=generator),
                        1,
                        1,
                    )
                )
            )
    phi_grid = _phi_grid(lora, arms.get(cfg.rank_high), cfg)

    if checkpoints is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: its result is the record

    metrics = {
        "accuracy_full": acc_full,
        "accuracy_lora": accs[cfg.rank],
        "accuracy_ratio": accs[cfg.rank] / max(acc_full, 1e-12),
        "trainable_full": float(full_trainable),
        "trainable_lora": float(lora_trainable),
        "trainable_head": float(head),
        "trainable_fraction": lora_trainable / full_trainable,
        "optimizer_state_full_bytes": float(full_state),
        "optimizer_state_lora_bytes": float(lora_state),
        "optimizer_state_ratio": lora_state / max(full_state, 1),
    }
    if phis:
        metrics["accuracy_lora_high"] = accs[cfg.rank_high]
        metrics["phi_top1"] = float(np.mean(list(phis.values())))
        metrics["phi_top1_random"] = float(np.mean(randoms))

    figures = {}
    if phi_grid is not None:
        figure = Figure(figsize=(5, 3.2))
        axis = figure.add_subplot()
        image = axis.imshow(
            phi_grid,
            aspect="auto",
            origin="lower",
            vmin=0,
            vmax=1,
            cmap="viridis",
            extent=(0.5, phi_grid.shape[1] + 0.5, 0.5, phi_grid.shape[0] + 0.5),
        )
        axis.set_xlabel(f"j (top directions of A, r={cfg.rank_high})")
        axis.set_ylabel(f"i (top directions of A, r={cfg.rank})")
        axis.set_title("phi(A_low, A_high, i, j), mean over adapted matrices (Fig. 3)")
        figure.colorbar(image)
        figures["subspace_similarity"] = figure
    details = {
        "phi_top1_per_matrix": phis,
        "phi_grid_mean": phi_grid.tolist() if phi_grid is not None else None,
        "loss_full": full_log["loss"],
        "loss_lora": logs[cfg.rank]["loss"],
        "head_parameters": f"{head} (hidden*2 + 2: trained in both arms, excluded from trainable_fraction)",
    }
    notes = [
        (
            f"Base model: {cfg.base_layers} layers, width {cfg.base_hidden}, characters; the paper adapts "
            "RoBERTa/DeBERTa/GPT-2/GPT-3: absolute accuracies are not comparable, the ratio is the claim."
        ),
        (
            f"trainable_fraction {lora_trainable}/{full_trainable} is large next to the paper's 0.24 % "
            "because it scales as r / width (width 64 here)."
        ),
        f"Section 7.2 compares r=8 with r={cfg.rank_high} (paper: 64) at width {cfg.base_hidden}.",
    ]
    if not cfg.train_lora:
        notes.append("Broken variant: the LoRA arm was not trained (train_lora=False).")
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)


def _phi_grid(low: SentenceClassifier, high: SentenceClassifier | None, cfg: Config) -> np.ndarray | None:
    """``phi(A_low, A_high, i, j)`` for i <= r, j <= r_high, averaged over the adapted matrices."""
    if high is None:
        return None
    high_layers = lora_layers(high)
    grids = []
    for name, layer in lora_layers(low).items():
        a1, a2 = layer.lora_A.weight.detach().cpu(), high_layers[name].lora_A.weight.detach().cpu()
        # Eq. 4 for every (i, j) at once from one SVD each: cumulative sums of squared overlaps.
        v1 = torch.linalg.svd(a1.double(), full_matrices=False).Vh
        v2 = torch.linalg.svd(a2.double(), full_matrices=False).Vh
        overlap = (v1 @ v2.T).square().cumsum(0).cumsum(1)
        r1, r2 = overlap.shape
        denominator = torch.minimum(torch.arange(1, r1 + 1)[:, None], torch.arange(1, r2 + 1)[None, :])
        grids.append((overlap / denominator).numpy())
    return np.mean(np.array(grids), axis=0)


__all__ = ["CLAIMS", "Config", "SentenceClassifier", "run"]
