"""Observation and reward normalisation with running statistics, clipping and frame stacking: the
wrappers the agents need on top of :mod:`aicanon.rl.envs` (Brockman et al. 2016 define the
interface; these are the reference implementations' conventions: OpenAI baselines' and
stable-baselines3's ``VecNormalize``).

Running statistics (:class:`RunningMeanStd`) merge a batch of ``n_B`` values with mean ``μ_B`` and
variance ``σ_B²`` into ``n_A`` values seen so far by Chan, Golub & LeVeque's parallel update (1979)::

    n = n_A + n_B,   δ = μ_B − μ_A
    μ = μ_A + δ n_B / n
    σ² = (σ_A² n_A + σ_B² n_B + δ² n_A n_B / n) / n

starting from μ = 0, σ² = 1 and a pseudo-count n = 10⁻⁴ (the references' start).

Observations (:class:`ObservationNormalizer`) are centred and scaled per coordinate, then clipped::

    ô = clip((o − μ_o) / √(σ_o² + ε), −c_o, c_o)          (ε = 10⁻⁸, c_o = 10)

Rewards (:class:`RewardNormalizer`) are *scaled*, not centred, by the standard deviation of the
discounted return each environment has accumulated so far in its episode (centring would change
which policies are optimal, e.g. whether ending an episode early pays)::

    R_t = γ R_{t−1} + r_t        (R ← 0 after a step that ends the episode, terminated or truncated)
    r̂_t = clip(r_t / √(Var[R] + ε), −c_r, c_r)           (γ = 0.99, ε = 10⁻⁸, c_r = 10)

where Var[R] is the running variance of every R_t seen (updated with R_t before r_t is scaled).

Wrappers: :class:`NormalizeEnv` (one Gymnasium environment) and :class:`VectorNormalize` (a vector
environment of :func:`aicanon.rl.envs.make_vector_env`, same-step autoreset; the final observation
of an ended episode in ``info["final_obs"]`` is normalised too, with the statistics of that step,
and is not added to them: the conventions of stable-baselines3's ``VecNormalize`` on a
``DummyVecEnv``, which our vector wrapper reproduces exactly on the same trajectory). Both have

* ``training`` (``train()``/``eval()``): update the statistics or only apply them (evaluation and
  deployment use frozen statistics); ``observation_transform()`` returns a frozen copy of the
  observation normaliser for :func:`aicanon.rl.evaluation.evaluate_policy`;
* ``state_dict()``/``load_state_dict()``: the statistics and the running returns as tensors and
  plain numbers, so :func:`aicanon.core.checkpoint.save_checkpoint` stores them with an agent;
* ``original_observation``/``original_reward``: the last unnormalised values.

:func:`normalize_env` wraps either kind; :func:`frame_stack` is Gymnasium's
``FrameStackObservation`` (optionally flattened for the MLP agents).

Where Gymnasium's wrappers differ (ours follow the references above):

* ``gymnasium.wrappers.NormalizeObservation`` keeps float32 statistics and does not clip:
  ``RunningMeanStd(dtype=np.float32)`` with ``clip=None`` gives its values exactly. Its vector
  version refuses same-step autoreset (the mode our rollouts need).
* ``gymnasium.wrappers.NormalizeReward`` does not clip, and its accumulator is
  R_t = γ (1 − terminated_t) R_{t−1} + r_t: at a terminal step R is r_t alone (the episode's return
  is dropped at, not after, the terminal step), and a truncated episode's return carries into the
  next episode (the single-environment wrapper never resets R). Within an episode that ends by
  truncation or not at all the two agree exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from aicanon.core.checks import check_float, check_int

__all__ = [
    "NormalizeEnv",
    "ObservationNormalizer",
    "RewardNormalizer",
    "RunningMeanStd",
    "VectorNormalize",
    "frame_stack",
    "normalize_env",
]


def _finite_array(name: str, value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got an array of dtype {array.dtype}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must be finite, got non-finite values {array[~np.isfinite(array)][:5].tolist()}"
        )
    return array


class RunningMeanStd:
    """Running mean and variance of values of ``shape`` (Chan et al.'s parallel update, module
    docstring), kept in ``dtype`` (float64 as stable-baselines3; float32 as Gymnasium's wrappers)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4, dtype: Any = np.float64) -> None:
        if not isinstance(shape, tuple) or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}")
        check_float("epsilon", epsilon, 0.0, min_inclusive=False, finite=True)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.shape = shape
        self.mean = np.zeros(shape, self.dtype)
        self.var = np.ones(shape, self.dtype)
        self.count = float(epsilon)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def update(self, batch: Any) -> None:
        """Merge a batch ``[B, *shape]`` of finite values."""
        array = _finite_array("batch", batch)
        if array.ndim != len(self.shape) + 1 or array.shape[1:] != self.shape or array.shape[0] == 0:
            raise ValueError(
                f"batch must have shape [B >= 1, {', '.join(map(str, self.shape))}], got {array.shape}"
            )
        self._merge(np.mean(array, axis=0), np.var(array, axis=0), array.shape[0])

    def update_from_moments(self, batch_mean: Any, batch_var: Any, batch_count: float) -> None:
        """Merge ``batch_count`` values of mean ``batch_mean`` and (population) variance ``batch_var``."""
        check_float("batch_count", batch_count, 0.0, min_inclusive=False, finite=True)
        batch_mean = _finite_array("batch_mean", batch_mean, self.shape)
        batch_var = _finite_array("batch_var", batch_var, self.shape)
        if (batch_var < 0).any():
            raise ValueError(f"batch_var must be >= 0, got {batch_var}")
        self._merge(batch_mean, batch_var, batch_count)

    def _merge(self, batch_mean: Any, batch_var: Any, batch_count: float) -> None:
        # Chan et al.'s update (module docstring), in the references' order of operations.
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = (
            self.var * self.count
            + batch_var * batch_count
            + np.square(delta) * self.count * batch_count / total
        )
        self.mean = np.asarray(mean, dtype=self.dtype)
        self.var = np.asarray(m2 / total, dtype=self.dtype)
        self.count = float(total)

    def merge(self, other: RunningMeanStd) -> None:
        """Add another tracker's values (e.g. statistics gathered by parallel workers)."""
        if not isinstance(other, RunningMeanStd) or other.shape != self.shape:
            raise ValueError(f"other must be a RunningMeanStd of shape {self.shape}, got {other!r}")
        self._merge(other.mean, other.var, other.count)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(np.array(self.mean, dtype=self.dtype)),
            "var": torch.from_numpy(np.array(self.var, dtype=self.dtype)),
            "count": self.count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or set(state) != {"mean", "var", "count"}:
            raise ValueError(f"state must hold 'mean', 'var' and 'count', got {state!r:.200}")
        mean = np.asarray(torch.as_tensor(state["mean"]).numpy(), dtype=self.dtype)
        var = np.asarray(torch.as_tensor(state["var"]).numpy(), dtype=self.dtype)
        if mean.shape != self.shape or var.shape != self.shape:
            raise ValueError(
                f"state holds statistics of shape {mean.shape}/{var.shape}, this tracker's is {self.shape}"
            )
        check_float("state['count']", state["count"], 0.0, min_inclusive=False, finite=True)
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
            raise ValueError("state holds non-finite statistics or a negative variance")
        self.mean, self.var, self.count = mean, var, float(state["count"])

    def __repr__(self) -> str:
        return f"RunningMeanStd(shape={self.shape}, count={self.count:.6g}, dtype={self.dtype})"


