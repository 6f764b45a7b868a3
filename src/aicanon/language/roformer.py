"""RoFormer: a BERT encoder with rotary position embedding (Su et al. 2021, "RoFormer: Enhanced
Transformer with Rotary Position Embedding"; equations numbered as in arXiv 2104.09864v5).

RoFormer is BERT (post-LayerNorm blocks, GELU feed-forward, token and segment embeddings, bidirectional
attention) whose absolute position embeddings are removed and whose queries and keys are instead rotated
by their positions (Section 3.2):

* Eq. (14): ``f_{q,k}(x_m, m) = R^d_{Theta,m} W_{q,k} x_m``, where ``R^d_{Theta,m}`` (Eq. 15) is block
  diagonal, block ``i`` rotating the pair of *adjacent* dimensions ``(2i, 2i+1)`` by ``m theta_i`` with
  ``theta_i = 10000^(-2i/d)`` (``i = 0 .. d/2 - 1``);
* Eq. (16): ``q_m^T k_n = x_m^T W_q R^d_{Theta,n-m} W_k x_n``: scores depend on positions only through
  ``n - m`` (a relative encoding computed from absolute rotations);
* Eq. (34): the rotation is computed element-wise, ``R x = x * cos(m theta) + rotate(x) * sin(m theta)``
  (:func:`aicanon.nn.rotary.apply_rotary` with ``interleaved=True``);
* Eq. (35)-(37), Section 3.4.3 (long-term decay): writing ``h_i = q_[2i:2i+1] k*_[2i:2i+1]`` (pairs as
  complex numbers) and ``S_j = sum_{k<j} e^{i(m-n) theta_k}``, Abel summation gives
  ``|sum_i h_i e^{i(m-n) theta_i}| <= (max_i |h_{i+1} - h_i|) sum_i |S_{i+1}|`` (Eq. 36), and the
  relative upper bound ``(1/(d/2)) sum_{i=1}^{d/2} |S_i|`` (Eq. 37, :func:`relative_upper_bound`) decays,
  on average, with the distance ``m - n`` (Figure 2).

One block (BERT's, post-LN): ``h = LN(x + Dropout(W_o Attn(x)))``, ``y = LN(h + Dropout(W_2 GELU(W_1 h)))``,
with ``Attn`` the softmax attention of the rotated queries and keys, scaled by ``1/sqrt(d_head)``.

Weights: the released checkpoints (``junnyu/roformer_chinese_base`` and the other transformers
``RoFormerModel`` checkpoints) load through :func:`from_transformers`; our module names are
plain words, the converter maps theirs onto ours (and :func:`to_transformers` back), and
:func:`config_from_transformers` reads their configuration:
``load_state_dict_strict(RoFormer(config_from_transformers(config)), from_transformers(state_dict))``
(:func:`aicanon.core.state_dict.load_state_dict_strict`).

Departures from the paper, and why:

* ``rotary_value=True`` also rotates the values (as the released ``roformer_chinese_*`` configuration
  option and transformers do); the paper rotates queries and keys only (Eq. 14). Off by default.
* Only the encoder (``RoFormerModel``'s last hidden state) is here, no MLM/classification heads: the
  pre-training claim of Figure 3 is reproduced with a causal LM (:mod:`aicanon.experiments.roformer`).
* The linear-attention variant of Eq. (19) is not implemented (the released models use softmax attention).
* The rotation angles ``m theta_i`` are computed in float32 (:class:`aicanon.nn.rotary.RotaryEmbedding`,
  as Llama implementations do); transformers' RoFormer tabulates its sinusoids in float64 before
  casting. The cos/sin tables agree to 2e-5 up to position 512 and to 7e-5 at 1536 (tested).
* Padding-only query rows (every key masked) attend to all keys instead of giving NaN
  (:func:`aicanon.nn.attention.attention`); their outputs belong to padding and are to be ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_token_ids
from aicanon.nn.attention import attention
from aicanon.nn.rotary import RotaryEmbedding, apply_rotary, rope_frequencies

__all__ = [
    "RoFormer",
    "RoFormerConfig",
    "config_from_transformers",
    "from_transformers",
    "relative_upper_bound",
    "score_and_bound",
    "to_transformers",
]

_ACTIVATIONS = {
    "gelu": F.gelu,  # BERT's exact (erf) GELU, transformers' "gelu"
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass
class RoFormerConfig:
    """Sizes and options of a RoFormer encoder (defaults: ``roformer_chinese_base``)."""

    vocab_size: int = 50000
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    embedding_size: int | None = None
    """Width of the token embeddings (ALBERT-style factorisation, as transformers allows); None = hidden_size."""
    max_position_embeddings: int = 1536
    """Longest sequence accepted (the released checkpoints' rotary table length)."""
    type_vocab_size: int = 2
    """Segment (token type) embeddings, as BERT."""
    pad_token_id: int | None = 0
    """The padding token's embedding row gets no gradient (as ``nn.Embedding(padding_idx)`` in BERT)."""
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    rope_base: float = 10000.0
    """The base of ``theta_i = base^(-2i/d)`` (Eq. 15: 10000)."""
    rotary_value: bool = False
    """Rotate the values too (an option of the released models; not in the paper)."""
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "embedding_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            check_int(name, getattr(self, name))
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                "hidden_size must split into num_heads heads of even size (RoPE rotates pairs), got "
                f"hidden_size={self.hidden_size}, num_heads={self.num_heads}"
            )
        check_int("pad_token_id", self.pad_token_id, 0, self.vocab_size - 1, allow_none=True)
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(_ACTIVATIONS)}, got {self.hidden_act!r}")
        for name in ("hidden_dropout", "attention_dropout"):
            check_float(name, getattr(self, name), 0, 1, max_inclusive=False)
        check_float("rope_base", self.rope_base, 1, min_inclusive=False)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict:
        return asdict(self)


