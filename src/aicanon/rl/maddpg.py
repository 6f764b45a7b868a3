"""MADDPG: multi-agent deep deterministic policy gradient with centralised critics and decentralised
actors (Lowe et al., "Multi-Agent Actor-Critic for Mixed Cooperative-Competitive Environments", 2017),
and independent DDPG, its baseline, as the same code with local critics.

Each of the N agents has an actor mu_i(o_i) that sees only its own observation (decentralised
execution) and a critic Q_i that, during training, sees every agent's observation and action
(centralised training). With x = (o_1, ..., o_N) and a_j the actions:

* actor gradient (Eq. 6)::

      grad J(mu_i) = E_{x, a ~ D} [ grad mu_i(o_i) grad_{a_i} Q_i^mu(x, a_1, ..., a_N) |_{a_i = mu_i(o_i)} ]

  the other agents' actions a_j (j != i) come from the replay buffer D;
* critic loss (Eq. 7)::

      L(theta_i) = E_{x, a, r, x'} [ (Q_i^mu(x, a_1, ..., a_N) - y)^2 ],
      y = r_i + gamma Q_i^mu'(x', a'_1, ..., a'_N) |_{a'_j = mu'_j(o'_j)}

  with mu' the target actors and Q' the target critic, both Polyak averages
  theta' <- tau theta + (1 - tau) theta' (DDPG's target networks);
* independent DDPG (the paper's baseline): the same, with Q_i(o_i, a_i): each agent treats the
  others as part of the environment. :func:`critic_input` builds both layouts.

Discrete actions (Section 5, "we use the Gumbel-Softmax estimator") are one-hot vectors; the actor
outputs logits l and the action is the straight-through Gumbel-softmax sample::

      y = softmax((l + g) / T),  g_k = -log(-log u_k),  u_k ~ U(0, 1)
      forward: onehot(argmax y),  backward: the gradient of y

so the critic sees the same one-hot actions the environment received, and grad_{a_i} Q flows to the
actor through the relaxed sample (:func:`gumbel_softmax`).

Policy ensembles (Section 4.3, Eq. 8-9): with ``ensemble_size = K > 1`` agent i keeps K sub-policies
mu_i^(k), one drawn uniformly at random per episode; each sub-policy has its own replay buffer
D_i^(k) (the transitions of the episodes where it acted), its own critic and target networks, and is
trained on its own buffer; the target action a'_j of another agent is computed by the target network
of the sub-policy that agent ran in that transition (stored in the buffer).

Departures from the paper (and from its released code, openai/maddpg):

* The environment receives the discrete action (PettingZoo's ``continuous_actions=False``), and
  replay stores it as an index: the original code passes the soft Gumbel-softmax vector to the
  environment as a continuous force and stores it. Ours is the straight-through estimator the issue
  asks for; the critic therefore sees one-hot actions, and the target actions a'_j are one-hot
  Gumbel samples of the target actors.
* Everything else follows the released code's defaults: two hidden layers of 64 ReLU units, Adam
  with learning rate 0.01 for actors and critics, gamma 0.95, tau 0.01, gradient norm clipped at 0.5,
  a 1e-3 penalty on the squared logits of the actor, batch 1024, one update of every agent per 100
  environment steps; ``MADDPGConfig`` exposes all of them (the quick experiment changes some).
* Each agent (and sub-policy) draws its own minibatch; the released code uses one set of indices for
  all agents in an update.
* Evaluation acts greedily (the argmax of the logits); training acts with Gumbel samples.
* The paper's approximation of other agents' policies (Section 4.2) is not implemented: the critic
  uses the true actions of the others, as in the paper's main results.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.networks import mlp

__all__ = [
    "MADDPG",
    "MADDPGConfig",
    "EpisodeLog",
    "critic_input",
    "critic_target",
    "gumbel_noise",
    "gumbel_softmax",
    "run_episodes",
    "spaces_of",
    "train",
]


def gumbel_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard Gumbel noise ``-log(-log u)``, ``u ~ U(0, 1)``, of ``like``'s shape, dtype and device."""
    uniform = torch.rand(like.shape, generator=generator, dtype=like.dtype).to(like.device)
    # u in [0, 1): clamp away 0 and 1 so that -log(-log u) is finite.
    uniform = uniform.clamp(torch.finfo(like.dtype).tiny, 1.0 - torch.finfo(like.dtype).eps)
    return -torch.log(-torch.log(uniform))


