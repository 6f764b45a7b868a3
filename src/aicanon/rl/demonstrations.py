"""Expert demonstrations: a documented file format, its reader and writer, and rolling out a trained
agent to produce them (what GAIL and behavioural cloning learn from; Ho & Ermon 2016, Section 6:
"trajectories sampled from the expert policy").

**File format** (``aicanon-demonstrations``, version 1): one NumPy ``.npz`` archive (read with
``allow_pickle=False``; nothing in it is a Python object) holding, for ``N`` steps of ``E`` episodes
laid end to end:

=================  ==========================  =========================================================
field              dtype, shape                meaning
=================  ==========================  =========================================================
``observations``   float32 ``[N, *obs_shape]`` the observation the expert acted on
``actions``        int64 ``[N]`` (Discrete) or the action the environment executed (a Box action is
                   float32 ``[N, action_dim]`` stored after clipping to the box)
``rewards``        float32 ``[N]``             the environment's reward for that step (for reference:
                                               imitation never reads it)
``episode_starts`` bool ``[N]``                True on the first step of each episode (index 0 is True)
``episode_ids``    int64 ``[N]``               0, 0, ..., 1, 1, ...: ``cumsum(episode_starts) - 1``
                                               (redundant, stored for readers; checked on load)
``metadata``       0-d unicode string          JSON: ``format``, ``version``, ``env_id``,
                                               ``expert_return`` (mean undiscounted episode return),
                                               ``episode_returns``, ``episode_lengths``, ``seed`` (episode
                                               ``i`` was reset with ``seed + i``), ``deterministic``,
                                               ``observation_shape``, ``action_space`` (``{"type":
                                               "Discrete", "n"}`` or ``{"type": "Box", "shape", "low",
                                               "high"}``), ``source`` (what produced them) and any extra
                                               keys the writer adds
=================  ==========================  =========================================================

Episodes are whole: every episode ran until the environment terminated or truncated it.
:func:`save_demonstrations` writes under a temporary name and renames (a killed write leaves no
half file); :func:`load_demonstrations` checks every field's dtype, shape and consistency and raises
``FileNotFoundError``/``ValueError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_int

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Demonstrations",
    "describe_action_space",
    "generate_demonstrations",
    "load_demonstrations",
    "save_demonstrations",
]

FORMAT = "aicanon-demonstrations"
FORMAT_VERSION = 1
_ARRAYS = ("observations", "actions", "rewards", "episode_starts", "episode_ids")


def describe_action_space(space: Any) -> dict[str, Any]:
    """A Gymnasium action space as JSON (``Discrete`` or a flat ``Box``); TypeError for others."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return {
            "type": "Box",
            "shape": list(space.shape),
            "low": [float(x) for x in space.low],
            "high": [float(x) for x in space.high],
        }
    raise TypeError(f"demonstrations handle Discrete or flat Box action spaces, got {space!r}")


