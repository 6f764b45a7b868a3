import json
import random

import numpy as np
import pytest
import torch

from aicanon.core import load_checkpoint, rng_state, save_checkpoint, seed, set_rng_state


def _train(steps, ckpt=None, stop_after=None):
    """A tiny training loop that checkpoints every step and can be 'killed' after stop_after steps."""
    seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    start = 0
    if ckpt is not None and (state := load_checkpoint(ckpt)) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start = state["step"]
    for step in range(start, steps):
        x = torch.randn(8, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ckpt is not None:
            save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "rng": rng_state(),
                    "step": step + 1,
                },
            )
        if stop_after is not None and step + 1 == stop_after:
            return None
    return model.weight.detach().clone()


def test_killed_run_resumes_to_the_same_result(tmp_path):
    uninterrupted = _train(12)
    assert _train(12, ckpt=tmp_path / "ck", stop_after=5) is None
    resumed = _train(12, ckpt=tmp_path / "ck")
    assert torch.equal(uninterrupted, resumed)


def test_round_trip_nested_state(tmp_path):
    state = {"a": torch.arange(3), "b": [1, 2.5, "x", None, (torch.ones(2), True)], "c": {0: torch.zeros(1)}}
    save_checkpoint(tmp_path, state)
    back = load_checkpoint(tmp_path)
    assert torch.equal(back["a"], state["a"]) and back["b"][:4] == [1, 2.5, "x", None]
    assert isinstance(back["b"][4], tuple) and torch.equal(back["b"][4][0], torch.ones(2))
    assert torch.equal(back["c"][0], torch.zeros(1)) or torch.equal(back["c"]["0"], torch.zeros(1))


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"step": 1, "w": torch.ones(2)})
    import aicanon.core.checkpoint as ck

    def boom(tensors, filename):
        open(filename, "wb").write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"step": 2, "w": torch.zeros(2)})
    state = load_checkpoint(tmp_path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(2))
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_or_mismatched_checkpoint_is_none(tmp_path):
    assert load_checkpoint(tmp_path / "nothing") is None
    save_checkpoint(tmp_path, {"w": torch.ones(1)})
    meta = json.loads((tmp_path / "state.json").read_text())
    meta["keys"] = ["other"]
    (tmp_path / "state.json").write_text(json.dumps(meta))
    assert load_checkpoint(tmp_path) is None


def test_bad_state_rejected(tmp_path):
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint(tmp_path, [1, 2])
    with pytest.raises(TypeError, match="cannot hold object"):
        save_checkpoint(tmp_path, {"x": object()})


def test_rng_state_round_trip():
    seed(3)
    state = rng_state()
    a = (torch.rand(2), np.random.rand(), random.random())
    set_rng_state(state)
    b = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def test_seed_rejects_bad_values():
    with pytest.raises(TypeError, match="seed n must be an int"):
        seed(1.5)
    with pytest.raises(ValueError, match="seed n must be >= 0"):
        seed(-1)
