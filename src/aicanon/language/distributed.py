"""Data-parallel pre-training under ``torchrun`` (DDP, or FSDP for models that do not fit one device),
bf16 on GPU, and checkpoint/resume of a training run.

Llama 2 and 3 were trained with data parallelism combined with tensor, pipeline and context
parallelism on thousands of GPUs (Llama 3 Section 3.3.2, "4D parallelism"; FSDP shards parameters,
gradients and optimizer state over the data-parallel group). At the sizes trained here one of two
data-parallel strategies suffices:

* ``"ddp"``: every process holds the whole model; gradients are averaged across processes after
  the backward (``DistributedDataParallel``);
* ``"fsdp"``: every process holds ``1/world`` of every parameter, gradient and optimizer state;
  each block's parameters are gathered just before they are used and freed after (FSDP2's
  ``fully_shard`` per transformer block, then on the root);
* ``"none"``: one process.

**Same global batch, same result.** Each step draws the *global* batch of ``cfg.batch_size`` windows
from one generator seeded alike on every process, and process ``r`` keeps rows ``r*B/W .. (r+1)*B/W``.
Every process's loss is the mean over its rows and the gradient all-reduce averages over processes,
so the update equals one process's on the whole batch (up to floating-point summation order), and the
loss logged is the all-reduced mean. The recipe is :mod:`aicanon.language.training`'s (Llama 2
Section 2.2: AdamW beta2 0.95, weight decay 0.1, cosine to 10 %, clipping 1.0); the clipping norm is
computed over the full (unsharded) gradient in all three strategies.

**Checkpoint/resume.** With ``checkpoint_dir``, every ``checkpoint_every`` steps the model and
optimizer states (full, unsharded: process 0 writes them), the data generator's state, the step and
the loss history are written with :func:`aicanon.core.checkpoint.save_checkpoint` (atomic). A run
started again with the same directory continues from the last checkpoint and ends with parameters
and losses identical to an uninterrupted run (tests/language/test_distributed.py kills one on
purpose).

Launch (one node, 8 GPUs)::

    torchrun --nproc_per_node 8 -m aicanon.language.distributed --strategy fsdp --steps 1000

Departures: no tensor, pipeline or context parallelism (Llama 3 Section 3.3.2) -- they matter for
models of tens of billions of parameters, not here. The global batch must divide by the number of
processes.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_int
from aicanon.core.device import autocast
from aicanon.datasets.text import random_batch
from aicanon.language.training import PretrainConfig, cosine_lr, evaluate_lm, lm_loss, make_optimizer

__all__ = ["STRATEGIES", "DistributedContext", "init_distributed", "train_distributed", "wrap_model"]

STRATEGIES = ("none", "ddp", "fsdp")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", backend: str | None = None) -> DistributedContext:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT``); without those variables, a one-process context.

    ``device="auto"`` gives ``cuda:LOCAL_RANK`` when CUDA is present (backend NCCL), else CPU (gloo).
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"))
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistributedContext(rank=rank, world_size=world, local_rank=local, device=dev)


def context_from_process_group(device: torch.device | None = None) -> DistributedContext:
    """The context of an already initialised process group (or one process when none is)."""
    if not dist.is_initialized():
        return DistributedContext(device=device or torch.device("cpu"))
    return DistributedContext(
        dist.get_rank(), dist.get_world_size(), dist.get_rank(), device or torch.device("cpu")
    )


def wrap_model(
    model: nn.Module, strategy: str, ctx: DistributedContext, bf16: bool | None = None
) -> nn.Module:
    """Move ``model`` to ``ctx.device`` and wrap it for ``strategy`` (see the module docstring).

    ``bf16`` (default: on CUDA) makes FSDP compute in bf16 with float32 master weights and gradient
    reduction; DDP and one process use :func:`aicanon.core.device.autocast` in the loop instead.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    model = model.to(ctx.device)
    if strategy == "none":
        return model
    if not dist.is_initialized():
        raise ValueError(
            f"strategy {strategy!r} needs an initialised process group (run under torchrun), got none"
        )
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    bf16 = ctx.device.type == "cuda" if bf16 is None else bf16
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if bf16
        else MixedPrecisionPolicy()
    )
    # One FSDP unit per transformer block (gathered, used, freed), the rest (embeddings, final norm,
    # head) in the root unit.
    for block in getattr(model, "layers", []):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def _unwrap(model: nn.Module) -> nn.Module:
    return (
        model.module
        if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel)
        else model
    )


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer, strategy: str) -> tuple[dict, dict]:
    """Unsharded model and optimizer state dicts (on CPU), the same on every process."""
    if strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=False)
        model_state, optim_state = get_state_dict(model, optimizer, options=options)
        return {k: v.detach().cpu() for k, v in model_state.items()}, _to_cpu(optim_state)
    return {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}, _to_cpu(
        optimizer.state_dict()
    )


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def _load_full_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, strategy: str, model_state: dict, optim_state: dict
) -> None:
    if strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(
            model,
            optimizer,
            model_state_dict=model_state,
            optim_state_dict=optim_state,
            options=StateDictOptions(full_state_dict=True),
        )
        return
    device = next(model.parameters()).device
    _unwrap(model).load_state_dict({k: v.to(device) for k, v in model_state.items()})
    optimizer.load_state_dict(optim_state)


def _mean_across(value: Tensor, ctx: DistributedContext) -> float:
    if ctx.distributed:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= ctx.world_size
    return float(value.detach())