@dataclass
class Demonstrations:
    """Expert steps of whole episodes (the module docstring's fields; ``metadata`` as a dict)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_starts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32)
        self.episode_starts = np.asarray(self.episode_starts, dtype=bool)
        actions = np.asarray(self.actions)
        self.actions = actions.astype(np.int64) if actions.dtype.kind in "iub" else actions.astype(np.float32)
        _validate(self, "demonstrations")

    # ------------------------------------------------------------ derived views
    @property
    def env_id(self) -> str:
        return str(self.metadata.get("env_id", ""))

    @property
    def episode_ids(self) -> np.ndarray:
        return np.cumsum(self.episode_starts).astype(np.int64) - 1

    @property
    def num_episodes(self) -> int:
        return int(self.episode_starts.sum())

    @property
    def episode_returns(self) -> np.ndarray:
        return np.bincount(self.episode_ids, weights=self.rewards.astype(np.float64))

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.bincount(self.episode_ids)

    @property
    def discrete(self) -> bool:
        return self.actions.ndim == 1

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    def subset(self, episodes: int) -> Demonstrations:
        """The first ``episodes`` episodes (the paper's dataset sizes are prefixes of one pool)."""
        check_int(
            "episodes", episodes, 1, self.num_episodes, note=f"these demonstrations hold {self.num_episodes}"
        )
        end = (
            len(self) if episodes == self.num_episodes else int(np.flatnonzero(self.episode_starts)[episodes])
        )
        returns = self.episode_returns[:episodes]
        metadata = dict(self.metadata)
        metadata.update(
            episode_returns=[float(r) for r in returns],
            episode_lengths=[int(n) for n in self.episode_lengths[:episodes]],
            expert_return=float(np.mean(returns)),
        )
        return Demonstrations(
            self.observations[:end],
            self.actions[:end],
            self.rewards[:end],
            self.episode_starts[:end],
            metadata,
        )

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(observations float32 ``[N, D]``, actions int64 ``[N]`` or float32 ``[N, A]``) as tensors."""
        return (
            torch.as_tensor(self.observations, device=device),
            torch.as_tensor(self.actions, device=device),
        )

    def check_compatible(self, observation_space: Any, action_space: Any, env_id: str | None = None) -> None:
        """ValueError naming both sides when these demonstrations were not recorded in an
        environment with these spaces (or, given ``env_id``, in that environment)."""
        if env_id is not None and self.env_id and self.env_id != env_id:
            raise ValueError(
                f"demonstrations were recorded in {self.env_id!r}, not in {env_id!r}: imitation needs the "
                "expert's own environment"
            )
        shape = tuple(getattr(observation_space, "shape", ()) or ())
        if tuple(self.observations.shape[1:]) != shape:
            raise ValueError(
                f"demonstrations have observations of shape {tuple(self.observations.shape[1:])}, the "
                f"environment's observation space is {observation_space!r}"
            )
        wanted = describe_action_space(action_space)
        if wanted["type"] == "Discrete":
            if not self.discrete:
                raise ValueError(
                    f"demonstrations hold continuous actions of shape {self.actions.shape[1:]}, the "
                    f"environment's action space is {action_space!r}"
                )
            if self.actions.size and (self.actions.min() < 0 or self.actions.max() >= wanted["n"]):
                raise ValueError(
                    f"demonstrations hold actions in [{self.actions.min()}, {self.actions.max()}], the "
                    f"environment's action space is {action_space!r}"
                )
        elif self.discrete or list(self.actions.shape[1:]) != wanted["shape"]:
            raise ValueError(
                f"demonstrations hold actions of shape {tuple(self.actions.shape[1:])} "
                f"({'discrete' if self.discrete else 'continuous'}), the environment's action space is "
                f"{action_space!r}"
            )
        stored = self.metadata.get("action_space")
        if stored is not None and stored != wanted:
            raise ValueError(
                f"demonstrations were recorded with action space {stored}, the environment has {wanted}"
            )


def _validate(demonstrations: Demonstrations, where: str) -> None:
    """ValueError saying what is inconsistent (``where`` names the file or the object)."""
    observations, actions = demonstrations.observations, demonstrations.actions
    rewards, starts = demonstrations.rewards, demonstrations.episode_starts
    n = observations.shape[0] if observations.ndim else 0
    if observations.ndim < 2 or n == 0:
        raise ValueError(
            f"{where}: observations must be [N >= 1, *obs_shape], got shape {observations.shape}"
        )
    if actions.ndim not in (1, 2) or actions.shape[0] != n:
        raise ValueError(
            f"{where}: actions must be [N] or [N, action_dim] with N = {n}, got shape {actions.shape}"
        )
    if actions.ndim == 2 and actions.dtype.kind != "f":
        raise ValueError(f"{where}: actions of shape [N, action_dim] must be floats, got {actions.dtype}")
    for name, array in (("rewards", rewards), ("episode_starts", starts)):
        if array.shape != (n,):
            raise ValueError(f"{where}: {name} must have shape ({n},), got {array.shape}")
    if not starts[0]:
        raise ValueError(f"{where}: episode_starts[0] must be True (the data begins with an episode)")
    for name, array in (("observations", observations), ("rewards", rewards), ("actions", actions)):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{where}: {name} hold non-finite values")
    if not isinstance(demonstrations.metadata, Mapping):
        raise ValueError(f"{where}: metadata must be a dict, got {type(demonstrations.metadata).__name__}")


def _metadata(demonstrations: Demonstrations) -> dict[str, Any]:
    metadata = dict(demonstrations.metadata)
    returns = demonstrations.episode_returns
    metadata.update(
        format=FORMAT,
        version=FORMAT_VERSION,
        episodes=demonstrations.num_episodes,
        steps=len(demonstrations),
        episode_returns=[float(r) for r in returns],
        episode_lengths=[int(n) for n in demonstrations.episode_lengths],
        expert_return=float(np.mean(returns)),
        observation_shape=list(demonstrations.observations.shape[1:]),
    )
    return metadata


def save_demonstrations(path: str | os.PathLike, demonstrations: Demonstrations) -> Path:
    """Write ``demonstrations`` to ``path`` (``.npz`` is appended when missing) atomically; returns
    the path written."""
    if not isinstance(demonstrations, Demonstrations):
        raise TypeError(f"demonstrations must be a Demonstrations, got {type(demonstrations).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = json.dumps(_metadata(demonstrations), sort_keys=True)
    arrays = {
        "observations": demonstrations.observations,
        "actions": demonstrations.actions,
        "rewards": demonstrations.rewards,
        "episode_starts": demonstrations.episode_starts,
        "episode_ids": demonstrations.episode_ids,
        "metadata": np.array(metadata),
    }
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def load_demonstrations(path: str | os.PathLike, env_id: str | None = None) -> Demonstrations:
    """Read a demonstrations file (module docstring). ``env_id``: refuse demonstrations recorded in
    another environment. FileNotFoundError or ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demonstrations file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in (*_ARRAYS, "metadata") if name not in archive.files]
            if missing:
                raise ValueError(f"it lacks the fields {missing} (found {sorted(archive.files)})")
            arrays = {name: archive[name] for name in (*_ARRAYS, "metadata")}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"demonstrations file {path} is not a readable .npz archive ({error})") from None
    except ValueError as error:
        raise ValueError(f"demonstrations file {path} is not in the {FORMAT} format: {error}") from None
    try:
        metadata = json.loads(str(arrays["metadata"][()]))
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"demonstrations file {path}: its metadata is not JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(
            f"demonstrations file {path} is not in the {FORMAT} format (metadata {metadata!r:.200})"
        )
    if metadata.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"demonstrations file {path} has format version {metadata.get('version')!r}; this reader "
            f"reads version {FORMAT_VERSION}"
        )
    for name, kinds in (("observations", "f"), ("actions", "fiu"), ("rewards", "f"), ("episode_starts", "b")):
        if arrays[name].dtype.kind not in kinds:
            raise ValueError(f"demonstrations file {path}: {name} has dtype {arrays[name].dtype}")
    try:
        demonstrations = Demonstrations(
            arrays["observations"], arrays["actions"], arrays["rewards"], arrays["episode_starts"], metadata
        )
    except ValueError as error:
        raise ValueError(f"demonstrations file {path}: {error}") from None
    if not np.array_equal(arrays["episode_ids"], demonstrations.episode_ids):
        raise ValueError(f"demonstrations file {path}: episode_ids disagree with episode_starts")
    returns = metadata.get("episode_returns")
    if returns is not None and (
        len(returns) != demonstrations.num_episodes
        or not np.allclose(returns, demonstrations.episode_returns, rtol=1e-4, atol=1e-3)
    ):
        raise ValueError(f"demonstrations file {path}: metadata episode_returns disagree with the rewards")
    if env_id is not None and demonstrations.env_id != env_id:
        raise ValueError(
            f"demonstrations file {path} was recorded in {demonstrations.env_id!r}, not in {env_id!r}"
        )
    return demonstrations


