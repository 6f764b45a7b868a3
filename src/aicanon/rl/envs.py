"""Making environments the way every agent here needs them (Brockman et al. 2016, the Gym interface;
Gymnasium is its maintained successor): seeded, with episode statistics, as single or vectorised
environments; and one environment of our own for fast tests.

* :func:`make_env`: ``gymnasium.make`` plus Gymnasium's ``RecordEpisodeStatistics`` and, on request,
  ``RescaleAction`` to [−1, 1] (the squashed policies of SAC/TD3 act there) and a time limit.
  Seeding: ``seed`` seeds the first ``reset`` and the action space, so a run repeats.
* :func:`make_vector_env`: ``num_envs`` copies in one process (``SyncVectorEnv``, seeds
  ``seed, seed + 1, …``), optionally normalised (:mod:`aicanon.rl.wrappers`), with Gymnasium's
  same-step autoreset, the mode
  :class:`aicanon.rl.rollout.RolloutCollector` relies on (the final observation of an episode is in
  ``info["final_obs"]``). Each copy is wrapped in :class:`ReplayableEpisodes`, which records how its
  current episode began and the actions since, so an agent's checkpoint can put every copy back
  exactly where it was (:mod:`aicanon.rl.on_policy`).
* :class:`PointMass` (``aicanon/PointMass-v0``): a point in the plane pushed by a bounded force
  towards a goal drawn at reset; reward −distance, an episode of 50 steps. Continuous, two
  dimensions, solvable in a few thousand steps: the agents' fast tests run on it.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from aicanon.core.checks import check_int

__all__ = ["POINT_MASS_ID", "PointMass", "ReplayableEpisodes", "make_env", "make_vector_env"]

POINT_MASS_ID = "aicanon/PointMass-v0"


class PointMass(gym.Env):
    """A 2-D point mass: observation (position, velocity, goal) in R^6, action a force in [−1, 1]²;
    velocity ← 0.9 velocity + 0.1 force, position ← position + 0.2 velocity (clipped to [−2, 2]);
    reward −‖position − goal‖; 50 steps, never terminated (only truncated by the time limit)."""

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 50) -> None:
        spaces = gym.spaces
        self.horizon = check_int("horizon", horizon)
        high = np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.position = np.zeros(2)
        self.velocity = np.zeros(2)
        self.goal = np.zeros(2)
        self.steps = 0

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity, self.goal]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, size=2)
        self.velocity = np.zeros(2)
        self.goal = self.np_random.uniform(-1.0, 1.0, size=2)
        self.steps = 0
        return self._observation(), {}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        force = np.clip(action, -1.0, 1.0)
        self.velocity = 0.9 * self.velocity + 0.1 * force
        self.position = np.clip(self.position + 0.2 * self.velocity, -2.0, 2.0)
        self.steps += 1
        reward = -float(np.linalg.norm(self.position - self.goal))
        return self._observation(), reward, False, self.steps >= self.horizon, {}


if POINT_MASS_ID not in gym.registry:
    gym.register(POINT_MASS_ID, entry_point=PointMass)


def make_env(
    env_id: str,
    *,
    seed: int | None = None,
    rescale_actions: bool = False,
    max_episode_steps: int | None = None,
    **kwargs: Any,
):
    """One environment (module docstring); ``kwargs`` go to ``gymnasium.make``."""
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a registered environment id (str), got {type(env_id).__name__}")
    if env_id not in gym.registry:
        close = [name for name in gym.registry if env_id.split("-")[0].lower() in name.lower()][:5]
        raise ValueError(f"env_id {env_id!r} is not a registered Gymnasium environment (similar: {close})")
    check_int("max_episode_steps", max_episode_steps, allow_none=True)
    env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    if rescale_actions:
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"rescale_actions needs a Box action space, {env_id} has {env.action_space}")
        shape = env.action_space.shape
        low, high = np.full(shape, -1.0, dtype=np.float32), np.full(shape, 1.0, dtype=np.float32)
        env = gym.wrappers.RescaleAction(env, low, high)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def _plain(value: Any) -> Any:
    """A numpy bit generator's state as JSON-serialisable values (arrays become lists)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


