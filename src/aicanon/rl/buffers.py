"""The replay buffer of the off-policy agents (DQN, DDPG, TD3, SAC, MADDPG): a ring of the last
``capacity`` transitions, sampled uniformly (Mnih et al. 2015's experience replay).

A buffer holds named fields of fixed shape and dtype (``observation``, ``action``, ``reward``,
``next_observation``, ``terminated`` for the single-agent agents, :meth:`ReplayBuffer.for_spaces`;
any other set, e.g. per-agent fields for MADDPG). ``add`` takes one transition or a batch of them
(a vectorised environment's step: leading dimension = number of environments); ``sample`` returns a
dict of float/long tensors on the buffer's device.

``terminated`` (the MDP ended: no bootstrap) is kept apart from truncation (a time limit: bootstrap
from ``next_observation`` as usual), which the agents need to compute correct targets; a truncated
transition is simply stored with ``terminated = 0``.

The whole buffer (contents, write position, size) is in :meth:`state_dict`, so an agent checkpoint
resumes with the same replay contents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aicanon.core.checks import check_int

__all__ = ["ReplayBuffer", "space_spec"]

FieldSpec = tuple[tuple[int, ...], np.dtype]


def space_spec(space: Any) -> FieldSpec:
    """The (shape, dtype) a buffer stores for one element of a Gymnasium ``Box`` or ``Discrete``
    space (``Discrete`` actions as int64 scalars, ``Box`` as float32)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return (), np.dtype(np.int64)
    if isinstance(space, spaces.Box):
        return tuple(space.shape), np.dtype(np.float32)
    if isinstance(space, spaces.MultiBinary):
        return tuple(np.atleast_1d(space.n)), np.dtype(np.float32)
    raise TypeError(f"space must be a gymnasium Box, Discrete or MultiBinary space, got {space!r}")


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions with the named ``fields`` (``name -> (shape, dtype)``)."""

    def __init__(
        self,
        capacity: int,
        fields: Mapping[str, FieldSpec],
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        self.capacity = check_int("capacity", capacity)
        if not isinstance(fields, Mapping) or not fields:
            raise ValueError(f"fields must map field names to (shape, dtype), got {fields!r}")
        self.fields = {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype) in fields.items()}
        self.device = torch.device(device)
        self.storage = {
            name: np.zeros((capacity, *shape), dtype=dtype) for name, (shape, dtype) in self.fields.items()
        }
        self.position = 0
        self.size = 0

    @classmethod
    def for_spaces(
        cls, observation_space: Any, action_space: Any, capacity: int, *, device: str | torch.device = "cpu"
    ) -> ReplayBuffer:
        """A buffer of single-agent transitions: ``observation``, ``action``, ``reward``,
        ``next_observation``, ``terminated``."""
        observation = space_spec(observation_space)
        return cls(
            capacity,
            {
                "observation": observation,
                "action": space_spec(action_space),
                "reward": ((), np.dtype(np.float32)),
                "next_observation": observation,
                "terminated": ((), np.dtype(np.float32)),
            },
            device=device,
        )

    def __len__(self) -> int:
        return self.size

    def add(self, **transition: Any) -> None:
        """Store one transition, or a batch (every field with one more leading dimension).

        Every field must be given; a non-finite reward is refused (it would poison every target
        computed from it)."""
        missing, extra = self.fields.keys() - transition.keys(), transition.keys() - self.fields.keys()
        if missing or extra:
            raise ValueError(
                f"add() needs exactly the fields {sorted(self.fields)}; "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        arrays = {}
        batch = None
        for name, value in transition.items():
            shape, dtype = self.fields[name]
            if isinstance(value, Tensor):
                value = value.detach().cpu().numpy()
            array = np.asarray(value)
            if array.shape == shape:
                array = array[None]
            elif array.shape[1:] != shape:
                raise ValueError(f"{name} must have shape {shape} or [n, *{shape}], got {tuple(array.shape)}")
            if batch is None:
                batch = array.shape[0]
            elif array.shape[0] != batch:
                raise ValueError(f"{name} holds {array.shape[0]} transitions, the other fields {batch}")
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][:4].tolist()}")
            arrays[name] = array.astype(dtype, copy=False)
        assert batch is not None
        if batch > self.capacity:
            raise ValueError(f"cannot add {batch} transitions to a buffer of capacity {self.capacity}")
        index = (self.position + np.arange(batch)) % self.capacity
        for name, array in arrays.items():
            self.storage[name][index] = array
        self.position = int((self.position + batch) % self.capacity)
        self.size = min(self.size + batch, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement, as tensors on the device."""
        check_int("batch_size", batch_size)
        if self.size < batch_size:
            raise ValueError(
                f"the buffer holds {self.size} transitions, fewer than batch_size={batch_size}: "
                "collect more before sampling"
            )
        index = torch.randint(0, self.size, (batch_size,), generator=generator).numpy()
        return {name: torch.as_tensor(array[index]).to(self.device) for name, array in self.storage.items()}

    def state_dict(self) -> dict[str, Any]:
        """Contents (the filled part), write position and size."""
        return {
            "storage": {
                name: torch.from_numpy(array[: self.size].copy()) for name, array in self.storage.items()
            },
            "position": self.position,
            "size": self.size,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        size = int(state["size"])
        if not 0 <= size <= self.capacity or set(state["storage"]) != set(self.fields):
            raise ValueError(
                f"state does not fit this buffer (capacity {self.capacity}, fields {sorted(self.fields)}): "
                f"size {size}, fields {sorted(state['storage'])}"
            )
        for name, tensor in state["storage"].items():
            array = tensor.numpy() if isinstance(tensor, Tensor) else np.asarray(tensor)
            if array.shape != (size, *self.fields[name][0]):
                raise ValueError(
                    f"state's {name} has shape {array.shape}, expected {(size, *self.fields[name][0])}"
                )
            self.storage[name][:size] = array
        self.position, self.size = int(state["position"]), size
