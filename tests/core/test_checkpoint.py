import json
import random

import numpy as np
import pytest
import torch

from aicanon.core import CheckpointMismatch, load_checkpoint, rng_state, save_checkpoint, seed, set_rng_state


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
    assert not list(tmp_path.glob(".writing-*"))


def _newest(path):
    return sorted(p for p in path.iterdir() if p.name.isdigit())[-1]


def test_kill_before_the_publishing_rename_leaves_the_previous_version(tmp_path, monkeypatch):
    # The injected kill: every file of step 2 is written, then the process dies before the rename.
    save_checkpoint(tmp_path, {"step": 1, "w": torch.ones(2)})
    import aicanon.core.checkpoint as ck

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"step": 2, "w": torch.zeros(2)})
    monkeypatch.undo()
    state = load_checkpoint(tmp_path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(2))


def test_tensors_and_state_of_one_version_always_belong_together(tmp_path):
    # The old layout renamed the tensors, then state.json: a kill between them paired step N's
    # weights with step N-1's state. Here both live in one folder published by one rename.
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, {"step": step, "w": torch.full((2,), float(step))})
        state = load_checkpoint(tmp_path)
        assert state["step"] == step and torch.equal(state["w"], torch.full((2,), float(step)))
    assert len([p for p in tmp_path.iterdir() if p.name.isdigit()]) == 2  # keep=2


@pytest.mark.parametrize(
    "damage", ["flip a tensor byte", "truncate tensors", "empty state.json", "drop manifest"]
)
def test_damaged_newest_version_falls_back_to_the_previous_with_a_warning(tmp_path, damage):
    save_checkpoint(tmp_path, {"step": 1, "w": torch.arange(64.0)})
    save_checkpoint(tmp_path, {"step": 2, "w": torch.arange(64.0) * 2})
    newest = _newest(tmp_path)
    tensors = newest / "tensors.safetensors"
    if damage == "flip a tensor byte":
        data = bytearray(tensors.read_bytes())
        data[-5] ^= 0x01  # inside the tensor data, not the header: safetensors alone would load it
        tensors.write_bytes(bytes(data))
    elif damage == "truncate tensors":
        tensors.write_bytes(tensors.read_bytes()[:40])
    elif damage == "empty state.json":
        (newest / "state.json").write_text("")
    else:
        (newest / "manifest.json").unlink()
    with pytest.warns(UserWarning, match=rf"checkpoint .*{newest.name} is damaged and skipped"):
        state = load_checkpoint(tmp_path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.arange(64.0))


def test_no_good_version_is_none_with_a_warning(tmp_path):
    assert load_checkpoint(tmp_path / "nothing") is None
    save_checkpoint(tmp_path, {"w": torch.ones(1)})
    newest = _newest(tmp_path)
    meta = json.loads((newest / "state.json").read_text())
    meta["keys"] = ["other"]
    (newest / "state.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="does not match its sha256"):
        assert load_checkpoint(tmp_path) is None


def test_a_run_with_another_config_refuses_to_resume(tmp_path):
    save_checkpoint(tmp_path, {"step": 600}, config={"steps": 600, "lr": 3e-4, "widths": (1, 2)})
    # The same config (tuples compare as the lists JSON gives back) resumes.
    assert load_checkpoint(tmp_path, config={"steps": 600, "lr": 3e-4, "widths": (1, 2)})["step"] == 600
    with pytest.raises(CheckpointMismatch, match="steps: saved 600, now 300"):
        load_checkpoint(tmp_path, config={"steps": 300, "lr": 3e-4, "widths": (1, 2)})
    assert load_checkpoint(tmp_path)["step"] == 600  # without a config to compare: loaded as it is


def test_bad_state_rejected(tmp_path):
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint(tmp_path, [1, 2])
    with pytest.raises(TypeError, match="cannot hold object"):
        save_checkpoint(tmp_path, {"x": object()})
    with pytest.raises(TypeError, match="config must be JSON-serialisable"):
        save_checkpoint(tmp_path, {"x": 1}, config={"f": object()})
    with pytest.raises(ValueError, match="keep must be an int >= 2"):
        save_checkpoint(tmp_path, {"x": 1}, keep=1)


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


def test_load_or_compute_computes_once_per_config(tmp_path):
    from aicanon.core.checkpoint import load_or_compute

    calls = []

    def compute():
        calls.append(1)
        return {"curve": [(1, 0.5)], "weights": [torch.arange(3.0)], "run": ("ppo", "CartPole-v1")}

    first = load_or_compute(tmp_path / "unit", compute, config={"seed": 1})
    again = load_or_compute(tmp_path / "unit", compute, config={"seed": 1})
    assert len(calls) == 1  # the second call read the saved result
    assert again["curve"] == [(1, 0.5)] and again["run"] == ("ppo", "CartPole-v1")
    torch.testing.assert_close(again["weights"][0], first["weights"][0])
    with pytest.raises(CheckpointMismatch, match="seed"):
        load_or_compute(tmp_path / "unit", compute, config={"seed": 2})
    load_or_compute(None, compute, config={"seed": 1})
    assert len(calls) == 2  # no folder: always computed


def test_loop_checkpoints_resume_a_killed_loop_exactly(tmp_path):
    """A loop with dropout (the global RNG), a batch generator, a python shuffler, Adam and a loss curve, killed in
    step 5 of 6 with checkpoints every 3 steps, resumes from step 3 and ends with the uninterrupted
    loop's weights and curve."""
    from aicanon.core.checkpoint import LoopCheckpoints

    def loop(folder, kill_at=None):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        batches, curve, order = torch.Generator().manual_seed(1), [], random.Random(2)
        checkpoints = LoopCheckpoints(
            folder,
            3,
            config={"run": 1},
            model=model,
            optimizer=optimizer,
            batches=batches,
            curve=curve,
            order=order,
        )
        start = checkpoints.resume()
        for step in range(start, 6):
            if step + 1 == kill_at:
                raise KeyboardInterrupt
            x = torch.randn(16, 4, generator=batches) * order.random()
            loss = model(x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
            checkpoints.done(step + 1, 6)
        return start, model, curve

    _, reference, reference_curve = loop(None)
    with pytest.raises(KeyboardInterrupt):
        loop(tmp_path / "loop", kill_at=5)
    torch.manual_seed(123)  # a fresh process: the global RNG is elsewhere
    start, resumed, curve = loop(tmp_path / "loop")
    assert start == 3 and curve == reference_curve
    for a, b in zip(resumed.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loop(tmp_path / "loop")[0] == 6  # finished: the final state was saved
    with pytest.raises(CheckpointMismatch):
        LoopCheckpoints(tmp_path / "loop", 3, config={"run": 2}, curve=[]).resume()
    with pytest.raises(TypeError, match="part 'model'"):
        LoopCheckpoints(tmp_path / "other", 3, config={}, model=object())
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        LoopCheckpoints(tmp_path / "other", 0, config={})
    assert LoopCheckpoints(None, 0, config={}).resume() == 0
