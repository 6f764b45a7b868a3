"""Data-parallel pre-training: 2 gloo processes (DDP and FSDP) give one process's losses on the same
global batch; a run killed mid-way resumes from its checkpoint to the identical result."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from aicanon.language.distributed import DistributedContext, train_distributed, wrap_model
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.training import PretrainConfig

pytestmark = pytest.mark.paper("llama2")

MODEL = dict(
    vocab_size=31,
    hidden_size=32,
    intermediate_size=48,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    max_seq_len=32,
)
TRAIN = dict(steps=6, batch_size=8, seq_len=16, lr=3e-3, warmup_steps=2, eval_batches=2)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    # A learnable sequence (repeating pattern with noise) so losses move.
    base = torch.arange(2000) % 17
    noise = torch.randint(0, 31, (2000,), generator=g)
    ids = torch.where(torch.rand(2000, generator=g) < 0.2, noise, base)
    return ids[:1600], ids[1600:]


def _model() -> Llama:
    torch.manual_seed(0)
    return Llama(LlamaConfig(**MODEL))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, strategy: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        train, val = _data()
        ctx = DistributedContext(rank=rank, world_size=world, local_rank=rank)
        _, history = train_distributed(
            _model(), train, val, PretrainConfig(**TRAIN), ctx, strategy=strategy, seed=1
        )
        # Killed after 3 steps (checkpoint at 2), then resumed from the checkpoint, under this strategy.
        folder = out + ".ckpt"
        common = dict(strategy=strategy, seed=1, checkpoint_dir=folder, checkpoint_every=2)
        train_distributed(_model(), train, val, PretrainConfig(**TRAIN), ctx, stop_after=3, **common)
        _, resumed = train_distributed(_model(), train, val, PretrainConfig(**TRAIN), ctx, **common)
        if rank == 0:
            with open(out, "w") as f:
                json.dump({"history": history, "resumed": resumed}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_gloo_processes_give_one_process_losses(strategy, tmp_path):
    train, val = _data()
    _, single = train_distributed(_model(), train, val, PretrainConfig(**TRAIN), seed=1)
    out = tmp_path / "history.json"
    mp.spawn(_worker, args=(2, _free_port(), strategy, str(out)), nprocs=2, join=True)
    record = json.loads(out.read_text())
    parallel, resumed = record["history"], record["resumed"]
    assert single["train_loss"][-1] < single["train_loss"][0]  # it trains
    # Same global batch, gradients averaged: same losses up to summation order.
    assert parallel["train_loss"] == pytest.approx(single["train_loss"], abs=2e-5)
    assert parallel["final_val_loss"] == pytest.approx(single["final_val_loss"], abs=2e-5)
    # Checkpoint/resume across processes (full state gathered, re-sharded on load): identical run.
    assert resumed["resumed_from"] == 2
    assert resumed["train_loss"] == parallel["train_loss"]
    assert resumed["final_val_loss"] == parallel["final_val_loss"]


def test_single_process_equals_the_shared_training_loop():
    from aicanon.language.training import train_lm

    train, val = _data()
    _, ours = train_distributed(_model(), train, val, PretrainConfig(**TRAIN), seed=1)
    reference = train_lm(_model(), train, val, PretrainConfig(**TRAIN), torch.Generator().manual_seed(1))
    assert ours["train_loss"] == pytest.approx(reference["train_loss"], abs=1e-6)
    assert ours["final_val_loss"] == pytest.approx(reference["final_val_loss"], abs=1e-6)


def test_killed_run_resumes_to_the_identical_result(tmp_path):
    train, val = _data()
    cfg = PretrainConfig(**{**TRAIN, "steps": 8})
    whole_model, whole = train_distributed(_model(), train, val, cfg, seed=1)
    # The first attempt dies after 5 steps; its last checkpoint is at step 4.
    _, first = train_distributed(
        _model(), train, val, cfg, seed=1, checkpoint_dir=tmp_path, checkpoint_every=2, stop_after=5
    )
    assert len(first["train_loss"]) == 5 and first["final_val_loss"] is None
    resumed_model, resumed = train_distributed(
        _model(), train, val, cfg, seed=1, checkpoint_dir=tmp_path, checkpoint_every=2
    )
    assert resumed["resumed_from"] == 4
    assert resumed["train_loss"] == whole["train_loss"]
    assert resumed["final_val_loss"] == whole["final_val_loss"]
    for (name, a), b in zip(whole_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    # Without the checkpoint the fresh run would differ from a resumed one only if resuming were broken;
    # a checkpoint of another run must not be mistaken for this one's start: step counter is honoured.
    _, again = train_distributed(
        _model(), train, val, cfg, seed=1, checkpoint_dir=tmp_path, checkpoint_every=2
    )
    assert again["resumed_from"] == 8 and again["train_loss"] == whole["train_loss"]


def test_bad_input():
    train, val = _data()
    with pytest.raises(ValueError, match="strategy must be one of"):
        wrap_model(_model(), "zero3", DistributedContext())
    with pytest.raises(ValueError, match="strategy 'ddp' needs an initialised process group"):
        wrap_model(_model(), "ddp", DistributedContext())
    with pytest.raises(ValueError, match=r"cfg.batch_size must be a multiple of the world size 3, got 8"):
        train_distributed(_model(), train, val, PretrainConfig(**TRAIN), DistributedContext(world_size=3))
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_dir"):
        train_distributed(_model(), train, val, PretrainConfig(**TRAIN), checkpoint_every=2)
    with pytest.raises(TypeError, match="cfg must be a PretrainConfig"):
        train_distributed(_model(), train, val, {"steps": 3})