class ReplayableEpisodes(gym.Wrapper):
    """Records how the current episode began (the reset's seed, or the state of the environment's
    RNG before an unseeded reset, e.g. an autoreset) and the actions taken since, so that
    :meth:`snapshot` and :meth:`restore` put the environment back at the same point of the same
    episode by replaying them. Exact for every environment whose randomness comes from its
    ``np_random`` (Gymnasium's convention); :meth:`restore` checks the replayed observation against
    the recorded one and refuses a mismatch. Transparent otherwise: it draws no random numbers."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._start: dict[str, Any] | None = None
        self._actions: list[np.ndarray] = []
        self._observation: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        rng = (
            None if seed is not None else _plain(copy.deepcopy(self.unwrapped.np_random.bit_generator.state))
        )
        self._start = {"seed": seed, "rng": rng, "options": options}
        self._actions = []
        observation, info = self.env.reset(seed=seed, options=options)
        self._observation = np.array(observation, copy=True)
        return observation, info

    def step(self, action):
        self._actions.append(np.array(action, copy=True))
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._observation = np.array(observation, copy=True)
        return observation, reward, terminated, truncated, info

    def snapshot(self) -> dict[str, Any]:
        """The current episode's start and actions, and the last observation (checkpointable)."""
        if self._start is None:
            raise RuntimeError("the environment has not been reset yet: there is no episode to snapshot")
        actions = np.stack(self._actions) if self._actions else np.zeros((0,))
        return {
            "start": copy.deepcopy(self._start),
            "actions": torch.from_numpy(np.ascontiguousarray(actions)),
            "steps": len(self._actions),
            "observation": torch.from_numpy(np.ascontiguousarray(self._observation)),
        }

    def restore(self, snapshot: dict[str, Any]) -> np.ndarray:
        """Reset as the snapshot's episode began, replay its actions; the observation reached."""
        start = snapshot["start"]
        if start["seed"] is None:
            self.unwrapped.np_random.bit_generator.state = copy.deepcopy(start["rng"])
        observation, _ = self.reset(seed=start["seed"], options=start["options"])
        actions = snapshot["actions"].numpy()
        for index in range(int(snapshot["steps"])):
            action = actions[index]
            observation, *_ = self.step(action.item() if action.ndim == 0 else action)
        saved = snapshot["observation"].numpy()
        if np.shape(observation) != saved.shape or not np.allclose(
            np.asarray(observation, np.float64), saved.astype(np.float64)
        ):
            raise ValueError(
                "replaying the checkpoint's episode did not reach its saved observation: the checkpoint "
                "belongs to another environment, or this environment is not deterministic given its RNG"
            )
        return observation


def make_vector_env(
    env_id: str,
    num_envs: int,
    *,
    seed: int = 0,
    normalize: dict[str, Any] | bool | None = None,
    **kwargs: Any,
):
    """``num_envs`` seeded copies of :func:`make_env`'s environment in one process, same-step autoreset;
    ``normalize`` (True or :class:`~aicanon.rl.wrappers.VectorNormalize`'s keyword arguments) wraps
    them in observation/reward normalisation with running statistics."""
    check_int("num_envs", num_envs)
    if normalize is not None and not isinstance(normalize, (bool, dict)):
        raise TypeError(
            f"normalize must be None, a bool or a dict of VectorNormalize options, got {normalize!r}"
        )

    def factory(index: int):
        return lambda: ReplayableEpisodes(make_env(env_id, seed=seed + index, **kwargs))

    envs = gym.vector.SyncVectorEnv(
        [factory(i) for i in range(num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    envs.action_space.seed(seed)
    if normalize:
        from aicanon.rl.wrappers import VectorNormalize

        envs = VectorNormalize(envs, **({} if normalize is True else normalize))
    return envs
