"""aicanon.rl.demonstrations: the file format's round trip (discrete and continuous), its documented
fields, subsets, rollouts that agree with the evaluation protocol, and clear errors for missing,
corrupt, foreign or inconsistent files and for demonstrations of another environment."""

from __future__ import annotations

import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest

from aicanon.rl.demonstrations import (
    FORMAT,
    FORMAT_VERSION,
    Demonstrations,
    generate_demonstrations,
    load_demonstrations,
    save_demonstrations,
)
from aicanon.rl.envs import POINT_MASS_ID, make_env
from aicanon.rl.evaluation import evaluate_policy

pytestmark = pytest.mark.paper("gail")


def _policy(env_id, seed=0):
    space = gym.make(env_id).action_space
    space.seed(seed)
    return lambda observation: space.sample()


@pytest.fixture(scope="module")
def cartpole():
    return generate_demonstrations(
        _policy("CartPole-v1"), "CartPole-v1", 3, seed=11, source="random", note="x"
    )


def test_generated_demonstrations_are_whole_episodes_matching_the_evaluation_protocol(cartpole):
    assert cartpole.num_episodes == 3 and cartpole.episode_starts[0]
    assert cartpole.actions.dtype == np.int64 and cartpole.observations.shape == (len(cartpole), 4)
    # The same policy draws, the same reset seeds: the same returns as evaluate_policy.
    evaluation = evaluate_policy(_policy("CartPole-v1"), lambda: make_env("CartPole-v1"), 3, seed=11)
    np.testing.assert_allclose(cartpole.episode_returns, evaluation.returns)
    np.testing.assert_array_equal(cartpole.episode_lengths, evaluation.lengths)
    meta = cartpole.metadata
    assert meta["env_id"] == "CartPole-v1" and meta["seed"] == 11 and meta["source"] == "random"
    assert meta["expert_return"] == pytest.approx(np.mean(evaluation.returns))
    assert meta["action_space"] == {"type": "Discrete", "n": 2} and meta["note"] == "x"