def _check_clip(name: str, clip: float | None) -> float | None:
    return check_float(name, clip, 0.0, min_inclusive=False, allow_none=True)


class ObservationNormalizer:
    """ô = clip((o − μ_o) / √(σ_o² + ε), −clip, clip) per coordinate (module docstring); ``clip=None``
    does not clip. ``__call__`` updates the statistics with the batch first while ``training``."""

    def __init__(
        self,
        shape: tuple[int, ...],
        epsilon: float = 1e-8,
        clip: float | None = 10.0,
        dtype: Any = np.float64,
    ) -> None:
        self.epsilon = check_float("epsilon", epsilon, 0.0, min_inclusive=False, finite=True)
        self.clip = _check_clip("clip", clip)
        self.statistics = RunningMeanStd(tuple(shape), dtype=dtype)
        self.training = True

    @property
    def shape(self) -> tuple[int, ...]:
        return self.statistics.shape

    def _batch(self, observations: Any) -> tuple[np.ndarray, bool]:
        array = _finite_array("observations", observations)
        if array.shape == self.shape:
            return array[None], True
        if array.shape[1:] != self.shape or array.ndim != len(self.shape) + 1:
            raise ValueError(
                f"observations must have shape {self.shape} or [B, {', '.join(map(str, self.shape))}], "
                f"got {array.shape}"
            )
        return array, False

    def normalize(self, observations: Any) -> np.ndarray:
        """Apply the current statistics (no update) to one observation or a batch; float32."""
        array, single = self._batch(observations)
        out = self._apply(array)
        return out[0] if single else out

    def _apply(self, array: np.ndarray) -> np.ndarray:
        stats = self.statistics
        out = (array - stats.mean) / np.sqrt(stats.var + self.epsilon)
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out.astype(np.float32)

    def __call__(self, observations: Any) -> np.ndarray:
        array, single = self._batch(observations)  # checked: shape and finite values
        if self.training:
            self.statistics._merge(np.mean(array, axis=0), np.var(array, axis=0), array.shape[0])
        out = self._apply(array)
        return out[0] if single else out

    def frozen(self) -> ObservationNormalizer:
        """A copy with the current statistics that never updates them (evaluation)."""
        twin = copy.deepcopy(self)
        twin.training = False
        return twin

    def state_dict(self) -> dict[str, Any]:
        return {"statistics": self.statistics.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.statistics.load_state_dict(state["statistics"])


class RewardNormalizer:
    """Return-based reward scaling for ``num_envs`` environments (module docstring):
    ``__call__(rewards, dones)`` adds the rewards to each environment's discounted return R, updates
    Var[R] while ``training``, scales, then resets R where ``dones``."""

    def __init__(
        self, num_envs: int = 1, gamma: float = 0.99, epsilon: float = 1e-8, clip: float | None = 10.0
    ) -> None:
        self.num_envs = check_int("num_envs", num_envs)
        self.gamma = check_float("gamma", gamma, 0.0, 1.0)
        self.epsilon = check_float("epsilon", epsilon, 0.0, min_inclusive=False, finite=True)
        self.clip = _check_clip("clip", clip)
        self.statistics = RunningMeanStd(())
        self.returns = np.zeros(num_envs)
        self.training = True

    def normalize(self, rewards: Any) -> np.ndarray:
        """Scale by the current statistics (no update, R untouched)."""
        return self._scale(_finite_array("rewards", rewards))

    def _scale(self, rewards: np.ndarray) -> np.ndarray:
        out = rewards / np.sqrt(self.statistics.var + self.epsilon)
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out

    def __call__(self, rewards: Any, dones: Any) -> np.ndarray:
        rewards = _finite_array("rewards", rewards, (self.num_envs,))
        dones = np.asarray(dones, dtype=bool)
        if dones.shape != (self.num_envs,):
            raise ValueError(f"dones must have shape ({self.num_envs},), got {dones.shape}")
        self.returns = self.returns * self.gamma + rewards
        if self.training:
            self.statistics._merge(np.mean(self.returns), np.var(self.returns), self.num_envs)
        out = self._scale(rewards)
        self.returns[dones] = 0.0
        return out

    def reset(self) -> None:
        """Start every environment's return afresh (a reset of all environments)."""
        self.returns = np.zeros(self.num_envs)

    def state_dict(self) -> dict[str, Any]:
        return {"statistics": self.statistics.state_dict(), "returns": torch.from_numpy(self.returns.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        returns = np.asarray(torch.as_tensor(state["returns"]).numpy(), dtype=np.float64)
        if returns.shape != (self.num_envs,):
            raise ValueError(
                f"state holds returns of {returns.shape[0]} environments, this has {self.num_envs}"
            )
        self.statistics.load_state_dict(state["statistics"])
        self.returns = returns.copy()


class _Normalizing:
    """What the single and the vector wrapper share: settings, train/eval, state."""

    obs_normalizer: ObservationNormalizer | None
    reward_normalizer: RewardNormalizer | None

    def _setup(
        self,
        observation_space: Any,
        num_envs: int,
        observations: bool,
        rewards: bool,
        gamma: float,
        epsilon: float,
        clip_observations: float | None,
        clip_rewards: float | None,
    ) -> Any:
        if not isinstance(observations, bool) or not isinstance(rewards, bool):
            raise TypeError(f"observations and rewards must be bools, got {observations!r} and {rewards!r}")
        self.obs_normalizer = self.reward_normalizer = None
        space = observation_space
        if observations:
            if not isinstance(observation_space, gym.spaces.Box):
                raise TypeError(
                    f"observation normalisation needs a Box observation space, got {observation_space!r}"
                )
            self.obs_normalizer = ObservationNormalizer(observation_space.shape, epsilon, clip_observations)
            bound = np.inf if clip_observations is None else float(clip_observations)
            space = gym.spaces.Box(-bound, bound, shape=observation_space.shape, dtype=np.float32)
        if rewards:
            self.reward_normalizer = RewardNormalizer(num_envs, gamma, epsilon, clip_rewards)
        self._training = True
        self.original_observation: np.ndarray | None = None
        self.original_reward: np.ndarray | None = None
        return space

    @property
    def training(self) -> bool:
        """Update the statistics (True) or only apply them (False: evaluation, deployment)."""
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"training must be a bool, got {type(mode).__name__}")
        self._training = mode
        for normalizer in (self.obs_normalizer, self.reward_normalizer):
            if normalizer is not None:
                normalizer.training = mode

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def observation_transform(self) -> Callable[[np.ndarray], np.ndarray]:
        """A frozen copy of the observation normalisation (identity without one): give it to
        :func:`aicanon.rl.evaluation.evaluate_policy` as ``observation_transform``."""
        if self.obs_normalizer is None:
            return lambda observation: observation
        return self.obs_normalizer.frozen().normalize

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"training": self._training}
        if self.obs_normalizer is not None:
            state["observations"] = self.obs_normalizer.state_dict()
        if self.reward_normalizer is not None:
            state["rewards"] = self.reward_normalizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"training"} | {
            key
            for key, normalizer in (
                ("observations", self.obs_normalizer),
                ("rewards", self.reward_normalizer),
            )
            if normalizer is not None
        }
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state must hold {sorted(expected)} (this wrapper's normalisers), got {got}")
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state_dict(state["observations"])
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state["rewards"])
        self.training = bool(state["training"])

    def _observation(self, observation: Any) -> Any:
        self.original_observation = observation
        return observation if self.obs_normalizer is None else self.obs_normalizer(observation)

    def _reward(self, reward: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.original_reward = reward
        if self.reward_normalizer is None:
            _finite_array("rewards", reward)
            return reward
        return self.reward_normalizer(reward, dones)


class NormalizeEnv(_Normalizing, gym.Wrapper):
    """Observation and/or reward normalisation of one Gymnasium environment (module docstring).

    Observations update the statistics on reset and on every step (the terminal one included);
    the return R restarts on ``reset`` and after a terminated or truncated step."""

    def __init__(
        self,
        env: gym.Env,
        *,
        observations: bool = True,
        rewards: bool = True,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        clip_observations: float | None = 10.0,
        clip_rewards: float | None = 10.0,
    ) -> None:
        if not isinstance(env, gym.Env):
            raise TypeError(f"env must be a gymnasium.Env, got {type(env).__name__}")
        gym.Wrapper.__init__(self, env)
        self.observation_space = self._setup(
            env.observation_space, 1, observations, rewards, gamma, epsilon, clip_observations, clip_rewards
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        observation, info = self.env.reset(seed=seed, options=options)
        if self.reward_normalizer is not None:
            self.reward_normalizer.reset()
        return self._observation(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        done = np.array([bool(terminated or truncated)])
        scaled = self._reward(np.array([float(reward)]), done)
        return self._observation(observation), float(scaled[0]), terminated, truncated, info


class VectorNormalize(_Normalizing, gym.vector.VectorWrapper):
    """Observation and/or reward normalisation of a Gymnasium vector environment with same-step
    autoreset (:func:`aicanon.rl.envs.make_vector_env`): stable-baselines3's ``VecNormalize``
    (module docstring)."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        *,
        observations: bool = True,
        rewards: bool = True,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        clip_observations: float | None = 10.0,
        clip_rewards: float | None = 10.0,
    ) -> None:
        if not isinstance(env, gym.vector.VectorEnv):
            raise TypeError(f"env must be a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(
                "env must use same-step autoreset (aicanon.rl.envs.make_vector_env), "
                f"got autoreset_mode={mode!r}"
            )
        gym.vector.VectorWrapper.__init__(self, env)
        single = self._setup(
            env.single_observation_space,
            env.num_envs,
            observations,
            rewards,
            gamma,
            epsilon,
            clip_observations,
            clip_rewards,
        )
        if observations:
            self.single_observation_space = single
            self.observation_space = gym.vector.utils.batch_space(single, env.num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        observations, info = self.env.reset(seed=seed, options=options)
        if self.reward_normalizer is not None:
            self.reward_normalizer.reset()
        return self._observation(observations), info

    def step(self, actions):
        observations, rewards, terminated, truncated, info = self.env.step(actions)
        dones = np.logical_or(terminated, truncated)
        scaled = self._reward(np.asarray(rewards, dtype=np.float64), dones)
        normalized = self._observation(observations)
        if self.obs_normalizer is not None and dones.any() and "final_obs" in info:
            # The last observation of each ended episode, normalised with this step's statistics.
            final = info["final_obs"].copy()
            for i in np.flatnonzero(dones):
                final[i] = self.obs_normalizer.normalize(final[i])
            info = {**info, "final_obs": final}
        return normalized, scaled, terminated, truncated, info


def normalize_env(env: Any, **kwargs: Any) -> NormalizeEnv | VectorNormalize:
    """Wrap the output of :func:`aicanon.rl.envs.make_env` (:class:`NormalizeEnv`) or of
    :func:`aicanon.rl.envs.make_vector_env` (:class:`VectorNormalize`); ``kwargs`` are theirs."""
    if isinstance(env, gym.vector.VectorEnv):
        return VectorNormalize(env, **kwargs)
    if isinstance(env, gym.Env):
        return NormalizeEnv(env, **kwargs)
    raise TypeError(f"env must be a gymnasium.Env or gymnasium.vector.VectorEnv, got {type(env).__name__}")


def frame_stack(
    env: gym.Env, stack_size: int, *, flatten: bool = False, padding_type: str = "reset"
) -> gym.Env:
    """The last ``stack_size`` observations stacked along a new first axis (Gymnasium's
    ``FrameStackObservation``, padded at reset with ``padding_type``: ``"reset"`` repeats the first
    observation, ``"zero"`` pads with zeros); ``flatten`` then flattens them into one vector (the
    MLP agents need a flat Box). For partially observed tasks where velocities must be inferred."""
    if not isinstance(env, gym.Env):
        raise TypeError(f"env must be a gymnasium.Env, got {type(env).__name__}")
    check_int("stack_size", stack_size)
    if padding_type not in ("reset", "zero"):
        raise ValueError(f"padding_type must be 'reset' or 'zero', got {padding_type!r}")
    stacked = gym.wrappers.FrameStackObservation(env, stack_size, padding_type=padding_type)
    return gym.wrappers.FlattenObservation(stacked) if flatten else stacked
