"""Small networks shared by the agents: an MLP, an actor-critic with a categorical or diagonal
Gaussian policy head and a value head (PPO, A2C, REINFORCE, TRPO, GAIL), and a Q-network with an
optional dueling head (DQN).

Initialisation follows the reference implementations (stable-baselines3, OpenAI baselines):
orthogonal weights with gain √2 in the hidden layers, 0.01 in the policy head (a near-uniform
first policy) and 1 in the value head; zero biases.

The dueling head (Wang et al. 2016, Eq. 9) splits the last hidden features into a state value and
action advantages and recombines them with the mean advantage subtracted (identifiability):

    Q(s, a) = V(s) + (A(s, a) − 1/|A| Σ_a' A(s, a'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from aicanon.core.checks import check_int, check_tensor

__all__ = ["ActorCritic", "QNetwork", "mlp", "space_dims"]


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    output_gain: float = 1.0,
    orthogonal: bool = True,
) -> nn.Sequential:
    """Linear layers of ``sizes`` (input, hidden..., output) with ``activation`` between them (none
    after the last). ``orthogonal``: weights orthogonal with gain √2 inside and ``output_gain`` on the
    last layer, zero biases (the on-policy references); otherwise PyTorch's default initialisation of
    ``nn.Linear`` (the off-policy references: SAC, TD3, MADDPG), drawing the same random numbers as
    building the layers one after another."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least an input and an output size, got {sizes}")
    for i, size in enumerate(sizes):
        check_int(f"sizes[{i}]", size)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        if orthogonal:
            nn.init.orthogonal_(linear.weight, output_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


def space_dims(observation_space: Any, action_space: Any, agent: str = "the agent") -> tuple[int, int, bool]:
    """(observation size, number of actions or action dimensions, continuous?) of Gymnasium spaces;
    a clear TypeError for a space the agents here cannot handle (naming the agent and the space)."""
    from gymnasium import spaces

    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise TypeError(f"{agent} needs a flat Box observation space, got {observation_space!r}")
    if isinstance(action_space, spaces.Discrete):
        return int(observation_space.shape[0]), int(action_space.n), False
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return int(observation_space.shape[0]), int(action_space.shape[0]), True
    raise TypeError(f"{agent} handles Discrete or flat Box action spaces, got {action_space!r}")


class ActorCritic(nn.Module):
    """``forward(observations [B, D]) -> (action distribution, value [B])``: separate policy and
    value MLPs (stable-baselines3's default for PPO/A2C), a categorical head for ``n_actions``
    discrete actions or a diagonal Gaussian with a state-independent log standard deviation
    (initialised to ``log_std_init``) for continuous ones."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        continuous: bool = False,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim)
        self.observation_dim, self.action_dim, self.continuous = observation_dim, action_dim, bool(continuous)
        self.policy_net = mlp([observation_dim, *hidden, action_dim], activation, output_gain=0.01)
        self.value_net = mlp([observation_dim, *hidden, 1], activation, output_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init))) if continuous else None

    @classmethod
    def for_spaces(cls, observation_space: Any, action_space: Any, **kwargs: Any) -> ActorCritic:
        observation_dim, action_dim, continuous = space_dims(observation_space, action_space, "ActorCritic")
        return cls(observation_dim, action_dim, continuous, **kwargs)

    def distribution(self, observations: Tensor) -> Distribution:
        output = self.policy_net(observations)
        if self.continuous:
            scale = self.log_std.exp().expand_as(output)
            return Independent(Normal(output, scale, validate_args=False), 1, validate_args=False)
        return Categorical(logits=output, validate_args=False)

    def value(self, observations: Tensor) -> Tensor:
        return self.value_net(observations).squeeze(-1)

    def forward(self, observations: Tensor) -> tuple[Distribution, Tensor]:
        check_tensor("observations", observations, shape=(None, self.observation_dim), floating=True)
        return self.distribution(observations), self.value(observations)

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool = True) -> Any:
        """One action for one environment observation (the evaluation protocol's policy)."""
        x = torch.as_tensor(np.asarray(observation), dtype=torch.float32).reshape(1, -1)
        distribution = self.distribution(x)
        if deterministic:
            action = distribution.mean if self.continuous else distribution.probs.argmax(-1)
        else:
            action = distribution.sample()
        return action[0].numpy() if self.continuous else int(action[0])


class QNetwork(nn.Module):
    """``forward(observations [B, D]) -> Q [B, n_actions]``: an MLP, or with ``dueling`` a shared
    trunk feeding a value stream and an advantage stream combined by Eq. 9 (module docstring)."""

    def __init__(
        self,
        observation_dim: int,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        dueling: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("n_actions", n_actions)
        hidden = list(hidden)
        self.observation_dim, self.n_actions, self.dueling = observation_dim, n_actions, bool(dueling)
        if not dueling:
            self.q = mlp([observation_dim, *hidden, n_actions], activation)
            return
        if not hidden:
            raise ValueError("hidden must name at least one layer for a dueling network")
        trunk = mlp([observation_dim, *hidden], activation)
        self.trunk = nn.Sequential(trunk, activation())
        self.value_stream = mlp([hidden[-1], 1], activation)
        self.advantage_stream = mlp([hidden[-1], n_actions], activation)

    def forward(self, observations: Tensor) -> Tensor:
        check_tensor("observations", observations, shape=(None, self.observation_dim), floating=True)
        if not self.dueling:
            return self.q(observations)
        features = self.trunk(observations)
        advantages = self.advantage_stream(features)
        return self.value_stream(features) + advantages - advantages.mean(-1, keepdim=True)
