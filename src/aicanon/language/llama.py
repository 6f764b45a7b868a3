"""The Llama 2 / Llama 3 decoder-only transformer (Touvron et al. 2023, Section 2.1; Dubey et al.
2024, Section 3.2 and Table 3).

A stack of pre-norm blocks ``h = x + Attn(RMSNorm(x)); y = h + SwiGLU(RMSNorm(h))`` over token
embeddings, a final RMSNorm and a linear head, with rotary position embeddings on queries and keys and
grouped-query attention (``num_kv_heads < num_heads``: Llama 2 34B/70B, every Llama 3). Llama 2 and 3
differ only in configuration (vocabulary 32k vs 128k, RoPE base 1e4 vs 5e5, GQA everywhere, Llama
3.1's RoPE frequency scaling); :mod:`aicanon.language.configs` holds the released sizes.

Module names equal transformers' ``LlamaForCausalLM`` without its ``model.`` prefix, so its state dicts
load after one rename (:mod:`aicanon.language.llama_weights`). Weights are initialised N(0, 0.02) as
transformers does (the papers do not state an initialisation).

Interface shared by every causal LM here: ``model(input_ids, attention_mask=None,
past_key_values=None, use_cache=False)`` returns logits ``[B, T, V]``, or ``(logits, cache)`` when
``use_cache`` is set or a cache is passed; ``model.generate(...)`` decodes (batched, left-padded).

Positions come from the attention mask when one is given (``cumsum(mask) - 1``), so a left-padded row
starts at position 0 like the unpadded sequence; without a mask they are ``0 .. T-1`` after the cache.

Packed sequences (supervised fine-tuning with packing): ``segment_ids [B, T]`` (integers, one per
document in the row) keep attention inside each document and restart positions at 0 at each
document's first token, so every document's logits equal those of running it alone. Not with a cache.

Options beyond the papers, for ablations: ``position="learned"`` (BERT/GPT-2's absolute embeddings,
RoFormer's baseline) or ``"none"``; any ``layers[i].mlp`` may be replaced by a module mapping
``[B, T, H] -> [B, T, H]`` (Switch Transformer's experts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_token_ids
from aicanon.nn.attention import attention
from aicanon.nn.kv_cache import KVCache
from aicanon.nn.mlp import SwiGLU
from aicanon.nn.norm import RMSNorm
from aicanon.nn.rotary import RotaryEmbedding, apply_rotary

__all__ = ["Llama", "LlamaConfig"]

_POSITIONS = ("rope", "learned", "none")


@dataclass
class LlamaConfig:
    """Sizes and options of a Llama model (defaults: Llama 2 7B)."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int | None = None
    """Key/value heads (grouped-query attention); None = num_heads (multi-head attention)."""
    max_seq_len: int = 4096
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = field(default=None)
    """Llama 3.1's frequency scaling (see :mod:`aicanon.nn.rotary`), or None."""
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    position: str = "rope"
    """"rope" (the papers), "learned" absolute embeddings or "none" (ablations)."""
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "max_seq_len",
        ):
            check_int(name, getattr(self, name))
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        if self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads must be a multiple of num_kv_heads, got num_heads={self.num_heads}, "
                f"num_kv_heads={self.num_kv_heads}"
            )
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size must split into num_heads heads of even size, got hidden_size={self.hidden_size}, "
                f"num_heads={self.num_heads}"
            )
        if self.position not in _POSITIONS:
            raise ValueError(f"position must be one of {_POSITIONS}, got {self.position!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LlamaAttention(nn.Module):
    """Multi-head (or grouped-query) causal self-attention with RoPE on queries and keys."""

    def __init__(self, cfg: LlamaConfig, layer_index: int) -> None:
        super().__init__()
        self.layer_index = layer_index
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=False)

    def forward(
        self,
        x: Tensor,
        rotary: tuple[Tensor, Tensor] | None,
        key_padding_mask: Tensor | None,
        cache: KVCache | None,
        segment_ids: Tensor | None = None,
    ) -> Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if rotary is not None:
            cos, sin = rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_index, k, v)
        out = attention(q, k, v, causal=True, key_padding_mask=key_padding_mask, segment_ids=segment_ids)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class LlamaBlock(nn.Module):
    """Pre-norm block: ``h = x + Attn(RMSNorm(x)); y = h + MLP(RMSNorm(h))``."""

    def __init__(self, cfg: LlamaConfig, layer_index: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attn = LlamaAttention(cfg, layer_index)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp: nn.Module = SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, rotary, key_padding_mask, cache, segment_ids=None) -> Tensor:
        h = x + self.self_attn(self.input_layernorm(x), rotary, key_padding_mask, cache, segment_ids)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    """A Llama causal language model (see the module docstring for the interface)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(cfg, LlamaConfig):
            raise TypeError(f"cfg must be a LlamaConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        if cfg.position == "learned":
            self.embed_positions = nn.Embedding(cfg.max_seq_len, cfg.hidden_size)
        self.rotary = (
            RotaryEmbedding(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling)
            if cfg.position == "rope"
            else None
        )
        self.layers = nn.ModuleList(LlamaBlock(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)) and module.weight.device.type != "meta":
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameters counted once (tied weights once); optionally without the token/position embeddings."""
        seen: set[int] = set()
        total = 0
        for name, p in self.named_parameters():
            if id(p) in seen or (exclude_embeddings and name.startswith(("embed_tokens", "embed_positions"))):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    def new_cache(self) -> KVCache:
        return KVCache(self.config.num_layers)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        position_ids: Tensor | None = None,
        segment_ids: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, KVCache]:
        cfg = self.config
        check_token_ids("input_ids", input_ids)
        b, t = input_ids.shape
        # The range check reads two numbers back from the device: on GPU in training that sync
        # stalls every step, so there it is left to the embedding's own (device-side) bounds check.
        check = input_ids.device.type == "cpu" or not self.training
        if check and not torch.compiler.is_compiling() and input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= cfg.vocab_size:
                raise ValueError(f"input_ids must be in [0, {cfg.vocab_size}), got values in [{low}, {high}]")
        cache = past_key_values if past_key_values is not None else (self.new_cache() if use_cache else None)
        past = cache.length if cache is not None else 0
        if past + t > cfg.max_seq_len:
            raise ValueError(f"sequence length must be <= max_seq_len={cfg.max_seq_len}, got {past + t}")

        mask = self._full_mask(attention_mask, cache, b, past, t, input_ids.device)
        if cache is not None:
            cache.mask = mask
        if segment_ids is not None:
            segment_ids = self._check_segments(segment_ids, cache, b, t)
        derived = position_ids is None  # then every position is < max_seq_len (checked above)
        if position_ids is None:
            if segment_ids is not None:
                # Packing: positions restart at 0 where a new segment starts, as if each ran alone.
                index = torch.arange(t, device=input_ids.device).expand(b, t)
                starts = torch.ones_like(segment_ids, dtype=torch.bool)
                starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
                position_ids = index - torch.where(starts, index, 0).cummax(dim=1).values
            elif mask is not None:
                position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
            else:
                position_ids = torch.arange(past, past + t, device=input_ids.device).unsqueeze(0)
        elif tuple(position_ids.shape) not in ((b, t), (1, t)):
            raise ValueError(f"position_ids must have shape {(b, t)}, got {tuple(position_ids.shape)}")
        elif cfg.position == "learned":
            self._check_learned_positions(position_ids, cfg.max_seq_len)

        x = self.embed_tokens(input_ids)
        if cfg.position == "learned":
            x = x + self.embed_positions(position_ids)
        rotary = None
        if self.rotary is not None:
            # Positions read back only on the CPU (the check is free there) or when the caller gave
            # them; otherwise the table is sized by the context so that no GPU step waits on the
            # device (and compile does not break).
            on_cpu = input_ids.device.type == "cpu" and not torch.compiler.is_compiling()
            bound = cfg.max_seq_len if derived and not on_cpu else None
            rotary = self.rotary.cos_sin(position_ids, max_length=bound)
        for layer in self.layers:
            x = layer(x, rotary, mask, cache, segment_ids)
        logits = self.lm_head(self.norm(x))
        return (logits, cache) if cache is not None else logits

    @staticmethod
    def _check_learned_positions(position_ids: Tensor, max_seq_len: int) -> None:
        """Caller-given positions index the learned table: out of range they would fail inside the
        embedding with a bare IndexError (or a device assert on GPU), so name them here."""
        if position_ids.dtype not in (torch.long, torch.int):
            raise ValueError(f"position_ids must be an integer tensor, got {position_ids.dtype}")
        if torch.compiler.is_compiling() or not position_ids.numel():
            return
        bad = (position_ids < 0) | (position_ids >= max_seq_len)
        if bool(bad.any()):
            values = sorted(set(position_ids[bad].tolist()))
            raise ValueError(
                f"position_ids must be in [0, {max_seq_len}) (the learned position table's length, "
                f"max_seq_len), got out-of-range values {values[:10]}{' ...' if len(values) > 10 else ''}"
            )

    @staticmethod
    def _check_segments(segment_ids, cache, b, t) -> Tensor:
        if cache is not None:
            raise ValueError("segment_ids (packed sequences) cannot be used with a KV cache; got both")
        return check_token_ids("segment_ids", segment_ids, (b, t))

    @staticmethod
    def _full_mask(attention_mask, cache, b, past, t, device) -> Tensor | None:
        """The ``[B, past + T]`` padding mask, from the caller's mask and the one kept in the cache."""
        previous = cache.mask if cache is not None else None
        if attention_mask is None:
            if previous is None:
                return None
            return torch.cat((previous, previous.new_ones(b, t)), dim=1)
        if attention_mask.dim() != 2 or attention_mask.shape[0] != b:
            raise ValueError(
                f"attention_mask must be [batch={b}, length], got shape {tuple(attention_mask.shape)}"
            )
        if attention_mask.dtype.is_floating_point:
            # transformers-style float masks of 1.0/0.0 are common; any other value (0.5, or an
            # additive -inf mask) has no meaning as a keep/drop flag and would silently become True.
            if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
                odd = sorted(set(attention_mask[(attention_mask != 0) & (attention_mask != 1)].tolist()))
                raise ValueError(
                    "attention_mask must hold only 0 and 1 (bool, integer, or floating 0.0/1.0: 1 = "
                    f"attend, 0 = padding), got {attention_mask.dtype} values {odd[:5]}"
                    f"{' ...' if len(odd) > 5 else ''}"
                )
        elif attention_mask.dtype.is_complex:
            raise ValueError(
                f"attention_mask must be a bool, integer or 0/1 floating tensor, got {attention_mask.dtype}"
            )
        attention_mask = attention_mask.to(device=device, dtype=torch.bool)
        if attention_mask.shape[1] == past + t:
            return attention_mask
        if attention_mask.shape[1] == t and past:
            head = previous if previous is not None else attention_mask.new_ones(b, past)
            return torch.cat((head, attention_mask), dim=1)
        raise ValueError(
            f"attention_mask must cover the cached and new tokens ({past + t}) or the new ones ({t}), "
            f"got length {attention_mask.shape[1]}"
        )

    @classmethod
    def from_pretrained(cls, path, dtype: torch.dtype | None = None) -> Llama:
        """A model from a transformers ``LlamaForCausalLM`` folder (``config.json`` and safetensors,
        single or sharded); see :func:`aicanon.language.llama_weights.load_pretrained`."""
        # Imported here: llama_weights imports this module, so a top-level import would be a cycle.
        from aicanon.language.llama_weights import load_pretrained

        return load_pretrained(path, dtype=dtype, model_class=cls)

    def save_pretrained(self, path, max_shard_size: int | str | None = None) -> None:
        """Write a folder transformers' ``LlamaForCausalLM.from_pretrained`` loads; see
        :func:`aicanon.language.llama_weights.save_pretrained`."""
        from aicanon.language.llama_weights import save_pretrained

        save_pretrained(self, path, max_shard_size=max_shard_size)

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None, **kwargs) -> Tensor:
        """Decode with a KV cache; see :func:`aicanon.language.generation.generate` for the arguments."""
        from aicanon.language.generation import generate

        return generate(self, input_ids, attention_mask, **kwargs)