def test_round_trip_discrete(tmp_path, cartpole):
    path = save_demonstrations(tmp_path / "expert", cartpole)
    assert path.name == "expert.npz"
    loaded = load_demonstrations(path, env_id="CartPole-v1")
    for name in ("observations", "actions", "rewards", "episode_starts", "episode_ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cartpole, name))
    assert loaded.metadata == json.loads(json.dumps(cartpole.metadata))
    # The documented fields, readable by plain NumPy without pickle.
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {
            "observations",
            "actions",
            "rewards",
            "episode_starts",
            "episode_ids",
            "metadata",
        }
        meta = json.loads(str(archive["metadata"][()]))
        assert meta["format"] == FORMAT and meta["version"] == FORMAT_VERSION
        assert archive["episode_ids"].tolist() == (np.cumsum(archive["episode_starts"]) - 1).tolist()


def test_round_trip_continuous_and_subset(tmp_path):
    demonstrations = generate_demonstrations(_policy(POINT_MASS_ID), POINT_MASS_ID, 3, seed=2)
    assert demonstrations.actions.shape == (150, 2) and demonstrations.actions.dtype == np.float32
    loaded = load_demonstrations(save_demonstrations(tmp_path / "pm.npz", demonstrations))
    np.testing.assert_array_equal(loaded.actions, demonstrations.actions)
    two = loaded.subset(2)
    assert two.num_episodes == 2 and len(two) == 100
    assert two.metadata["expert_return"] == pytest.approx(np.mean(loaded.episode_returns[:2]))
    with pytest.raises(ValueError, match="episodes"):
        loaded.subset(4)


def test_missing_and_corrupt_files_raise_errors_naming_the_file(tmp_path, cartpole):
    missing = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_demonstrations(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_demonstrations(garbage)
    path = save_demonstrations(tmp_path / "good.npz", cartpole)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_demonstrations(truncated)


def _rewrite(path, target, **changes):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for name, value in changes.items():
        if value is None:
            arrays.pop(name)
        else:
            arrays[name] = value
    np.savez(target, **arrays)
    return target


def test_foreign_or_inconsistent_files_are_refused(tmp_path, cartpole):
    path = save_demonstrations(tmp_path / "good.npz", cartpole)
    with pytest.raises(ValueError, match="lacks the fields"):
        load_demonstrations(_rewrite(path, tmp_path / "a.npz", rewards=None))
    meta = json.loads(json.dumps(cartpole.metadata))
    with pytest.raises(ValueError, match="format version 99"):
        load_demonstrations(
            _rewrite(path, tmp_path / "b.npz", metadata=np.array(json.dumps({**meta, "version": 99})))
        )
    with pytest.raises(ValueError, match="not in the aicanon-demonstrations format"):
        load_demonstrations(
            _rewrite(path, tmp_path / "c.npz", metadata=np.array(json.dumps({"format": "x"})))
        )
    with pytest.raises(ValueError, match="rewards must have shape"):
        load_demonstrations(_rewrite(path, tmp_path / "d.npz", rewards=cartpole.rewards[:-1]))
    with pytest.raises(ValueError, match="episode_ids disagree"):
        load_demonstrations(_rewrite(path, tmp_path / "e.npz", episode_ids=np.zeros(len(cartpole), np.int64)))
    rewards = cartpole.rewards.copy()
    rewards[0] += 5
    with pytest.raises(ValueError, match="episode_returns disagree"):
        load_demonstrations(_rewrite(path, tmp_path / "f.npz", rewards=rewards))
    rewards[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        load_demonstrations(_rewrite(path, tmp_path / "g.npz", rewards=rewards))
    assert zipfile.is_zipfile(path)


def test_demonstrations_of_another_environment_are_refused(tmp_path, cartpole):
    path = save_demonstrations(tmp_path / "cartpole.npz", cartpole)
    with pytest.raises(ValueError, match=r"recorded in 'CartPole-v1', not in 'Acrobot-v1'"):
        load_demonstrations(path, env_id="Acrobot-v1")
    acrobot = gym.make("Acrobot-v1")
    with pytest.raises(ValueError, match=r"recorded in 'CartPole-v1', not in 'Acrobot-v1'"):
        cartpole.check_compatible(acrobot.observation_space, acrobot.action_space, "Acrobot-v1")
    with pytest.raises(ValueError, match="observations of shape"):
        cartpole.check_compatible(acrobot.observation_space, acrobot.action_space)
    box = gym.spaces.Box(-1, 1, shape=(2,))
    with pytest.raises(ValueError, match="discrete"):
        cartpole.check_compatible(gym.spaces.Box(-1, 1, shape=(4,)), box)
    with pytest.raises(ValueError, match=r"actions in \[0, 1\]"):
        cartpole.check_compatible(gym.spaces.Box(-1, 1, shape=(4,)), gym.spaces.Discrete(1))


def test_bad_arrays_are_rejected():
    with pytest.raises(ValueError, match="episode_starts\\[0\\] must be True"):
        Demonstrations(np.zeros((2, 3)), np.zeros(2, np.int64), np.zeros(2), np.array([False, True]))
    with pytest.raises(ValueError, match="actions must be"):
        Demonstrations(np.zeros((2, 3)), np.zeros(3, np.int64), np.zeros(2), np.array([True, False]))
    with pytest.raises(ValueError, match="observations must be"):
        Demonstrations(np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))
    with pytest.raises(TypeError, match="Demonstrations"):
        save_demonstrations("/tmp/x.npz", {"observations": []})
    with pytest.raises(TypeError, match="callable"):
        generate_demonstrations(None, "CartPole-v1", 1)
    with pytest.raises(ValueError, match="episodes"):
        generate_demonstrations(lambda o: 0, "CartPole-v1", 0)