def config_from_transformers(config) -> RoFormerConfig:
    """Our config from a transformers ``RoFormerConfig`` (read by attribute; nothing imported)."""
    return RoFormerConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        embedding_size=config.embedding_size,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        pad_token_id=config.pad_token_id,
        hidden_act=config.hidden_act,
        layer_norm_eps=config.layer_norm_eps,
        hidden_dropout=float(config.hidden_dropout_prob),
        attention_dropout=float(config.attention_probs_dropout_prob),
        rotary_value=bool(config.rotary_value),
        init_std=config.initializer_range,
    )


class RoFormerSelfAttention(nn.Module):
    """Bidirectional multi-head attention with RoPE on queries and keys (Eq. 14-16, 34)."""

    def __init__(self, cfg: RoFormerConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.rotary_value = cfg.rotary_value
        self.dropout = cfg.attention_dropout
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.output = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        b, t, _ = x.shape

        def heads(projection: nn.Linear) -> Tensor:
            return projection(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query), heads(self.key), heads(self.value)
        # Eq. (14): rotate queries and keys by their positions, adjacent pairs (Eq. 15), via Eq. (34).
        q, k = apply_rotary(q, cos, sin, interleaved=True), apply_rotary(k, cos, sin, interleaved=True)
        if self.rotary_value:
            v = apply_rotary(v, cos, sin, interleaved=True)
        out = attention(
            q,
            k,
            v,
            causal=False,
            key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.output(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class RoFormerLayer(nn.Module):
    """BERT's post-LN block: ``h = LN(x + Drop(Attn(x)))``, ``y = LN(h + Drop(W_2 act(W_1 h)))``."""

    def __init__(self, cfg: RoFormerConfig) -> None:
        super().__init__()
        self.attention = RoFormerSelfAttention(cfg)
        self.attention_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.activation = _ACTIVATIONS[cfg.hidden_act]
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        h = self.attention_norm(x + self.dropout(self.attention(x, cos, sin, key_padding_mask)))
        return self.output_norm(h + self.dropout(self.output(self.activation(self.intermediate(h)))))


class RoFormer(nn.Module):
    """The RoFormer encoder: ``model(input_ids, attention_mask=None, token_type_ids=None) -> [B, T, H]``.

    ``attention_mask`` ``[B, T]`` is 1/True at real tokens (keys at 0 are not attended to);
    ``token_type_ids`` ``[B, T]`` default to 0. Positions are ``0 .. T-1`` in every row (right padding).
    """

    def __init__(self, cfg: RoFormerConfig) -> None:
        super().__init__()
        if not isinstance(cfg, RoFormerConfig):
            raise TypeError(f"cfg must be a RoFormerConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_size, padding_idx=cfg.pad_token_id)
        self.token_type_embedding = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        self.embedding_norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.embedding_dropout = nn.Dropout(cfg.hidden_dropout)
        self.embedding_projection = (
            nn.Linear(cfg.embedding_size, cfg.hidden_size) if cfg.embedding_size != cfg.hidden_size else None
        )
        # No absolute position embedding: position enters only through the rotations (Section 3.2).
        self.rotary = RotaryEmbedding(cfg.head_dim, cfg.rope_base, interleaved=True)
        self.layers = nn.ModuleList(RoFormerLayer(cfg) for _ in range(cfg.num_layers))
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # BERT's initialisation (N(0, 0.02), zero biases, unit LayerNorm); the paper does not state one.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        cfg = self.config
        _check_ids("input_ids", input_ids, cfg.vocab_size)
        b, t = input_ids.shape
        if t > cfg.max_position_embeddings:
            raise ValueError(
                f"input_ids length must be <= max_position_embeddings={cfg.max_position_embeddings}, got {t}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        else:
            _check_ids("token_type_ids", token_type_ids, cfg.type_vocab_size, shape=(b, t))
        key_padding_mask = None
        if attention_mask is not None:
            if not isinstance(attention_mask, Tensor) or tuple(attention_mask.shape) != (b, t):
                got = (
                    tuple(attention_mask.shape)
                    if isinstance(attention_mask, Tensor)
                    else type(attention_mask)
                )
                raise ValueError(f"attention_mask must have shape {(b, t)} like input_ids, got {got}")
            if attention_mask.dtype.is_floating_point and not torch.all(
                (attention_mask == 0) | (attention_mask == 1)
            ):
                raise ValueError("attention_mask must hold 0/1 (or bools): 1 at real tokens, 0 at padding")
            key_padding_mask = attention_mask.to(device=input_ids.device, dtype=torch.bool)

        x = self.token_embedding(input_ids) + self.token_type_embedding(token_type_ids)
        x = self.embedding_dropout(self.embedding_norm(x))
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        # float32 tables: apply_rotary rotates in float32 and returns the input's dtype
        cos, sin = self.rotary.cos_sin(torch.arange(t, device=input_ids.device))
        for layer in self.layers:
            x = layer(x, cos, sin, key_padding_mask)
        return x


def _check_ids(name: str, ids: Tensor, size: int, shape: tuple[int, int] | None = None) -> None:
    check_token_ids(name, ids)
    if shape is not None and tuple(ids.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} like input_ids, got {tuple(ids.shape)}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= size:
            raise ValueError(f"{name} must be in [0, {size}), got values in [{low}, {high}]")


# transformers' RoFormerModel names -> ours (per layer: the part after "encoder.layer.<i>.").
_EMBEDDING_NAMES = {
    "embeddings.word_embeddings.weight": "token_embedding.weight",
    "embeddings.token_type_embeddings.weight": "token_type_embedding.weight",
    "embeddings.LayerNorm.weight": "embedding_norm.weight",
    "embeddings.LayerNorm.bias": "embedding_norm.bias",
    "embeddings_project.weight": "embedding_projection.weight",
    "embeddings_project.bias": "embedding_projection.bias",
}
_LAYER_NAMES = {
    "attention.self.query": "attention.query",
    "attention.self.key": "attention.key",
    "attention.self.value": "attention.value",
    "attention.output.dense": "attention.output",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "intermediate",
    "output.dense": "output",
    "output.LayerNorm": "output_norm",
}
# Not weights of ours: the fixed sinusoid table (we compute the rotations from Eq. 15 instead).
_IGNORED = ("encoder.embed_positions.weight",)


def from_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A transformers ``RoFormerModel`` state dict (or ``RoFormerFor*``'s ``roformer.`` part) as ours.

    Heads outside the encoder (``cls.``, ``classifier.``...) are dropped; an unknown encoder key is an error.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    keys = list(state_dict)
    prefixed = any(key.startswith("roformer.") for key in keys)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if prefixed:
            if not key.startswith("roformer."):
                continue  # a task head
            key = key[len("roformer.") :]
        if key in _IGNORED:
            continue
        if key in _EMBEDDING_NAMES:
            out[_EMBEDDING_NAMES[key]] = value
            continue
        parts = key.split(".")
        if len(parts) >= 4 and parts[0] == "encoder" and parts[1] == "layer":
            module, leaf = ".".join(parts[3:-1]), parts[-1]
            if module in _LAYER_NAMES:
                out[f"layers.{parts[2]}.{_LAYER_NAMES[module]}.{leaf}"] = value
                continue
        raise ValueError(f"state_dict has a key that is not part of a RoFormerModel: {key!r}")
    return out


def to_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict with transformers ``RoFormerModel`` names (without the sinusoid table)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    embeddings = {ours: theirs for theirs, ours in _EMBEDDING_NAMES.items()}
    layer_names = {ours: theirs for theirs, ours in _LAYER_NAMES.items()}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in embeddings:
            out[embeddings[key]] = value
            continue
        parts = key.split(".")
        module = ".".join(parts[2:-1])
        if parts[0] != "layers" or module not in layer_names:
            raise ValueError(f"state_dict has a key that is not part of a RoFormer: {key!r}")
        out[f"encoder.layer.{parts[1]}.{layer_names[module]}.{parts[-1]}"] = value
    return out


def relative_upper_bound(distances: Tensor, head_dim: int, base: float = 10000.0) -> Tensor:
    """Eq. (37): ``(1/(d/2)) sum_{j=1}^{d/2} |S_j|`` with ``S_j = sum_{k=0}^{j-1} e^{i r theta_k}``, per distance ``r``.

    The factor by which Eq. (36) bounds ``|q_m^T k_n|`` (times ``max_i |h_{i+1} - h_i|`` and ``d/2``);
    Figure 2 plots it against the relative distance ``r`` for ``d = 128``. Computed in float64.
    """
    if not isinstance(distances, Tensor) or distances.dtype.is_complex:
        raise ValueError(f"distances must be a real tensor, got {type(distances).__name__}")
    theta = rope_frequencies(head_dim, base).double()  # validates head_dim and base (Eq. 15)
    angles = distances.double().unsqueeze(-1) * theta.to(distances.device)  # [..., d/2]
    partial = torch.polar(torch.ones_like(angles), angles).cumsum(-1)  # S_1 .. S_{d/2}
    return partial.abs().mean(-1)


def score_and_bound(q: Tensor, k: Tensor, distance: int, base: float = 10000.0) -> tuple[float, float]:
    """``|sum_i h_i e^{i r theta_i}|`` (Eq. 35, the rotated score as a complex sum) and its Eq. (36) bound.

    ``q, k`` are single vectors ``[d]`` whose adjacent pairs are read as complex numbers; ``h_i =
    q_[2i:2i+1] conj(k_[2i:2i+1])``. The real part of the sum is the RoPE score at relative distance
    ``r``; the bound is ``(max_i |h_{i+1} - h_i|) sum_j |S_j|`` with ``h_{d/2} = 0``.
    """
    if not isinstance(q, Tensor) or not isinstance(k, Tensor) or q.dim() != 1 or q.shape != k.shape:
        raise ValueError(
            f"q and k must be 1-D tensors of equal length, got {getattr(q, 'shape', type(q))} and "
            f"{getattr(k, 'shape', type(k))}"
        )
    theta = rope_frequencies(q.shape[-1], base).double()
    h = (
        torch.complex(q[0::2].double(), q[1::2].double())
        * torch.complex(k[0::2].double(), k[1::2].double()).conj()
    )
    value = (h * torch.polar(torch.ones_like(theta), distance * theta)).sum().abs()
    partial = torch.polar(torch.ones_like(theta), distance * theta).cumsum(-1)
    # Abel summation with h_{d/2} = 0 (Eq. 35): the last difference is |h_{d/2-1}|.
    differences = torch.cat((h[1:] - h[:-1], -h[-1:])).abs()
    return float(value), float(differences.max() * partial.abs().sum())
