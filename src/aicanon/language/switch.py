"""Switch Transformer layer (Fedus, Zoph & Shazeer, JMLR 2022; arXiv 2101.03961).

A Switch layer replaces a Transformer's dense feed-forward block by ``N`` expert FFNs and a router
that sends each token to exactly one of them (Section 2.1, "Switch routing"). With router weights
``W_r`` the router logits are ``h(x) = W_r x`` and the gate values are

    p_i(x) = exp(h(x)_i) / sum_j exp(h(x)_j)                                    (Eq. 1)

Shazeer et al.'s top-k mixture ``y = sum_{i in T} p_i(x) E_i(x)`` (Eq. 2) is used with ``k = 1``:
each token goes to ``i* = argmax_i p_i(x)`` and the layer returns ``p_{i*}(x) E_{i*}(x)``.

Every expert has a fixed number of slots per group of tokens, the expert capacity (Section 2.2):

    expert capacity = (tokens per batch / number of experts) * capacity factor   (Eq. 3)

Tokens are served in their order within the group; a token whose expert is full is *dropped*: the
layer returns zero for it, so in a residual block ``x + FFN(x)`` it passes on unchanged (Figure 3).

The auxiliary load-balancing loss (Section 2.2), over ``T`` tokens of a batch ``B``, with ``f_i``
the fraction of tokens dispatched to expert ``i`` and ``P_i`` the fraction of router probability
given to it, is

    loss = alpha * N * sum_{i=1}^{N} f_i * P_i                                   (Eq. 4)
    f_i = (1 / T) sum_{x in B} 1{argmax p(x) = i}                                (Eq. 5)
    P_i = (1 / T) sum_{x in B} p_i(x)                                            (Eq. 6)

minimised (value 1) by uniform routing; the paper uses ``alpha = 10^-2``. ``f_i`` counts the
argmax choice before any token is dropped for capacity (as Mesh TensorFlow and transformers do).

Section 2.4's stability techniques are here too: *selective precision* (the router's input, weights,
logits and softmax are float32 even under bf16 autocast; the gate is cast back to the input dtype
for the combine), the *smaller initialisation* (every weight drawn from a normal of standard
deviation ``sqrt(s / fan_in)`` truncated at two standard deviations, with ``s = 0.1`` instead of
the default 1.0) and *expert dropout* (Table 4: a higher dropout rate inside the experts, e.g.
0.4 against 0.1 elsewhere, when fine-tuning). Optional: multiplicative input jitter of the router
(``x * U(1 - eps, 1 + eps)`` while training: Mesh TensorFlow's ``input_jitter`` Switch policy,
transformers' ``router_jitter_noise``) and the router z-loss of ST-MoE (Zoph et al. 2022:
``(1/B) sum_x (log sum_j exp h(x)_j)^2``), which the Switch paper does not use; its weight is 0
unless asked for.

Expert parallelism (Section 5, "expert and data parallelism"): with a ``torch.distributed`` process
group of ``W`` ranks each rank keeps ``N / W`` experts and its own tokens; the dispatched tokens
(an ``[N, capacity * groups, d]`` buffer per rank) go to the ranks owning their experts by one
all-to-all and come back by another, both differentiable.

Departures and choices, each deliberate:

* A *group* (the unit over which capacity is counted and Eq. 4 is averaged) is one sequence, a row
  of the ``[B, T, H]`` input, as in transformers; Mesh TensorFlow splits the batch into groups of
  ``group_size`` tokens. Per-sequence groups keep a decoder causal: whether token ``t`` is dropped
  depends only on tokens ``<= t`` of its own sequence. Eq. 4 is computed per group and averaged.
* Capacity is ``min(T, max(floor(capacity_factor * T / N), min_capacity))`` with ``min_capacity``
  4 by default (Mesh TensorFlow's ``moe_min_expert_capacity``); ``expert_capacity`` fixes it
  instead (transformers' config does this).
* Experts are ReLU FFNs ``wo(relu(wi x))`` as in the paper's T5 models, or gated SwiGLU
  ``wo(silu(wi_0 x) * wi_1 x)`` (T5.1.1 / Llama style) so that a Switch layer can replace a
  Llama MLP with the same active parameters. No biases (T5).
* Expert weights are stacked ``[N, d_in, d_out]`` tensors (transformers keeps one ``nn.Linear``
  per expert). In one process each expert multiplies only its kept tokens (sorted by expert), not
  the zero-padded ``[N, capacity, d]`` buffer the paper's TPU code computes: same outputs, no
  FLOPs spent on empty slots. Expert parallelism exchanges that fixed-size buffer.
  :func:`from_transformers` converts its (and the released checkpoints') layout to ours:
  ``load_state_dict_strict(layer, from_transformers(state_dict, prefix))``
  (:func:`aicanon.core.state_dict.load_state_dict_strict`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability
from aicanon.core.state_dict import check_state_dict

__all__ = [
    "ACTIVATIONS",
    "Routing",
    "SwitchExperts",
    "SwitchFFN",
    "SwitchRouter",
    "expert_capacity",
    "from_transformers",
    "load_balancing_loss",
    "load_coefficient_of_variation",
    "router_z_loss",
    "scaled_truncated_normal_",
    "switch_aux_loss",
    "switch_layers",
]

ACTIVATIONS = ("relu", "swiglu")


def scaled_truncated_normal_(
    tensor: Tensor, fan_in: int, scale: float = 0.1, generator: torch.Generator | None = None
) -> Tensor:
    """Section 2.4's initialisation in place: ``N(0, s / fan_in)`` truncated at two standard deviations.

    The paper draws every weight matrix from a truncated normal of standard deviation
    ``sqrt(s / n)``, ``n`` the fan-in, and recommends ``s = 0.1`` ("reducing the default Transformer
    initialization scale s = 1.0 by a factor of 10") for stable training.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    check_int("fan_in", fan_in)
    scale = float(check_float("scale", scale, 0.0, min_inclusive=False, finite=True))
    std = math.sqrt(scale / fan_in)
    with torch.no_grad():
        return nn.init.trunc_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


def expert_capacity(
    tokens_per_group: int, num_experts: int, capacity_factor: float, min_capacity: int = 4
) -> int:
    """Eq. 3: ``floor(capacity_factor * tokens / experts)``, at least ``min_capacity``, at most ``tokens``."""
    check_int("tokens_per_group", tokens_per_group)
    check_int("num_experts", num_experts)
    capacity_factor = float(
        check_float("capacity_factor", capacity_factor, 0.0, min_inclusive=False, finite=True)
    )
    check_int("min_capacity", min_capacity)
    capacity = math.floor(capacity_factor * tokens_per_group / num_experts + 1e-9)
    return min(tokens_per_group, max(capacity, min_capacity))


def _check_router_tensors(probs: Tensor, expert_index: Tensor) -> tuple[Tensor, Tensor]:
    if not isinstance(probs, Tensor) or not probs.is_floating_point():
        raise TypeError(f"router_probs must be a floating-point tensor, got {type(probs).__name__}")
    if not isinstance(expert_index, Tensor) or expert_index.is_floating_point() or expert_index.is_complex():
        raise TypeError(
            f"expert_index must be an integer tensor, got {getattr(expert_index, 'dtype', type(expert_index))}"
        )
    if probs.dim() == 2:  # one group of tokens
        probs = probs.unsqueeze(0)
        expert_index = expert_index.unsqueeze(0)
    if probs.dim() != 3:
        raise ValueError(
            f"router_probs must be [groups, tokens, experts] or [tokens, experts], got {tuple(probs.shape)}"
        )
    if tuple(expert_index.shape) != tuple(probs.shape[:2]):
        raise ValueError(
            f"expert_index must have router_probs' leading shape {tuple(probs.shape[:2])}, got {tuple(expert_index.shape)}"
        )
    num_experts = probs.shape[-1]
    if expert_index.numel() and (int(expert_index.min()) < 0 or int(expert_index.max()) >= num_experts):
        raise ValueError(
            f"expert_index must lie in [0, {num_experts}), got values in "
            f"[{int(expert_index.min())}, {int(expert_index.max())}]"
        )
    return probs, expert_index


def load_balancing_loss(router_probs: Tensor, expert_index: Tensor) -> Tensor:
    """Eq. 4 without ``alpha``: ``N * sum_i f_i P_i``, per group, averaged over groups.

    ``router_probs`` is ``[groups, tokens, N]`` (or ``[tokens, N]``: one group), ``expert_index``
    the argmax choice ``[groups, tokens]``. Equals 1 under uniform routing, ``N`` when one expert
    takes every token with probability 1. Multiply by ``alpha`` (the paper: 0.01) yourself.
    """
    probs, expert_index = _check_router_tensors(router_probs, expert_index)
    num_experts = probs.shape[-1]
    dispatched = F.one_hot(expert_index.long(), num_experts).to(torch.float32)
    fraction_tokens = dispatched.mean(dim=1)  # f_i of Eq. 5, per group; carries no gradient
    fraction_probability = probs.to(torch.float32).mean(dim=1)  # P_i of Eq. 6, differentiable
    return num_experts * (fraction_tokens * fraction_probability).sum(dim=-1).mean()


def router_z_loss(router_logits: Tensor) -> Tensor:
    """ST-MoE's router z-loss (Zoph et al. 2022): mean over tokens of ``logsumexp(h(x))^2``."""
    if not isinstance(router_logits, Tensor) or not router_logits.is_floating_point():
        raise TypeError(f"router_logits must be a floating-point tensor, got {type(router_logits).__name__}")
    if router_logits.dim() < 2:
        raise ValueError(f"router_logits must be [..., experts], got shape {tuple(router_logits.shape)}")
    return torch.logsumexp(router_logits.to(torch.float32), dim=-1).pow(2).mean()


def load_coefficient_of_variation(counts: Tensor) -> float:
    """Standard deviation over mean of the tokens each expert received: 0 when perfectly balanced."""
    if not isinstance(counts, Tensor):
        raise TypeError(f"counts must be a torch.Tensor, got {type(counts).__name__}")
    if counts.dim() != 1 or counts.numel() < 1:
        raise ValueError(
            f"counts must be a non-empty 1-D tensor (one count per expert), got shape {tuple(counts.shape)}"
        )
    counts = counts.to(torch.float64)
    mean = counts.mean()
    if float(mean) <= 0.0:
        raise ValueError(f"counts must sum to a positive number, got {float(counts.sum())}")
    return float(counts.std(unbiased=False) / mean)


@dataclass
class Routing:
    """One routing decision of a group-batched input ``[G, S, H]`` (``G`` groups of ``S`` tokens)."""

    logits: Tensor
    """Router logits ``h(x)``, float32 ``[G, S, N]``."""
    probs: Tensor
    """Softmax of the logits (Eq. 1), float32 ``[G, S, N]``."""
    expert_index: Tensor
    """The chosen expert ``argmax_i p_i(x)``, long ``[G, S]``."""
    gate: Tensor
    """``p_{i*}(x)``, the probability of the chosen expert, float32 ``[G, S]``."""
    position: Tensor
    """The token's slot in its expert's buffer (its rank among the group's tokens choosing that expert), long ``[G, S]``."""
    kept: Tensor
    """Bool ``[G, S]``: the slot is within capacity; False = dropped (the layer returns 0 for it)."""
    capacity: int
    """Slots per expert and group."""


class SwitchRouter(nn.Module):
    """Top-1 router ``h(x) = W_r x`` computed in float32 (selective precision, Section 2.4)."""

    def __init__(
        self, hidden_size: int, num_experts: int, *, jitter_noise: float = 0.0, bias: bool = False
    ) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size)
        check_int("num_experts", num_experts)
        self.hidden_size = hidden_size
        self.num_experts = num_experts
        self.jitter_noise = float(check_probability("jitter_noise", jitter_noise, allow_one=False))
        # nn.Linear's layout [N, H], the same as transformers' ``router.classifier``.
        self.weight = nn.Parameter(torch.empty(num_experts, hidden_size))
        self.bias = nn.Parameter(torch.zeros(num_experts)) if bias else None

    def logits(self, x: Tensor) -> Tensor:
        """``h(x)`` in float32 with autocast off, so bf16 training keeps an exact router (Section 2.4)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(torch.float32)
            if self.training and self.jitter_noise > 0:
                # Multiplicative input jitter (Mesh TensorFlow's "input_jitter"); out of place, so the
                # caller's tensor is not changed.
                noise = torch.empty_like(x).uniform_(1.0 - self.jitter_noise, 1.0 + self.jitter_noise)
                x = x * noise
            bias = None if self.bias is None else self.bias.to(torch.float32)
            return F.linear(x, self.weight.to(torch.float32), bias)

    def choose(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """``(probs, expert_index)`` from the logits: Eq. 1 and its argmax. Subclasses may override."""
        probs = torch.softmax(logits, dim=-1)
        return probs, probs.argmax(dim=-1)

    def forward(self, x: Tensor, capacity: int) -> Routing:
        logits = self.logits(x)
        probs, expert_index = self.choose(logits)
        gate = probs.gather(-1, expert_index.unsqueeze(-1)).squeeze(-1)
        # Section 2.2: tokens fill their expert's slots in order within the group; the cumulative
        # count of earlier tokens with the same choice is the slot.
        one_hot = F.one_hot(expert_index, self.num_experts)
        position = (one_hot.cumsum(dim=1) - 1).gather(-1, expert_index.unsqueeze(-1)).squeeze(-1)
        return Routing(logits, probs, expert_index, gate, position, position < capacity, capacity)


class SwitchExperts(nn.Module):
    """``N`` expert FFNs with stacked weights, applied to a capacity buffer ``[N, slots, H]``."""

    def __init__(
        self,
        num_experts: int,
        hidden_size: int,
        ffn_size: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("num_experts", num_experts)
        check_int("hidden_size", hidden_size)
        check_int("ffn_size", ffn_size)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.num_experts, self.hidden_size, self.ffn_size = num_experts, hidden_size, ffn_size
        self.activation = activation
        self.dropout = float(check_probability("expert_dropout", dropout, allow_one=False))
        if activation == "relu":
            self.wi = nn.Parameter(torch.empty(num_experts, hidden_size, ffn_size))
        else:
            self.wi_0 = nn.Parameter(torch.empty(num_experts, hidden_size, ffn_size))  # gate (silu)
            self.wi_1 = nn.Parameter(torch.empty(num_experts, hidden_size, ffn_size))  # up
        self.wo = nn.Parameter(torch.empty(num_experts, ffn_size, hidden_size))

    def forward(self, buffer: Tensor) -> Tensor:
        if self.activation == "relu":
            hidden = torch.relu(torch.bmm(buffer, self.wi))
        else:
            hidden = F.silu(torch.bmm(buffer, self.wi_0)) * torch.bmm(buffer, self.wi_1)
        # Expert dropout (Section 2.4, Table 4): its own rate, inside the experts only.
        hidden = F.dropout(hidden, self.dropout, self.training)
        return torch.bmm(hidden, self.wo)

    def grouped(self, x: Tensor, counts: list[int]) -> Tensor:
        """The experts on tokens sorted by expert: rows ``sum(counts[:e]) ...`` go to expert ``e``.

        The same products as :meth:`forward` on a capacity buffer, without its empty slots.
        """
        outputs = []
        # unbind once: indexing the stacked parameter per expert would make autograd build a
        # full-size zero gradient for every expert (quadratic in the number of experts).
        wo = self.wo.unbind(0)
        if self.activation == "relu":
            wi = self.wi.unbind(0)
        else:
            gate, up = self.wi_0.unbind(0), self.wi_1.unbind(0)
        for e, chunk in enumerate(x.split(counts)):
            if chunk.shape[0] == 0:
                continue
            if self.activation == "relu":
                hidden = torch.relu(chunk @ wi[e])
            else:
                hidden = F.silu(chunk @ gate[e]) * (chunk @ up[e])
            hidden = F.dropout(hidden, self.dropout, self.training)  # expert dropout (Table 4)
            outputs.append(hidden @ wo[e])
        return torch.cat(outputs) if outputs else x.new_zeros(0, self.hidden_size)


class _AllToAll(torch.autograd.Function):
    """Equal-split all-to-all along dim 0. It is its own inverse, so backward is the same exchange."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:  # type: ignore[override]
        ctx.group = group
        # empty_like keeps a non-contiguous input's strides, which all_to_all_single would ignore.
        x = x.contiguous()
        out = torch.empty_like(x)
        dist.all_to_all_single(out, x, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        grad = grad.contiguous()
        out = torch.empty_like(grad)
        dist.all_to_all_single(out, grad, group=ctx.group)
        return out, None


class SwitchFFN(nn.Module):
    """A Switch layer: maps ``[B, T, H] -> [B, T, H]`` like the dense FFN it replaces.

    After each forward, ``last_routing`` holds the routing decision, the properties
    ``balancing_loss`` (Eq. 4 without alpha) and ``z_loss`` this call's auxiliary losses (with
    gradients to the router) and ``expert_counts``
    the tokens each expert was chosen by (before dropping), ``dropped_fraction`` the share of tokens
    dropped. :func:`switch_aux_loss` sums the weighted losses over a model's Switch layers.

    With ``process_group`` set, this rank holds experts ``rank * N/W ... (rank+1) * N/W - 1`` only
    (``expert_offset`` and ``local_experts``); every rank of the group must call forward with the
    same input shape. The router is replicated (keep it synchronised, e.g. with DDP).
    """

    def __init__(
        self,
        hidden_size: int,
        ffn_size: int,
        num_experts: int,
        *,
        capacity_factor: float = 1.0,
        expert_capacity: int | None = None,
        min_capacity: int = 4,
        activation: str = "relu",
        expert_dropout: float = 0.0,
        jitter_noise: float = 0.0,
        router_bias: bool = False,
        init_scale: float = 0.1,
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size)
        check_int("ffn_size", ffn_size)
        check_int("num_experts", num_experts)
        self.capacity_factor = float(
            check_float("capacity_factor", capacity_factor, 0.0, min_inclusive=False, finite=True)
        )
        if expert_capacity is not None:
            check_int("expert_capacity", expert_capacity)
        self.expert_capacity = expert_capacity
        self.min_capacity = check_int("min_capacity", min_capacity)
        self.init_scale = float(check_float("init_scale", init_scale, 0.0, min_inclusive=False, finite=True))
        self.hidden_size, self.ffn_size, self.num_experts = hidden_size, ffn_size, num_experts
        self.process_group = process_group
        world, rank = 1, 0
        if process_group is not None:
            world, rank = dist.get_world_size(process_group), dist.get_rank(process_group)
            if num_experts % world:
                raise ValueError(
                    f"num_experts must be a multiple of the process group's size {world}, got {num_experts}"
                )
        self.world_size = world
        self.local_experts = num_experts // world
        self.expert_offset = rank * self.local_experts
        self.router = SwitchRouter(hidden_size, num_experts, jitter_noise=jitter_noise, bias=router_bias)
        self.experts = SwitchExperts(self.local_experts, hidden_size, ffn_size, activation, expert_dropout)
        self.last_routing: Routing | None = None
        self.expert_counts: Tensor | None = None
        self.dropped_fraction: float | None = None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Section 2.4: every weight from the truncated normal of scale ``init_scale`` (0.1)."""
        scaled_truncated_normal_(self.router.weight, self.hidden_size, self.init_scale, generator)
        if self.router.bias is not None:
            nn.init.zeros_(self.router.bias)
        for name, parameter in self.experts.named_parameters():
            fan_in = self.ffn_size if name == "wo" else self.hidden_size
            scaled_truncated_normal_(parameter, fan_in, self.init_scale, generator)

    @property
    def balancing_loss(self) -> Tensor | None:
        """Eq. 4 without alpha for the last forward (with gradient to the router); None before any."""
        if self.last_routing is None:
            return None
        return load_balancing_loss(self.last_routing.probs, self.last_routing.expert_index)

    @property
    def z_loss(self) -> Tensor | None:
        """The router z-loss of the last forward; None before any. Computed only when asked for."""
        return None if self.last_routing is None else router_z_loss(self.last_routing.logits)

    def capacity(self, tokens_per_group: int) -> int:
        if self.expert_capacity is not None:
            return self.expert_capacity
        return expert_capacity(tokens_per_group, self.num_experts, self.capacity_factor, self.min_capacity)

    def _check_input(self, x: object) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(
                f"x must be a torch.Tensor [batch, tokens, {self.hidden_size}], got {type(x).__name__}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"x must have shape [batch, tokens, {self.hidden_size}], got {tuple(x.shape)}")
        if x.shape[1] < 1:
            raise ValueError(f"x must have at least one token per sequence, got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        groups, tokens, hidden = x.shape
        capacity = self.capacity(tokens)
        routing = self.router(x, capacity)
        self.last_routing = routing
        with torch.no_grad():
            self.expert_counts = torch.bincount(routing.expert_index.flatten(), minlength=self.num_experts)
            self.dropped_fraction = float(1.0 - routing.kept.float().mean())

        flat_x = x.reshape(groups * tokens, hidden)
        source = routing.kept.flatten().nonzero().squeeze(-1)  # the tokens that are not dropped
        if self.process_group is None:
            # One process: the kept tokens grouped by expert, each expert applied to its own rows.
            # The same products as the capacity buffer below, without computing its empty slots.
            chosen = routing.expert_index.flatten()[source]
            order = torch.argsort(chosen, stable=True)
            source = source[order]
            counts = torch.bincount(chosen, minlength=self.num_experts).tolist()
            expert_out = self.experts.grouped(flat_x[source], counts)
        else:
            # Dispatch (Figure 3): token (g, s) goes to slot g * capacity + position of its
            # expert's buffer [N, G * C, H]; empty slots stay zero, dropped tokens are not written.
            slots = groups * capacity
            group_of = torch.arange(groups, device=x.device).repeat_interleave(tokens)
            target = routing.expert_index.flatten() * slots + group_of * capacity + routing.position.flatten()
            target = target[source]
            buffer = flat_x.new_zeros(self.num_experts * slots, hidden).index_copy(0, target, flat_x[source])
            buffer = self._expert_parallel(buffer.view(self.num_experts, slots, hidden))
            expert_out = buffer.reshape(self.num_experts * slots, hidden)[target]

        # Combine: y = p_{i*}(x) E_{i*}(x) (Eq. 2 with k = 1); the float32 gate is cast to the
        # input dtype first (Section 2.4: dispatch and combine in the model's precision).
        gate = routing.gate.flatten()[source].to(x.dtype).unsqueeze(-1)
        out = flat_x.new_zeros(groups * tokens, hidden).index_copy(0, source, expert_out * gate)
        return out.view(groups, tokens, hidden)

    def _expert_parallel(self, buffer: Tensor) -> Tensor:
        # [N, slots, H] = [W, N/W, slots, H]: chunk r holds the tokens for rank r's experts.
        world, local, slots, hidden = self.world_size, self.local_experts, buffer.shape[1], buffer.shape[2]
        received = _AllToAll.apply(buffer.reshape(world, local, slots, hidden), self.process_group)
        # received[r] = rank r's tokens for my experts; my experts process all ranks' tokens at once.
        batch = received.permute(1, 0, 2, 3).reshape(local, world * slots, hidden)
        processed = self.experts(batch).reshape(local, world, slots, hidden).permute(1, 0, 2, 3)
        returned = _AllToAll.apply(processed.contiguous(), self.process_group)
        return returned.reshape(world * local, slots, hidden)


_EXPERT_KEY = re.compile(r"experts\.expert_(\d+)\.(wi|wo)\.weight")


def from_transformers(
    state_dict: Mapping[str, Tensor], prefix: str = "", experts: Sequence[int] | None = None
) -> dict[str, Tensor]:
    """A :class:`SwitchFFN` state dict (ReLU experts) from transformers' ``SwitchTransformersSparseMLP``
    layout, the released Switch checkpoints'.

    Reads ``{prefix}router.classifier.weight`` ``[N, H]`` and ``{prefix}experts.expert_{i}.wi.weight``
    ``[F, H]`` / ``.wo.weight`` ``[H, F]`` (nn.Linear layout), stacked into our ``experts.wi [n, H, F]``
    and ``experts.wo [n, F, H]``. Keys outside ``prefix`` are ignored, so a whole model's state dict
    may be given with one layer's prefix (``"encoder.block.1.layer.1.mlp."``); a key under it that is
    not the router's or an expert's raises ``ValueError``. ``experts``: the expert indices to take, in
    order; every one of the router's ``N`` by default, and
    ``range(layer.expert_offset, layer.expert_offset + layer.local_experts)`` for one rank's layer
    under expert parallelism.
    """
    state_dict = check_state_dict(state_dict)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    router = f"{prefix}router.classifier.weight"
    if router not in state_dict:
        raise ValueError(f"state_dict must contain {router!r}; it has {sorted(state_dict)[:6]}...")
    unknown = [
        key
        for key in state_dict
        if key.startswith(prefix) and key != router and not _EXPERT_KEY.fullmatch(key[len(prefix) :])
    ]
    if unknown:
        raise ValueError(
            f"state_dict has keys under {prefix!r} that are not a Switch layer's: {unknown[:10]}"
        )
    if experts is None:
        experts = range(state_dict[router].shape[0])
    if isinstance(experts, (str, bytes)) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in experts
    ):
        raise TypeError(f"experts must be a sequence of expert indices (ints >= 0), got {experts!r}")
    names = [f"{prefix}experts.expert_{i}.{w}.weight" for i in experts for w in ("wi", "wo")]
    missing = [name for name in names if name not in state_dict]
    if missing or not names:
        raise ValueError(
            f"state_dict must contain the experts' weights; missing {missing[:10]} of experts {list(experts)}"
        )
    return {
        "router.weight": state_dict[router],
        "experts.wi": torch.stack([state_dict[f"{prefix}experts.expert_{i}.wi.weight"].t() for i in experts]),
        "experts.wo": torch.stack([state_dict[f"{prefix}experts.expert_{i}.wo.weight"].t() for i in experts]),
    }


def switch_layers(model: nn.Module) -> list[SwitchFFN]:
    """Every :class:`SwitchFFN` inside ``model``, in module order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, SwitchFFN)]


def switch_aux_loss(model: nn.Module, balancing_coef: float = 0.01, z_loss_coef: float = 0.0) -> Tensor:
    """``sum over Switch layers of alpha * (Eq. 4) + z_loss_coef * z-loss`` from their last forward.

    The paper adds Eq. 4 with ``alpha = 10^-2`` for every Switch layer. Use as
    ``extra_loss=lambda m: switch_aux_loss(m)`` in a training loop.
    """
    balancing_coef = float(check_float("balancing_coef", balancing_coef, 0.0, finite=True))
    z_loss_coef = float(check_float("z_loss_coef", z_loss_coef, 0.0, finite=True))
    layers = switch_layers(model)
    if not layers:
        raise ValueError("model must contain at least one SwitchFFN, got none")
    total: Tensor | None = None
    for layer in layers:
        if layer.last_routing is None:
            raise ValueError(
                "model's Switch layers must have run forward before switch_aux_loss, got one that has not"
            )
        term = balancing_coef * layer.balancing_loss
        if z_loss_coef > 0:  # the z-loss costs a logsumexp per token; skip it when unweighted
            term = term + z_loss_coef * layer.z_loss
        total = term if total is None else total + term
    assert total is not None
    return total
