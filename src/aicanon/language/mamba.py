"""Mamba (Gu & Dao 2023): selective state-space layers in a gated block, stacked into a language model.

**The selective SSM** (Section 3.2, Algorithm 2). For an input sequence ``x`` of ``E`` channels the
layer computes, with ``N`` state dimensions per channel::

    B_t = s_B(x_t) = Linear_N(x_t),   C_t = s_C(x_t) = Linear_N(x_t)
    Δ_t = τ_Δ(Parameter + s_Δ(x_t)),   s_Δ(x) = Broadcast_E(Linear_1(x))   (here Linear_R then Linear_E:
                                                                          the low-rank R = dt_rank form
                                                                          of Section 3.6)
    Ā_t = exp(Δ_t A),   B̄_t = Δ_t B_t                                    (discretisation, Eq. 4; B̄ by
                                                                          the Euler step, Section 3.5.2)
    h_t = Ā_t h_{t-1} + B̄_t x_t,   y_t = C_t h_t + D x_t                 (Eq. 2a, 2b)

with ``τ_Δ = softplus``, ``A`` diagonal and real, initialised as S4D-Real (``A_n = -(n + 1)``, stored
as ``A_log = log(n + 1)`` so that ``A = -exp(A_log)`` stays negative), ``D = 1``, and the bias of
``Δ``'s projection set so that ``softplus(bias)`` is log-uniform in ``[dt_min, dt_max]`` (Section 3.6,
Appendix E.2 of the official code). The scan itself is :mod:`aicanon.language.selective_scan`.

**The Mamba block** (Figure 3): ``in_proj`` expands ``D_model`` to ``2E`` (``E = expand · D_model``),
one half goes through a causal depthwise convolution of width ``d_conv``, SiLU and the selective SSM,
the other half is the gate ``silu(z)`` multiplied into the SSM's output, and ``out_proj`` maps back
to ``D_model``. Blocks are stacked with pre-normalisation (RMSNorm) and a residual connection, a final
RMSNorm, and (for :class:`MambaLM`) a language-model head tied to the embedding (Section 4.2,
"we use ... RMSNorm", as in the released models).

**The LTI ablation** (Table 1's "S4" layer inside the Mamba architecture): with ``selective=False``
the parameters ``Δ``, ``B``, ``C`` no longer depend on the input: ``x_proj`` is replaced by learned
vectors (a rank-R step ``dt`` through the same ``dt_proj``, and ``B``, ``C`` of size ``N``), so the
layer is a time-invariant diagonal SSM; everything else (block, conv, gate, discretisation, A's
initialisation) is unchanged.

**Recurrent inference** (Section 3.4): :meth:`MambaLM.step` advances one token with a constant-size
state per layer (the last ``d_conv - 1`` inputs of the convolution and the SSM state ``[E, N]``);
``forward(..., state=..., return_state=True)`` processes a prompt from (and into) such a state, so
generation is prefill + steps (:meth:`MambaLM.generate`).

**Weights.** Our parameter names are the official ``mamba_ssm`` package's (``MambaLMHeadModel``:
``backbone.embedding.weight``, ``backbone.layers.N.norm.weight``, ``backbone.layers.N.mixer.{in_proj,
conv1d, x_proj, dt_proj, out_proj}``, ``A_log``, ``D``, ``backbone.norm_f.weight``, ``lm_head.weight``),
so :func:`from_mamba_ssm` is a checked identity; ``transformers``' ``MambaForCausalLM`` names the
embedding ``embeddings`` (:func:`from_transformers` / :func:`to_transformers`). Configurations:
:func:`config_from_transformers`, :func:`config_to_transformers`, :func:`config_from_mamba_ssm`.

Departures from the paper and the official code:

* ``B̄ = Δ B`` (the official kernel's simplification; the paper's Eq. 4 ZOH for B is not used there either).
* The residual stream is kept in the parameters' dtype (float32 here; under autocast the sums are
  float32 as the official ``residual_in_fp32=True``), and the add+norm is not fused.
* The LTI ablation shares ``B`` and ``C`` across channels (as S6 does), while S4D has them per channel.
* Initialisation follows ``mamba_ssm``: embedding N(0, 0.02), linear biases zero, ``out_proj`` scaled by
  ``1/sqrt(n_layer)`` (``rescale_prenorm_residual``); ``dt_proj.bias`` by the inverse softplus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor, check_token_ids
from aicanon.core.state_dict import check_state_dict
from aicanon.language.selective_scan import METHODS, selective_scan, selective_state_update
from aicanon.nn.norm import RMSNorm

__all__ = [
    "MambaBlock",
    "MambaConfig",
    "MambaLM",
    "MambaMixer",
    "MambaModel",
    "MambaState",
    "config_from_mamba_ssm",
    "config_from_transformers",
    "config_to_transformers",
    "from_mamba_ssm",
    "from_transformers",
    "to_mamba_ssm",
    "to_transformers",
]


@dataclass
class MambaConfig:
    """A Mamba language model (names as ``mamba_ssm``'s; defaults are the paper's and its code's)."""

    d_model: int = 768
    """Width of the residual stream (D in the paper)."""
    n_layer: int = 24
    """Number of Mamba blocks (the 130M model: 24 blocks of width 768)."""
    vocab_size: int = 50280
    """Vocabulary (the released models: GPT-NeoX's 50277 tokens padded to a multiple of 8)."""
    d_state: int = 16
    """SSM state size per channel (N = 16, Section 4)."""
    d_conv: int = 4
    """Width of the causal depthwise convolution (4)."""
    expand: int = 2
    """Expansion E = expand · d_model of the block (2, Section 3.4)."""
    dt_rank: int | None = None
    """Rank R of Δ's projection; None: ceil(d_model / 16) as the official code."""
    dt_min: float = 0.001
    """Smallest initial Δ (softplus of dt_proj's bias is log-uniform in [dt_min, dt_max])."""
    dt_max: float = 0.1
    """Largest initial Δ."""
    dt_init: str = "random"
    """``random`` (uniform in ±dt_rank^-0.5 · dt_scale) or ``constant`` initialisation of dt_proj's weight."""
    dt_scale: float = 1.0
    """Scale of dt_proj's initial weight."""
    dt_init_floor: float = 1e-4
    """Floor of the initial Δ."""
    conv_bias: bool = True
    """Bias in the depthwise convolution."""
    bias: bool = False
    """Biases in in_proj and out_proj."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    selective: bool = True
    """False: the LTI ablation (Δ, B, C input-independent; Table 1's S4 layer in the Mamba block)."""
    rescale_prenorm_residual: bool = True
    """Scale out_proj's initial weight by 1/sqrt(n_layer) (the official initialisation)."""
    scan: str = "auto"
    """Scan implementation: auto (Triton on CUDA; on CPU the compiled step loop from length 1,024, else the
    step loop), chunked, compiled, reference, triton."""

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand"):
            check_int(name, getattr(self, name), 1)
        check_int("dt_rank", self.dt_rank, 1, allow_none=True)
        check_float("dt_min", self.dt_min, 0.0, min_inclusive=False)
        check_float("dt_max", self.dt_max, self.dt_min, note="at least dt_min")
        check_float("dt_scale", self.dt_scale, 0.0, min_inclusive=False)
        check_float("dt_init_floor", self.dt_init_floor, 0.0, min_inclusive=False)
        check_float("norm_eps", self.norm_eps, 0.0, min_inclusive=False)
        check_choice("dt_init", self.dt_init, ("random", "constant"))
        check_choice("scan", self.scan, METHODS)
        for name in ("conv_bias", "bias", "selective", "rescale_prenorm_residual"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")

    @property
    def d_inner(self) -> int:
        """E = expand · d_model: the block's inner width."""
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        """R, the rank of Δ's projection."""
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.d_model / 16)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MambaState:
    """The recurrent state of a whole model: per layer the convolution's last ``d_conv - 1`` inputs
    (``[batch, E, d_conv - 1]``) and the SSM state (``[batch, E, N]``, float32). Its size does not
    grow with the sequence (Section 3.4)."""

    conv: list[Tensor] = field(default_factory=list)
    ssm: list[Tensor] = field(default_factory=list)


class MambaMixer(nn.Module):
    """The Mamba block of Figure 3: in_proj, causal depthwise conv, SiLU, selective SSM, gate, out_proj."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        E, N, R = cfg.d_inner, cfg.d_state, cfg.rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * E, bias=cfg.bias)
        self.conv1d = nn.Conv1d(E, E, cfg.d_conv, groups=E, padding=cfg.d_conv - 1, bias=cfg.conv_bias)
        if cfg.selective:
            self.x_proj = nn.Linear(E, R + 2 * N, bias=False)  # s_Δ (rank R), s_B, s_C of Algorithm 2
        else:
            # LTI ablation: the same three quantities, learned but the same at every step and input.
            self.dt_lti = nn.Parameter(torch.zeros(R))
            self.B_lti = nn.Parameter(torch.randn(N))
            self.C_lti = nn.Parameter(torch.randn(N))
        self.dt_proj = nn.Linear(R, E, bias=True)
        # S4D-Real (Section 3.6): A_n = -(n + 1) for every channel, kept as log(-A).
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, cfg.d_model, bias=cfg.bias)
        self.reset_dt()

    @torch.no_grad()
    def reset_dt(self) -> None:
        """Δ's initialisation: dt_proj's weight uniform (or constant) in ±R^-0.5 · dt_scale, its bias the
        inverse softplus of a log-uniform Δ in [dt_min, dt_max] (floored at dt_init_floor)."""
        cfg = self.cfg
        std = cfg.rank**-0.5 * cfg.dt_scale
        if cfg.dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(cfg.d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(
            cfg.dt_min
        )
        dt = torch.exp(log_dt).clamp(min=cfg.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)

    def ssm_parameters(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(delta before bias and softplus, B, C)`` for the conv's output ``u`` [batch, L, E]."""
        batch, length, _ = u.shape
        N = self.cfg.d_state
        if self.cfg.selective:
            dt, B, C = self.x_proj(u).split([self.cfg.rank, N, N], dim=-1)
            return F.linear(dt, self.dt_proj.weight), B, C
        delta = F.linear(self.dt_lti, self.dt_proj.weight).to(u.dtype)
        return (
            delta.expand(batch, length, -1),
            self.B_lti.to(u.dtype).expand(batch, length, N),
            self.C_lti.to(u.dtype).expand(batch, length, N),
        )

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, return_state: bool = False
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x`` [batch, L, d_model] -> [batch, L, d_model]; from a ``(conv, ssm)`` state when given,
        returning the state after the last step when ``return_state``."""
        length = x.size(1)
        K = self.cfg.d_conv
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = u.transpose(1, 2)  # [batch, E, L] for the convolution over time
        weight = self.conv1d.weight
        if state is not None:
            u = torch.cat([state[0].to(u.dtype), u], dim=-1)  # the previous K-1 inputs come first
            conv = F.conv1d(u, weight, self.conv1d.bias, groups=u.size(1))
        else:
            conv = F.conv1d(u, weight, self.conv1d.bias, padding=K - 1, groups=u.size(1))[..., :length]
        conv_state = None
        if return_state:  # the last K-1 inputs of the convolution (zeros before the first token)
            padded = F.pad(u, (max(0, K - 1 - u.size(-1)), 0))
            conv_state = padded[..., padded.size(-1) - (K - 1) :]
        u = F.silu(conv).transpose(1, 2)  # [batch, L, E]
        delta, B, C = self.ssm_parameters(u)
        A = -torch.exp(self.A_log.float())
        result = selective_scan(
            u,
            delta,
            A,
            B,
            C,
            self.D,
            z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            initial_state=state[1] if state is not None else None,
            return_final_state=return_state,
            method=self.cfg.scan,
        )
        if return_state:
            y, ssm_state = result
            return self.out_proj(y), (conv_state, ssm_state)
        return self.out_proj(result)

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token: ``x`` [batch, d_model] and the ``(conv, ssm)`` state -> output and the next state."""
        u, z = self.in_proj(x).chunk(2, dim=-1)
        window = torch.cat([state[0].to(u.dtype), u[..., None]], dim=-1)  # [batch, E, K]
        conv = (window * self.conv1d.weight[:, 0]).sum(-1)
        if self.conv1d.bias is not None:
            conv = conv + self.conv1d.bias
        u = F.silu(conv)
        delta, B, C = (t[:, 0] for t in self.ssm_parameters(u[:, None]))
        A = -torch.exp(self.A_log.float())
        y, ssm_state = selective_state_update(
            state[1], u, delta, A, B, C, self.D, z, delta_bias=self.dt_proj.bias, delta_softplus=True
        )
        return self.out_proj(y), (window[..., 1:], ssm_state)


class MambaBlock(nn.Module):
    """A residual layer: ``x + Mixer(RMSNorm(x))``."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = MambaMixer(cfg)

    def forward(self, x: Tensor, state=None, return_state: bool = False):
        if return_state:
            out, new_state = self.mixer(self.norm(x), state, return_state=True)
            return x + out, new_state
        return x + self.mixer(self.norm(x), state)

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, new_state = self.mixer.step(self.norm(x), state)
        return x + out, new_state


class MambaModel(nn.Module):
    """Embedding, ``n_layer`` Mamba blocks, final RMSNorm: ids [batch, L] -> hidden [batch, L, d_model]."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(MambaBlock(cfg) for _ in range(cfg.n_layer))
        self.norm_f = RMSNorm(cfg.d_model, eps=cfg.norm_eps)

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> MambaState:
        """The all-zero state before the first token."""
        check_int("batch_size", batch_size, 1)
        E, N, K = self.cfg.d_inner, self.cfg.d_state, self.cfg.d_conv
        device = device if device is not None else self.embedding.weight.device
        dtype = dtype if dtype is not None else self.embedding.weight.dtype
        return MambaState(
            conv=[torch.zeros(batch_size, E, K - 1, device=device, dtype=dtype) for _ in self.layers],
            ssm=[torch.zeros(batch_size, E, N, device=device, dtype=torch.float32) for _ in self.layers],
        )

    def _check_state(self, state: MambaState, batch: int) -> None:
        if not isinstance(state, MambaState):
            raise TypeError(f"state must be a MambaState, got {type(state).__name__}")
        E, N, K = self.cfg.d_inner, self.cfg.d_state, self.cfg.d_conv
        if len(state.conv) != len(self.layers) or len(state.ssm) != len(self.layers):
            raise ValueError(
                f"state must hold {len(self.layers)} layers, got {len(state.conv)} conv and "
                f"{len(state.ssm)} ssm states"
            )
        for conv, ssm in zip(state.conv, state.ssm):
            check_tensor("state.conv", conv, shape=(batch, E, K - 1), floating=True)
            check_tensor("state.ssm", ssm, shape=(batch, E, N), floating=True)

    def forward(
        self, input_ids: Tensor, state: MambaState | None = None, return_state: bool = False
    ) -> Tensor | tuple[Tensor, MambaState]:
        check_token_ids("input_ids", input_ids)
        if input_ids.size(1) == 0:
            raise ValueError("input_ids must hold at least one token, got length 0")
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= self.cfg.vocab_size:
            raise ValueError(
                f"input_ids must be in [0, {self.cfg.vocab_size}), got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        if state is not None:
            self._check_state(state, input_ids.size(0))
        h = self.embedding(input_ids)
        new_state = MambaState()
        for index, layer in enumerate(self.layers):
            layer_state = (state.conv[index], state.ssm[index]) if state is not None else None
            if return_state:
                h, (conv, ssm) = layer(h, layer_state, return_state=True)
                new_state.conv.append(conv)
                new_state.ssm.append(ssm)
            else:
                h = layer(h, layer_state)
        h = self.norm_f(h)
        return (h, new_state) if return_state else h

    def step(self, input_ids: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """One token per sequence: ``input_ids`` [batch] -> hidden [batch, d_model] and the next state."""
        check_tensor("input_ids", input_ids, dim=1, dtype=(torch.long, torch.int))
        self._check_state(state, input_ids.size(0))
        h = self.embedding(input_ids)
        new_state = MambaState()
        for index, layer in enumerate(self.layers):
            h, (conv, ssm) = layer.step(h, (state.conv[index], state.ssm[index]))
            new_state.conv.append(conv)
            new_state.ssm.append(ssm)
        return self.norm_f(h), new_state


class MambaLM(nn.Module):
    """Mamba language model: :class:`MambaModel` and a head tied to the embedding; ids -> logits."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        if not isinstance(cfg, MambaConfig):
            raise TypeError(f"cfg must be a MambaConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.backbone = MambaModel(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.backbone.embedding.weight  # tied (Section 4.2's models, mamba_ssm)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """mamba_ssm's ``_init_weights``: embedding N(0, 0.02); linear biases zero (not dt_proj's);
        out_proj kaiming-uniform scaled by 1/sqrt(n_layer)."""
        nn.init.normal_(self.backbone.embedding.weight, std=0.02)
        for layer in self.backbone.layers:
            mixer = layer.mixer
            for linear in (mixer.in_proj, mixer.out_proj):
                if linear.bias is not None:
                    nn.init.zeros_(linear.bias)
            if self.cfg.rescale_prenorm_residual:
                nn.init.kaiming_uniform_(mixer.out_proj.weight, a=math.sqrt(5))
                mixer.out_proj.weight /= math.sqrt(self.cfg.n_layer)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> MambaState:
        return self.backbone.initial_state(batch_size, device, dtype)

    def forward(
        self, input_ids: Tensor, state: MambaState | None = None, return_state: bool = False
    ) -> Tensor | tuple[Tensor, MambaState]:
        """Logits [batch, L, vocab]; with ``return_state`` also the state after the last token."""
        if return_state:
            h, new_state = self.backbone(input_ids, state, return_state=True)
            return self.lm_head(h), new_state
        return self.lm_head(self.backbone(input_ids, state))

    def step(self, input_ids: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """Recurrent mode: logits [batch, vocab] for one token per sequence, and the next state."""
        h, new_state = self.backbone.step(input_ids, state)
        return self.lm_head(h), new_state

    @torch.no_grad()
    def generate(self, input_ids: Tensor, max_new_tokens: int) -> Tensor:
        """Greedy decoding: the prompt in one parallel pass (prefill), then one recurrent step per token."""
        check_token_ids("input_ids", input_ids)
        check_int("max_new_tokens", max_new_tokens, 0)
        logits, state = self(input_ids, return_state=True)
        tokens = [input_ids]
        next_token = logits[:, -1].argmax(-1)
        for _ in range(max_new_tokens):
            tokens.append(next_token[:, None])
            logits, state = self.step(next_token, state)
            next_token = logits.argmax(-1)
        return torch.cat(tokens, dim=1)


# ---------------------------------------------------------------------------------------------------
# Weights and configurations of the released formats
# ---------------------------------------------------------------------------------------------------


def _as_dict(config: Mapping[str, Any] | Any) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "to_dict"):
        return config.to_dict()
    raise TypeError(f"config must be a mapping or a transformers MambaConfig, got {type(config).__name__}")


def config_from_transformers(config: Mapping[str, Any] | Any, **overrides: Any) -> MambaConfig:
    """Our config from a ``transformers.MambaConfig`` (or its ``config.json`` dict); refuses options
    that change the function and that we lack (another activation)."""
    data = _as_dict(config)
    act = data.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"config.hidden_act must be 'silu', got {act!r}")
    rank = data.get("time_step_rank", "auto")
    hidden = int(data["hidden_size"])
    values = dict(
        d_model=hidden,
        n_layer=int(data["num_hidden_layers"]),
        vocab_size=int(data["vocab_size"]),
        d_state=int(data.get("state_size", 16)),
        d_conv=int(data.get("conv_kernel", 4)),
        expand=int(data.get("expand", 2)),
        dt_rank=math.ceil(hidden / 16) if rank == "auto" else int(rank),
        dt_min=float(data.get("time_step_min", 0.001)),
        dt_max=float(data.get("time_step_max", 0.1)),
        dt_init=str(data.get("time_step_init_scheme", "random")),
        dt_scale=float(data.get("time_step_scale", 1.0)),
        dt_init_floor=float(data.get("time_step_floor", 1e-4)),
        conv_bias=bool(data.get("use_conv_bias", True)),
        bias=bool(data.get("use_bias", False)),
        norm_eps=float(data.get("layer_norm_epsilon", 1e-5)),
        rescale_prenorm_residual=bool(data.get("rescale_prenorm_residual", False)),
    )
    values.update(overrides)
    return MambaConfig(**values)


def config_to_transformers(cfg: MambaConfig) -> dict[str, Any]:
    """The ``transformers.MambaConfig`` keyword arguments of ``cfg`` (``MambaConfig(**result)``)."""
    if not cfg.selective:
        raise ValueError("cfg.selective must be True: transformers has no LTI (selective=False) Mamba")
    return dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        state_size=cfg.d_state,
        num_hidden_layers=cfg.n_layer,
        layer_norm_epsilon=cfg.norm_eps,
        expand=cfg.expand,
        conv_kernel=cfg.d_conv,
        use_bias=cfg.bias,
        use_conv_bias=cfg.conv_bias,
        hidden_act="silu",
        residual_in_fp32=True,
        time_step_rank=cfg.rank,
        time_step_scale=cfg.dt_scale,
        time_step_min=cfg.dt_min,
        time_step_max=cfg.dt_max,
        time_step_init_scheme=cfg.dt_init,
        time_step_floor=cfg.dt_init_floor,
        rescale_prenorm_residual=cfg.rescale_prenorm_residual,
        tie_word_embeddings=True,
    )


def config_from_mamba_ssm(config: Mapping[str, Any], **overrides: Any) -> MambaConfig:
    """Our config from a ``mamba_ssm`` ``config.json`` (``d_model``, ``n_layer``, ``vocab_size``,
    ``ssm_cfg``, ``pad_vocab_size_multiple``; e.g. state-spaces/mamba-130m). The vocabulary is padded
    as the official ``MambaLMHeadModel`` pads it."""
    data = dict(config)
    ssm = dict(data.get("ssm_cfg") or {})
    if ssm.get("layer", "Mamba1") != "Mamba1":
        raise ValueError(f"config.ssm_cfg.layer must be 'Mamba1', got {ssm['layer']!r}")
    if not data.get("rms_norm", True):
        raise ValueError("config.rms_norm must be true: the LayerNorm variant is not implemented")
    if data.get("attn_layer_idx"):
        raise ValueError(
            f"config.attn_layer_idx must be empty (no hybrid attention), got {data['attn_layer_idx']}"
        )
    vocab = int(data["vocab_size"])
    multiple = int(data.get("pad_vocab_size_multiple", 8))
    vocab += (-vocab) % multiple
    names = {"d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max", "dt_init", "dt_scale",
             "dt_init_floor", "conv_bias", "bias"}  # fmt: skip
    unknown = set(ssm) - names - {"layer", "use_fast_path"}
    if unknown:
        raise ValueError(f"config.ssm_cfg has options we do not implement: {sorted(unknown)}")
    values: dict[str, Any] = dict(
        d_model=int(data["d_model"]), n_layer=int(data["n_layer"]), vocab_size=vocab
    )
    values.update({k: v for k, v in ssm.items() if k in names and not (k == "dt_rank" and v == "auto")})
    values.update(overrides)
    return MambaConfig(**values)


def _backbone_keys(state_dict: Mapping[str, Tensor], argument: str) -> dict[str, Tensor]:
    """A state dict with every key under ``backbone.`` (a bare MambaModel's keys get the prefix)."""
    state_dict = check_state_dict(state_dict, argument)
    out = {}
    for key, value in state_dict.items():
        if key == "lm_head.weight" or key.startswith("backbone."):
            out[key] = value
        else:
            out["backbone." + key] = value
    return out


def from_mamba_ssm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from ``mamba_ssm``'s ``MambaLMHeadModel`` layout (the same names; checked).

    A missing ``lm_head.weight`` is the tied embedding."""
    out = _backbone_keys(state_dict, "state_dict")
    if "backbone.embedding.weight" not in out:
        raise ValueError("state_dict must hold backbone.embedding.weight (mamba_ssm layout)")
    out.setdefault("lm_head.weight", out["backbone.embedding.weight"])
    return out


def to_mamba_ssm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``mamba_ssm``'s layout of our state dict (the same names, ``lm_head.weight`` written out)."""
    out = dict(check_state_dict(state_dict, "state_dict"))
    if "backbone.embedding.weight" not in out:
        raise ValueError("state_dict must be a MambaLM's (backbone.embedding.weight missing)")
    out.setdefault("lm_head.weight", out["backbone.embedding.weight"])
    return out


def from_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from ``transformers``' ``MambaForCausalLM`` (or a bare ``MambaModel``'s) layout:
    ``embeddings`` becomes ``embedding``; a missing ``lm_head.weight`` is the tied embedding."""
    out = {}
    for key, value in _backbone_keys(state_dict, "state_dict").items():
        out[key.replace("backbone.embeddings.", "backbone.embedding.")] = value
    if "backbone.embedding.weight" not in out:
        raise ValueError(
            "state_dict must hold backbone.embeddings.weight (transformers MambaForCausalLM layout)"
        )
    out.setdefault("lm_head.weight", out["backbone.embedding.weight"])
    return out


def to_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``transformers``' ``MambaForCausalLM`` layout of our state dict."""
    out = {}
    for key, value in to_mamba_ssm(state_dict).items():
        out[key.replace("backbone.embedding.", "backbone.embeddings.")] = value
    return out