def generate_demonstrations(
    policy: Callable[[np.ndarray], Any],
    env_id: str,
    episodes: int,
    seed: int = 0,
    *,
    deterministic: bool = True,
    source: str = "",
    env_factory: Callable[[], Any] | None = None,
    **metadata: Any,
) -> Demonstrations:
    """Roll out ``policy`` (one observation -> one action, e.g. ``agent.policy.act``) for
    ``episodes`` whole episodes of ``env_id`` (episode ``i`` reset with ``seed + i``, as
    :func:`aicanon.rl.evaluation.evaluate_policy` does) and record every step. ``deterministic`` and
    ``source`` are recorded in the metadata (say what the policy is); extra keyword arguments too.
    ``env_factory`` builds the environment (default :func:`aicanon.rl.envs.make_env`)."""
    from gymnasium import spaces

    from aicanon.rl.envs import make_env

    check_int("episodes", episodes)
    check_int("seed", seed, 0)
    if not callable(policy):
        raise TypeError(f"policy must be a callable observation -> action, got {type(policy).__name__}")
    env = env_factory() if env_factory is not None else make_env(env_id)
    action_space = env.action_space
    description = describe_action_space(action_space)
    observations, actions, rewards, starts = [], [], [], []
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            done, first = False, True
            while not done:
                action = policy(observation)
                if isinstance(action_space, spaces.Box):
                    action = np.clip(
                        np.asarray(action, dtype=np.float32), action_space.low, action_space.high
                    )
                else:
                    action = int(action)
                next_observation, reward, terminated, truncated, _ = env.step(action)
                if not math.isfinite(float(reward)):
                    raise ValueError(f"{env_id} returned a non-finite reward {reward} in episode {episode}")
                observations.append(np.asarray(observation, dtype=np.float32))
                actions.append(action)
                rewards.append(float(reward))
                starts.append(first)
                first = False
                done = bool(terminated or truncated)
                observation = next_observation
    finally:
        env.close()
    info = dict(metadata)
    info.update(
        env_id=env_id, seed=seed, deterministic=bool(deterministic), source=source, action_space=description
    )
    demonstrations = Demonstrations(
        np.stack(observations), np.stack(actions), np.array(rewards), np.array(starts), info
    )
    demonstrations.metadata = _metadata(demonstrations)
    return demonstrations
