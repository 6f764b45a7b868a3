"""What every on-policy agent shares (A2C and REINFORCE, PPO, TRPO; Arulkumaran et al. 2017,
Section 5): the set-up, the loop, and checkpoints of the whole run.

* Set-up: ``num_envs`` seeded copies of a Gymnasium environment (:func:`aicanon.rl.envs.make_vector_env`,
  extra keyword arguments go there, e.g. ``normalize``), an MLP actor-critic
  (:meth:`aicanon.rl.networks.ActorCritic.for_spaces`), a :class:`aicanon.rl.rollout.RolloutCollector`
  and a generator for the updates' mini-batches, all seeded by ``seed``.
* Loop (:meth:`OnPolicyAgent.learn`): collect ``n_steps`` steps of every copy, GAE advantages and
  returns (:meth:`aicanon.rl.rollout.Rollout.advantages`), then the agent's own ``update`` on the flat
  batch, until the requested number of environment steps is done.
* Checkpoints: :meth:`OnPolicyAgent.state_dict` holds the whole run: the actor-critic, the agent's
  optimisers (``_optimizers``), the mini-batch generator and torch's global RNG (which samples the
  actions), the step counter and finished episodes, the normalisation statistics when the
  environments normalise, and each environment's position within its current episode (how it began
  and the actions since: :class:`aicanon.rl.envs.ReplayableEpisodes`), with the collector's
  running episode returns. :meth:`OnPolicyAgent.load_state_dict` replays each copy's episode to put
  it back where it was, so a run resumed from a checkpoint ends with exactly the weights of an
  uninterrupted run (tested for every agent). ``learn(..., checkpoint_dir=...)`` saves one with
  :func:`aicanon.core.checkpoint.save_checkpoint` after every ``checkpoint_every`` steps and resumes
  from one it finds there (saved with the same settings).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import torch
from torch import Tensor

from aicanon.core.checks import check_int
from aicanon.rl.envs import make_vector_env
from aicanon.rl.networks import ActorCritic
from aicanon.rl.rollout import RolloutCollector

__all__ = ["OnPolicyAgent"]


class OnPolicyAgent:
    """The shared set-up, loop and checkpoints (module docstring). Subclasses set ``name`` and
    ``config_type``, build their optimisers in ``_setup``, name them in ``_optimizers`` and
    implement ``update(batch) -> stats``; ``_before_rollout`` runs before every collection."""

    name = "agent"
    config_type: type = object

    def __init__(self, env_id: str, cfg: Any = None, seed: int = 0, **env_kwargs: Any) -> None:
        self.cfg = self._default_config() if cfg is None else cfg
        if not isinstance(self.cfg, self.config_type):
            wanted = self.config_type.__name__
            article = "an" if wanted[0] in "AEIOU" else "a"
            raise TypeError(f"cfg must be {article} {wanted}, got {type(self.cfg).__name__}")
        check_int("seed", seed, 0)
        cfg = self.cfg
        self.env_id, self.seed = env_id, seed
        self.envs = make_vector_env(env_id, cfg.num_envs, seed=seed, **env_kwargs)
        torch.manual_seed(seed)
        try:
            self.policy = ActorCritic.for_spaces(
                self.envs.single_observation_space, self.envs.single_action_space, hidden=cfg.hidden
            )
        except TypeError as error:
            self.envs.close()
            raise TypeError(f"{self.name} cannot act in {env_id}: {error}") from None
        self.collector = RolloutCollector(self.envs, seed=seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0
        self.episodes: list[tuple[float, int]] = []
        """(return, length) of every finished training episode."""
        self._setup()

    # ----------------------------------------------------------------- what subclasses provide
    def _default_config(self) -> Any:
        return self.config_type()

    def _setup(self) -> None:
        """Build the optimisers (and anything else the update needs)."""

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers whose state a checkpoint holds, by name."""
        return {}

    def _before_rollout(self, target: int) -> None:
        """Runs before every collection; ``target`` is the step the current ``learn`` call trains to
        (PPO's annealing horizon)."""

    def update(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    # ----------------------------------------------------------------------------------- loop
    def learn(
        self,
        steps: int,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
    ) -> list[tuple[float, int]]:
        """Train for at least ``steps`` more environment steps (all copies together); the episodes
        finished meanwhile. With ``checkpoint_dir``: resume from a checkpoint found there (then
        ``steps`` counts from the step the interrupted call started at, so rerunning the same call
        finishes the same run) and save one after every ``checkpoint_every`` steps (0: only at the
        end)."""
        from aicanon.core.checkpoint import load_checkpoint, save_checkpoint

        check_int("steps", steps)
        check_int("checkpoint_every", checkpoint_every, 0)
        target = self.steps + steps
        finished: list[tuple[float, int]] = []
        config = self._checkpoint_config() if checkpoint_dir is not None else None
        if checkpoint_dir is not None:
            resumed = load_checkpoint(checkpoint_dir, config=config)
            if resumed is not None:
                target = int(resumed["target"])
                self.load_state_dict(resumed["agent"])
                finished = [(float(r), int(n)) for r, n in resumed["finished"]]
        last_checkpoint = self.steps
        while self.steps < target:
            self._before_rollout(target)
            rollout = self.collector.collect(self.policy, self.cfg.n_steps)
            advantages, returns = rollout.advantages(self.cfg.gamma, self.cfg.gae_lambda)
            batch = rollout.flat() | {"advantages": advantages.flatten(), "returns": returns.flatten()}
            self.update(batch)
            self.steps += self.cfg.n_steps * self.cfg.num_envs
            finished.extend(rollout.episodes)
            self.episodes.extend(rollout.episodes)
            due = checkpoint_every and self.steps - last_checkpoint >= checkpoint_every
            if checkpoint_dir is not None and (due or self.steps >= target):
                state = {
                    "agent": self.state_dict(),
                    "target": target,
                    "finished": [list(e) for e in finished],
                }
                save_checkpoint(checkpoint_dir, state, config=config)
                last_checkpoint = self.steps
        return finished

    def _checkpoint_config(self) -> dict[str, Any]:
        cfg = asdict(self.cfg) if is_dataclass(self.cfg) else repr(self.cfg)
        return {"agent": self.name, "env_id": self.env_id, "seed": self.seed, "config": cfg}

    # ---------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The whole run (module docstring), for :func:`aicanon.core.checkpoint.save_checkpoint`.
        Every tensor is a copy: the state does not change as the agent goes on training."""
        state: dict[str, Any] = {
            "policy": {name: tensor.clone() for name, tensor in self.policy.state_dict().items()},
            "optimizers": {name: copy.deepcopy(o.state_dict()) for name, o in self._optimizers().items()},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "steps": self.steps,
            "episodes": [list(e) for e in self.episodes],
            "collector": self.collector.state_dict(),  # every environment's place in its episode
        }
        if hasattr(self.envs, "state_dict"):  # observation/reward normalisation statistics
            state["normalization"] = self.envs.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, replaying each environment's current episode."""
        expected = set(self.state_dict())
        if not isinstance(state, Mapping) or set(state) != expected:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"state does not fit {self.name}: keys {got}, expected {sorted(expected)}")
        optimizers = self._optimizers()
        if set(state["optimizers"]) != set(optimizers):
            raise ValueError(
                f"state holds optimisers {sorted(state['optimizers'])}, expected {sorted(optimizers)}"
            )
        self.policy.load_state_dict(state["policy"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["steps"])
        self.episodes = [(float(r), int(n)) for r, n in state["episodes"]]
        self.collector.load_state_dict(state["collector"])
        if "normalization" in state:
            self.envs.load_state_dict(state["normalization"])