def train_distributed(
    model: nn.Module,
    train_ids: Tensor,
    val_ids: Tensor | None,
    cfg: PretrainConfig,
    ctx: DistributedContext | None = None,
    *,
    strategy: str = "none",
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    stop_after: int | None = None,
) -> tuple[nn.Module, dict]:
    """Pre-train ``model`` with the Llama 2 recipe over ``ctx``'s processes; returns the wrapped model
    and the history (``train_loss``, ``lr``, ``val``, ``final_val_loss``, ``resumed_from``).

    ``seed`` seeds the batch generator (the same on every process). ``stop_after`` ends the run after
    that many steps in total without the final evaluation -- a stand-in for a killed job, for tests.
    """
    if not isinstance(cfg, PretrainConfig):
        raise TypeError(f"cfg must be a PretrainConfig, got {type(cfg).__name__}")
    ctx = ctx if ctx is not None else context_from_process_group(next(model.parameters()).device)
    if cfg.batch_size % ctx.world_size:
        raise ValueError(
            f"cfg.batch_size must be a multiple of the world size {ctx.world_size}, got {cfg.batch_size}"
        )
    check_int("checkpoint_every", checkpoint_every, 0)
    if checkpoint_every and checkpoint_dir is None:
        raise ValueError("checkpoint_every needs checkpoint_dir, got None")
    model = wrap_model(model, strategy, ctx)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(seed)
    history: dict = {"train_loss": [], "lr": [], "val": [], "final_val_loss": None, "resumed_from": 0}
    start = 0
    # The run's settings travel with its checkpoint: a rerun with other ones (say --steps 300 on a
    # 600-step run's folder) is refused instead of resuming a run that is not its own.
    run_config = {"train": asdict(cfg), "seed": seed, "strategy": strategy}
    state = load_checkpoint(checkpoint_dir, config=run_config) if checkpoint_dir is not None else None
    if state is not None:
        _load_full_state(model, optimizer, strategy, state["model"], state["optimizer"])
        generator.set_state(state["generator"])
        set_rng_state(state["rng"])
        start = int(state["step"])
        history.update(
            train_loss=list(state["train_loss"]), lr=list(state["lr"]), val=[list(v) for v in state["val"]]
        )
        history["resumed_from"] = start
    local = cfg.batch_size // ctx.world_size
    rows = slice(ctx.rank * local, (ctx.rank + 1) * local)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    model.train()
    for step in range(start, end):
        lr = cosine_lr(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # The global batch, drawn alike everywhere; this process trains on its rows.
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, generator)
        x, y = x[rows].to(ctx.device), y[rows].to(ctx.device)
        with autocast(ctx.device):
            out = model(x)
            loss = lm_loss(out[0] if isinstance(out, tuple) else out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            # Over the full gradient: DDP's is all-reduced already, FSDP's DTensors reduce their norm.
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        history["train_loss"].append(_mean_across(loss, ctx))
        history["lr"].append(lr)
        done = step + 1
        if val_ids is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            history["val"].append([done, _evaluate(model, val_ids, cfg, ctx)])
        if checkpoint_every and (done % checkpoint_every == 0 or done == cfg.steps):
            _save(checkpoint_dir, model, optimizer, strategy, generator, done, history, ctx, run_config)
    if stop_after is not None and end < cfg.steps:
        return model, history
    if val_ids is not None:
        history["final_val_loss"] = _evaluate(model, val_ids, cfg, ctx)
        history["val"].append([cfg.steps, history["final_val_loss"]])
    return model, history


def _evaluate(model: nn.Module, val_ids: Tensor, cfg: PretrainConfig, ctx: DistributedContext) -> float:
    # Every process evaluates the same windows (fixed generator), so no reduction is needed; under FSDP
    # all must take part in the parameter gathers anyway.
    return evaluate_lm(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)


def _save(directory, model, optimizer, strategy, generator, step, history, ctx, run_config) -> None:
    model_state, optim_state = _full_state(model, optimizer, strategy)  # collective under FSDP
    if ctx.is_main:
        save_checkpoint(
            directory,
            {
                "model": model_state,
                "optimizer": optim_state,
                "generator": generator.get_state(),
                "rng": rng_state(),
                "step": step,
                "train_loss": history["train_loss"],
                "lr": history["lr"],
                "val": history["val"],
            },
            config=run_config,
        )
    if ctx.distributed:
        dist.barrier()  # nobody resumes or moves on before the checkpoint is complete


def main(argv: list[str] | None = None) -> None:
    """``torchrun ... -m aicanon.language.distributed``: a character-level Llama on Tiny Shakespeare."""
    from aicanon.core.seeding import seed as seed_everything
    from aicanon.datasets.text import char_splits, load_tinyshakespeare
    from aicanon.language.llama import Llama, LlamaConfig

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--strategy", choices=STRATEGIES, default="ddp")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-dir", default=None)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    args = parser.parse_args(argv)
    ctx = init_distributed()
    seed_everything(args.seed)
    train_ids, val_ids, tokenizer = char_splits(load_tinyshakespeare())
    cfg = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=args.hidden,
        intermediate_size=int(math.ceil(8 * args.hidden / 3 / 64) * 64),
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        max_seq_len=args.seq_len,
    )
    pretrain = PretrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        lr=args.lr,
        warmup_steps=max(1, args.steps // 20),
        eval_every=max(1, args.steps // 10),
    )
    _, history = train_distributed(
        Llama(cfg),
        train_ids,
        val_ids,
        pretrain,
        ctx,
        strategy=args.strategy,
        seed=args.seed,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
    )
    if ctx.is_main:
        for step, loss in history["val"]:
            print(f"step {step:6d}  validation loss {loss:.4f}")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