def gumbel_softmax(
    logits: Tensor, temperature: float = 1.0, *, hard: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """A Gumbel-softmax sample over the last dimension of ``logits`` (Jang et al. 2017; Maddison et
    al. 2017): ``softmax((logits + g) / temperature)`` with ``g`` standard Gumbel noise drawn from
    ``generator``. With ``hard`` the forward value is the one-hot argmax of that sample and the
    gradient is the relaxed sample's (the straight-through estimator)."""
    check_tensor("logits", logits, floating=True)
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have a last dimension of size >= 1, got shape {tuple(logits.shape)}")
    check_float("temperature", temperature, 0, min_inclusive=False, finite=True)
    soft = torch.softmax((logits + gumbel_noise(logits, generator)) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


def critic_input(
    observations: Sequence[Tensor], actions: Sequence[Tensor], agent: int, centralised: bool
) -> Tensor:
    """The critic's input for ``agent``: ``[o_1, ..., o_N, a_1, ..., a_N]`` (all observations, then
    all actions, in agent order; the layout of the released code) when ``centralised``, else
    ``[o_i, a_i]`` (independent DDPG). Every tensor is ``[batch, features]``."""
    if len(observations) != len(actions) or not observations:
        raise ValueError(
            "observations and actions must hold one tensor per agent, "
            f"got {len(observations)} and {len(actions)}"
        )
    check_int("agent", agent, 0, len(observations) - 1)
    if centralised:
        return torch.cat([*observations, *actions], dim=-1)
    return torch.cat([observations[agent], actions[agent]], dim=-1)


def critic_target(reward: Tensor, terminated: Tensor, next_value: Tensor, gamma: float) -> Tensor:
    """Eq. 7's target ``y = r + gamma (1 - terminated) Q'(x', a')`` (no bootstrap past a true end;
    a time limit is not one)."""
    check_float("gamma", gamma, 0, 1)
    if reward.shape != terminated.shape or reward.shape != next_value.shape:
        raise ValueError(
            f"reward, terminated and next_value must have the same shape, got {tuple(reward.shape)}, "
            f"{tuple(terminated.shape)}, {tuple(next_value.shape)}"
        )
    return reward + gamma * (1.0 - terminated) * next_value


@dataclass
class MADDPGConfig:
    """Hyperparameters of :class:`MADDPG` (defaults: the released code's, Appendix / openai/maddpg)."""

    centralised: bool = True
    """True: MADDPG's critics Q_i(x, a_1..a_N); False: independent DDPG, Q_i(o_i, a_i)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layers of every actor and critic."""
    actor_lr: float = 0.01
    critic_lr: float = 0.01
    gamma: float = 0.95
    tau: float = 0.01
    """Polyak rate of the target networks."""
    batch_size: int = 1024
    buffer_size: int = 1_000_000
    """Capacity of each replay buffer (one, or one per agent and sub-policy with ensembles)."""
    max_grad_norm: float = 0.5
    logit_penalty: float = 1e-3
    """Weight of mean(logits^2) in the actor loss (the released code's regulariser)."""
    temperature: float = 1.0
    """Gumbel-softmax temperature."""
    ensemble_size: int = 1
    """K sub-policies per agent (Section 4.3); 1 = a single policy."""

    def validate(self) -> MADDPGConfig:
        if not isinstance(self.centralised, bool):
            raise TypeError(f"centralised must be a bool, got {type(self.centralised).__name__}")
        if not self.hidden or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.hidden
        ):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {self.hidden!r}")
        check_float("actor_lr", self.actor_lr, 0, min_inclusive=False, finite=True)
        check_float("critic_lr", self.critic_lr, 0, min_inclusive=False, finite=True)
        check_float("gamma", self.gamma, 0, 1)
        check_float("tau", self.tau, 0, 1, min_inclusive=False)
        check_int("batch_size", self.batch_size)
        check_int("buffer_size", self.buffer_size)
        check_float("max_grad_norm", self.max_grad_norm, 0, min_inclusive=False)
        check_float("logit_penalty", self.logit_penalty, 0, finite=True)
        check_float("temperature", self.temperature, 0, min_inclusive=False, finite=True)
        check_int("ensemble_size", self.ensemble_size)
        return self


def spaces_of(env: Any) -> tuple[list[str], list[int], list[int]]:
    """Agent names, observation sizes and action counts of a PettingZoo parallel env whose agents
    have flat ``Box`` observations and ``Discrete`` actions; a clear TypeError for anything else."""
    from gymnasium import spaces

    names = list(env.possible_agents)
    observation_sizes, action_counts = [], []
    for name in names:
        observation_space, action_space = env.observation_space(name), env.action_space(name)
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"MADDPG here handles Discrete actions (Gumbel-softmax); agent {name!r} of "
                f"{type(env).__name__} has action space {action_space!r} (create the MPE env with "
                "continuous_actions=False)"
            )
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise TypeError(
                f"MADDPG needs flat Box observations; agent {name!r} of {type(env).__name__} has "
                f"observation space {observation_space!r}"
            )
        observation_sizes.append(int(observation_space.shape[0]))
        action_counts.append(int(action_space.n))
    return names, observation_sizes, action_counts


class MADDPG:
    """N agents' actors, critics, target networks, optimisers and replay buffers, and Eq. 6-7 updates.

    ``observation_sizes[i]`` and ``action_counts[i]`` describe agent i (flat observations, discrete
    actions). ``seed`` seeds the networks' initialisation and the agent's own generator (exploration
    noise, replay sampling, sub-policy draws), so two agents built alike act and learn alike.
    """

    def __init__(
        self,
        observation_sizes: Sequence[int],
        action_counts: Sequence[int],
        cfg: MADDPGConfig,
        *,
        seed: int = 0,
    ) -> None:
        if not isinstance(cfg, MADDPGConfig):
            raise TypeError(f"cfg must be an MADDPGConfig, got {type(cfg).__name__}")
        self.cfg = dataclasses.replace(cfg).validate()
        self.observation_sizes = [check_int("observation_sizes[i]", int(n)) for n in observation_sizes]
        self.action_counts = [check_int("action_counts[i]", int(n)) for n in action_counts]
        if len(self.observation_sizes) != len(self.action_counts) or not self.observation_sizes:
            raise ValueError(
                "observation_sizes and action_counts must have one entry per agent (at least one), got "
                f"{len(self.observation_sizes)} and {len(self.action_counts)}"
            )
        self.num_agents = len(self.observation_sizes)
        K = self.cfg.ensemble_size
        self.generator = torch.Generator().manual_seed(int(seed))
        torch.manual_seed(int(seed))
        joint = sum(self.observation_sizes) + sum(self.action_counts)
        self.actors = nn.ModuleList()  # [agent][sub-policy]
        self.critics = nn.ModuleList()
        for i in range(self.num_agents):
            width = joint if self.cfg.centralised else self.observation_sizes[i] + self.action_counts[i]
            self.actors.append(
                nn.ModuleList(
                    mlp(
                        [self.observation_sizes[i], *self.cfg.hidden, self.action_counts[i]],
                        nn.ReLU,
                        orthogonal=False,
                    )
                    for _ in range(K)
                )
            )
            self.critics.append(
                nn.ModuleList(mlp([width, *self.cfg.hidden, 1], nn.ReLU, orthogonal=False) for _ in range(K))
            )
        self.target_actors = copy.deepcopy(self.actors).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimisers = [
            [
                torch.optim.Adam(self.actors[i][k].parameters(), lr=self.cfg.actor_lr, foreach=True)
                for k in range(K)
            ]
            for i in range(self.num_agents)
        ]
        self.critic_optimisers = [
            [
                torch.optim.Adam(self.critics[i][k].parameters(), lr=self.cfg.critic_lr, foreach=True)
                for k in range(K)
            ]
            for i in range(self.num_agents)
        ]
        fields: dict[str, tuple[tuple[int, ...], Any]] = {"terminated": ((), np.float32)}
        for i, size in enumerate(self.observation_sizes):
            fields |= {
                f"observation_{i}": ((size,), np.float32),
                f"action_{i}": ((), np.int64),
                f"reward_{i}": ((), np.float32),
                f"next_observation_{i}": ((size,), np.float32),
                f"policy_{i}": ((), np.int64),
            }
        # One buffer when K = 1 (every agent learns from every transition); D_i^(k) otherwise.
        shared = ReplayBuffer(self.cfg.buffer_size, fields) if K == 1 else None
        self.buffers = [
            [shared if shared is not None else ReplayBuffer(self.cfg.buffer_size, fields) for _ in range(K)]
            for _ in range(self.num_agents)
        ]
        self.active = [0] * self.num_agents
        """The sub-policy each agent runs in the current episode."""
        self.updates = 0
        self.environment_steps = 0
        """Transitions collected while learning (drives the update schedule)."""
        self.rounds = 0
        """Rounds of training episodes run (:func:`train` continues from here)."""

    # ----------------------------------------------------------------------------------- acting

    def choose_policies(self) -> list[int]:
        """Draw each agent's sub-policy for the next episode (uniform over K; Section 4.3)."""
        K = self.cfg.ensemble_size
        self.active = [int(torch.randint(K, (), generator=self.generator)) for _ in range(self.num_agents)]
        return self.active

    @torch.no_grad()
    def act(self, observations: Sequence[Tensor | np.ndarray], *, explore: bool = True) -> list[Tensor]:
        """Each agent's action index from its own observation (``[n, obs_i]`` or ``[obs_i]``): a
        Gumbel sample of its active sub-policy when ``explore``, the argmax otherwise."""
        if len(observations) != self.num_agents:
            raise ValueError(
                f"observations must hold {self.num_agents} entries (one per agent), got {len(observations)}"
            )
        actions = []
        for i, observation in enumerate(observations):
            observation = torch.as_tensor(observation, dtype=torch.float32)
            if observation.shape[-1:] != (self.observation_sizes[i],):
                raise ValueError(
                    f"observations[{i}] must end in size {self.observation_sizes[i]}, "
                    f"got {tuple(observation.shape)}"
                )
            logits = self.actors[i][self.active[i]](observation)
            if explore:
                # The argmax of the Gumbel-softmax sample is the Gumbel-max sample (any temperature).
                actions.append((logits + gumbel_noise(logits, self.generator)).argmax(-1))
            else:
                actions.append(logits.argmax(-1))
        return actions

    def store(
        self,
        observations: Sequence[np.ndarray],
        actions: Sequence[np.ndarray | Tensor],
        rewards: Sequence[np.ndarray],
        next_observations: Sequence[np.ndarray],
        terminated: np.ndarray,
    ) -> None:
        """Add a batch of joint transitions (every entry ``[n, ...]``) to the buffers of the running
        sub-policies. A non-finite reward is refused by the buffer."""
        transition: dict[str, Any] = {"terminated": np.asarray(terminated, dtype=np.float32)}
        n = transition["terminated"].shape[0]
        for i in range(self.num_agents):
            transition |= {
                f"observation_{i}": observations[i],
                f"action_{i}": actions[i],
                f"reward_{i}": rewards[i],
                f"next_observation_{i}": next_observations[i],
                f"policy_{i}": np.full(n, self.active[i], dtype=np.int64),
            }
        if self.cfg.ensemble_size == 1:
            self.buffers[0][0].add(**transition)
        else:
            for i in range(self.num_agents):
                self.buffers[i][self.active[i]].add(**transition)

    # --------------------------------------------------------------------------------- learning

    def ready(self) -> bool:
        """Whether every buffer that will be sampled holds a batch."""
        return all(len(buffer) >= self.cfg.batch_size for row in self.buffers for buffer in row)

    def _one_hot(self, batch: dict[str, Tensor], prefix: str) -> list[Tensor]:
        return [
            nn.functional.one_hot(batch[f"{prefix}_{j}"], self.action_counts[j]).float()
            for j in range(self.num_agents)
        ]

    def target_actions(self, next_observations: Sequence[Tensor], policies: Sequence[Tensor]) -> list[Tensor]:
        """a'_j = mu'_j(o'_j) for every agent j (one-hot Gumbel samples of the target actor of the
        sub-policy agent j ran in each transition)."""
        actions = []
        for j in range(self.num_agents):
            logits = torch.stack([actor(next_observations[j]) for actor in self.target_actors[j]], dim=1)
            logits = logits[torch.arange(len(logits)), policies[j]]
            actions.append(gumbel_softmax(logits, self.cfg.temperature, generator=self.generator).detach())
        return actions

    def critic_loss(
        self, batch: dict[str, Tensor], agent: int, policy: int = 0
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 7 for sub-policy ``policy`` of ``agent`` on ``batch`` (a sample of its buffer): the
        loss, the target y and the value Q_i(x, a)."""
        N = self.num_agents
        observations = [batch[f"observation_{j}"] for j in range(N)]
        next_observations = [batch[f"next_observation_{j}"] for j in range(N)]
        centralised = self.cfg.centralised
        with torch.no_grad():
            next_actions = self.target_actions(next_observations, [batch[f"policy_{j}"] for j in range(N)])
            next_value = self.target_critics[agent][policy](
                critic_input(next_observations, next_actions, agent, centralised)
            ).squeeze(-1)
            target = critic_target(batch[f"reward_{agent}"], batch["terminated"], next_value, self.cfg.gamma)
        actions = self._one_hot(batch, "action")
        value = self.critics[agent][policy](critic_input(observations, actions, agent, centralised)).squeeze(
            -1
        )
        return (value - target).square().mean(), target, value

    def actor_loss(self, batch: dict[str, Tensor], agent: int, policy: int = 0) -> Tensor:
        """Eq. 6 as a loss: ``-Q_i(x, a_1, .., mu_i(o_i), .., a_N)`` (the others' actions from the
        buffer, a_i the straight-through Gumbel sample of the actor) plus the logit penalty."""
        observations = [batch[f"observation_{j}"] for j in range(self.num_agents)]
        joint = self._one_hot(batch, "action")
        logits = self.actors[agent][policy](observations[agent])
        joint[agent] = gumbel_softmax(logits, self.cfg.temperature, generator=self.generator)
        # The critic's parameters collect gradients here too; update() clears them before the next
        # critic step and never applies them (cheaper than switching requires_grad off and on).
        value = self.critics[agent][policy](critic_input(observations, joint, agent, self.cfg.centralised))
        return -value.mean() + self.cfg.logit_penalty * logits.square().mean()

    def update(self) -> dict[str, float]:
        """One update of every agent's every sub-policy: critic step (Eq. 7), then actor step (Eq. 6)
        through the updated critic (the released code's order), then the target networks' Polyak
        step. Returns the mean losses."""
        if not self.ready():
            sizes = sorted({len(b) for row in self.buffers for b in row})
            raise ValueError(
                f"the replay buffers hold {sizes} transitions, fewer than batch_size={self.cfg.batch_size}: "
                "collect more before updating"
            )
        totals = {"critic_loss": 0.0, "actor_loss": 0.0}
        count = 0
        for i in range(self.num_agents):
            for k in range(self.cfg.ensemble_size):
                batch = self.buffers[i][k].sample(self.cfg.batch_size, self.generator)
                for loss, network, optimiser, name in (
                    (self.critic_loss, self.critics[i][k], self.critic_optimisers[i][k], "critic_loss"),
                    (self.actor_loss, self.actors[i][k], self.actor_optimisers[i][k], "actor_loss"),
                ):
                    value = loss(batch, i, k)
                    value = value[0] if isinstance(value, tuple) else value
                    optimiser.zero_grad(set_to_none=True)
                    value.backward()
                    nn.utils.clip_grad_norm_(network.parameters(), self.cfg.max_grad_norm)
                    optimiser.step()
                    totals[name] += float(value.detach())
                count += 1
        self.soft_update()
        self.updates += 1
        return {name: value / count for name, value in totals.items()}

    @torch.no_grad()
    def soft_update(self) -> None:
        """theta' <- tau theta + (1 - tau) theta' for every actor and critic."""
        online = [*self.actors.parameters(), *self.critics.parameters()]
        target = [*self.target_actors.parameters(), *self.target_critics.parameters()]
        torch._foreach_lerp_(target, online, self.cfg.tau)

    # ------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks, targets, optimisers, buffers, generator, counters."""
        unique = {id(b): b for row in self.buffers for b in row}
        return {
            "actors": self.actors.state_dict(),
            "critics": self.critics.state_dict(),
            "target_actors": self.target_actors.state_dict(),
            "target_critics": self.target_critics.state_dict(),
            "actor_optimisers": [[o.state_dict() for o in row] for row in self.actor_optimisers],
            "critic_optimisers": [[o.state_dict() for o in row] for row in self.critic_optimisers],
            "buffers": [b.state_dict() for b in unique.values()],
            "generator": self.generator.get_state(),
            "active": list(self.active),
            "updates": self.updates,
            "environment_steps": self.environment_steps,
            "rounds": self.rounds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critics.load_state_dict(state["critics"])
        self.target_actors.load_state_dict(state["target_actors"])
        self.target_critics.load_state_dict(state["target_critics"])
        for rows, saved in (
            (self.actor_optimisers, state["actor_optimisers"]),
            (self.critic_optimisers, state["critic_optimisers"]),
        ):
            for row, saved_row in zip(rows, saved, strict=True):
                for optimiser, optimiser_state in zip(row, saved_row, strict=True):
                    optimiser.load_state_dict(optimiser_state)
        unique = list({id(b): b for row in self.buffers for b in row}.values())
        if len(unique) != len(state["buffers"]):
            raise ValueError(f"state holds {len(state['buffers'])} buffers, this agent {len(unique)}")
        for buffer, buffer_state in zip(unique, state["buffers"], strict=True):
            buffer.load_state_dict(buffer_state)
        self.generator.set_state(state["generator"])
        self.active = [int(k) for k in state["active"]]
        self.updates = int(state["updates"])
        self.environment_steps = int(state["environment_steps"])
        self.rounds = int(state["rounds"])


# ------------------------------------------------------------------------------------ training


@dataclass
class EpisodeLog:
    """Per-episode returns (summed over steps, one per agent) and the observations the episode saw."""

    returns: list[list[float]] = dataclasses.field(default_factory=list)
    observations: list[list[np.ndarray]] = dataclasses.field(default_factory=list)
    """observations[e][i]: agent i's observations over episode e, ``[steps + 1, obs_i]``."""
    critic_losses: list[float] = dataclasses.field(default_factory=list)
    """Eq. 7's loss of every update (mean over agents and sub-policies)."""
    actor_losses: list[float] = dataclasses.field(default_factory=list)


def run_episodes(
    agent: MADDPG,
    envs: Sequence[Any],
    episodes: int,
    *,
    seed: int,
    explore: bool,
    learn: bool = False,
    warmup_steps: int = 0,
    update_every: int = 100,
    keep_observations: bool = False,
    on_episode: Callable[[int], None] | None = None,
) -> EpisodeLog:
    """Run ``episodes`` rounds of episodes on the PettingZoo parallel ``envs`` (one episode on each
    env per round, actions batched over the envs), seeding episode ``e`` of env ``k`` with
    ``seed + e * len(envs) + k``.

    With ``learn`` the transitions go to the replay buffers and every ``update_every`` environment
    steps (counted over all envs) after ``warmup_steps`` the agent makes one :meth:`MADDPG.update`:
    the released code's schedule (``update_every = 100``). Episodes end at the env's time limit
    (stored as not terminated: the target bootstraps) or when every agent terminates.
    """
    check_int("episodes", episodes, 0)
    check_int("update_every", update_every)
    check_int("warmup_steps", warmup_steps, 0)
    if not envs:
        raise ValueError("envs must hold at least one PettingZoo parallel env")
    names, observation_sizes, action_counts = spaces_of(envs[0])
    if observation_sizes != agent.observation_sizes or action_counts != agent.action_counts:
        raise ValueError(
            f"the env's agents {names} have observation sizes {observation_sizes} and action counts "
            f"{action_counts}; the agent was built for {agent.observation_sizes} and {agent.action_counts}"
        )
    log = EpisodeLog()
    steps = agent.environment_steps
    for episode in range(episodes):
        if learn or explore:
            agent.choose_policies()
        starts = [env.reset(seed=seed + episode * len(envs) + k)[0] for k, env in enumerate(envs)]
        observations = [np.stack([start[name] for start in starts]) for name in names]
        returns = np.zeros((len(envs), len(names)))
        trace = [[o] for o in observations]
        while True:
            actions = [a.numpy() for a in agent.act(observations, explore=explore)]
            results = [
                env.step({name: int(actions[i][k]) for i, name in enumerate(names)})
                for k, env in enumerate(envs)
            ]
            next_observations = [np.stack([r[0][name] for r in results]) for name in names]
            rewards = [np.array([r[1][name] for r in results], dtype=np.float32) for name in names]
            if not all(np.isfinite(r).all() for r in rewards):
                raise ValueError(f"the env returned a non-finite reward: {[r.tolist() for r in rewards]}")
            terminated = np.array([all(r[2][name] for name in names) for r in results], dtype=np.float32)
            done = [all(r[2][name] or r[3][name] for name in names) for r in results]
            returns += np.stack(rewards, axis=1)
            if learn:
                agent.store(observations, actions, rewards, next_observations, terminated)
                for _ in range(len(envs)):
                    steps += 1
                    if steps > warmup_steps and steps % update_every == 0 and agent.ready():
                        losses = agent.update()
                        log.critic_losses.append(losses["critic_loss"])
                        log.actor_losses.append(losses["actor_loss"])
            observations = next_observations
            if keep_observations:
                for i in range(len(names)):
                    trace[i].append(observations[i])
            if all(done):
                break
            if any(done):
                raise ValueError("the envs ended their episodes at different steps; give them one time limit")
        log.returns.extend(returns.tolist())
        if keep_observations:
            for k in range(len(envs)):
                log.observations.append([np.stack([step[k] for step in trace[i]]) for i in range(len(names))])
        if on_episode is not None:
            on_episode(episode)
    if learn:
        agent.environment_steps = steps
    return log


def train(
    agent: MADDPG,
    envs: Sequence[Any],
    rounds: int,
    *,
    seed: int,
    warmup_steps: int,
    update_every: int,
    on_episode: Callable[[int], None] | None = None,
) -> EpisodeLog:
    """Train ``agent`` for ``rounds`` rounds of episodes (see :func:`run_episodes`), continuing from
    the rounds it has already trained (``agent.rounds``), so that a run resumed from a checkpoint
    at a round boundary sees the same episodes and ends with the same agent."""
    check_int("rounds", rounds, 0)
    done = agent.rounds
    log = run_episodes(
        agent,
        envs,
        rounds,
        seed=seed + done * len(envs),
        explore=True,
        learn=True,
        warmup_steps=warmup_steps,
        update_every=update_every,
        on_episode=on_episode,
    )
    agent.rounds = done + rounds
    return log
