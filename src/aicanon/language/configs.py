"""The released sizes of Llama 2 (Touvron et al. 2023, Table 1) and Llama 3 (Dubey et al. 2024, Table 3).

Each is a :class:`~aicanon.language.llama.LlamaConfig` equal to the released checkpoint's
``params.json`` / ``config.json``; ``Llama(cfg)`` built on the meta device (``with
torch.device("meta")``: shapes without memory) has exactly the released parameter count
(:data:`PARAMETER_COUNTS`, e.g. 6,738,415,616 for Llama 2 7B; tests/language/test_llama_configs.py).

=============  =====  ======  ======  ======  ===  =======  =========  =======
model          vocab  hidden  FFN     layers  Hq   Hkv      RoPE base  context
=============  =====  ======  ======  ======  ===  =======  =========  =======
Llama 2 7B     32000  4096    11008   32      32   32       1e4        4096
Llama 2 13B    32000  5120    13824   40      40   40       1e4        4096
Llama 2 70B    32000  8192    28672   80      64   8 (GQA)  1e4        4096
Llama 3 8B     128256 4096    14336   32      32   8        5e5        8192
Llama 3 70B    128256 8192    28672   80      64   8        5e5        8192
Llama 3.1 405B 128256 16384   53248   126     128  8        5e5 +3.1   131072
=============  =====  ======  ======  ======  ===  =======  =========  =======

Llama 3's vocabulary is 128,000 BPE tokens plus 256 special tokens (128,256 rows). The 405B model was
released only as Llama 3.1 (context 128K through Llama 3.1's RoPE frequency scaling:
:data:`LLAMA31_ROPE_SCALING`); :data:`LLAMA31_8B` and :data:`LLAMA31_70B` are the 3.1 versions of the
smaller models, identical in parameters to Llama 3's. Llama 2's 34B model was never released and is
left out. Norm epsilon is 1e-5 in all six (Meta's params.json).
"""

from __future__ import annotations

from dataclasses import replace

from aicanon.language.llama import LlamaConfig

__all__ = [
    "CONFIGS",
    "LLAMA2_7B",
    "LLAMA2_13B",
    "LLAMA2_70B",
    "LLAMA3_8B",
    "LLAMA3_70B",
    "LLAMA31_8B",
    "LLAMA31_70B",
    "LLAMA31_405B",
    "LLAMA31_ROPE_SCALING",
    "PARAMETER_COUNTS",
    "get_config",
]

LLAMA31_ROPE_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

_LLAMA2 = dict(vocab_size=32000, max_seq_len=4096, rope_theta=10000.0, norm_eps=1e-5)
_LLAMA3 = dict(vocab_size=128256, max_seq_len=8192, rope_theta=500000.0, norm_eps=1e-5)

LLAMA2_7B = LlamaConfig(
    hidden_size=4096, intermediate_size=11008, num_layers=32, num_heads=32, num_kv_heads=32, **_LLAMA2
)
LLAMA2_13B = LlamaConfig(
    hidden_size=5120, intermediate_size=13824, num_layers=40, num_heads=40, num_kv_heads=40, **_LLAMA2
)
LLAMA2_70B = LlamaConfig(
    hidden_size=8192, intermediate_size=28672, num_layers=80, num_heads=64, num_kv_heads=8, **_LLAMA2
)
LLAMA3_8B = LlamaConfig(
    hidden_size=4096, intermediate_size=14336, num_layers=32, num_heads=32, num_kv_heads=8, **_LLAMA3
)
LLAMA3_70B = LlamaConfig(
    hidden_size=8192, intermediate_size=28672, num_layers=80, num_heads=64, num_kv_heads=8, **_LLAMA3
)
LLAMA31_8B = replace(LLAMA3_8B, max_seq_len=131072, rope_scaling=dict(LLAMA31_ROPE_SCALING))
LLAMA31_70B = replace(LLAMA3_70B, max_seq_len=131072, rope_scaling=dict(LLAMA31_ROPE_SCALING))
LLAMA31_405B = LlamaConfig(
    hidden_size=16384,
    intermediate_size=53248,
    num_layers=126,
    num_heads=128,
    num_kv_heads=8,
    rope_scaling=dict(LLAMA31_ROPE_SCALING),
    **{**_LLAMA3, "max_seq_len": 131072},
)

CONFIGS: dict[str, LlamaConfig] = {
    "llama2-7b": LLAMA2_7B,
    "llama2-13b": LLAMA2_13B,
    "llama2-70b": LLAMA2_70B,
    "llama3-8b": LLAMA3_8B,
    "llama3-70b": LLAMA3_70B,
    "llama3.1-8b": LLAMA31_8B,
    "llama3.1-70b": LLAMA31_70B,
    "llama3.1-405b": LLAMA31_405B,
}

# Parameter counts of the released checkpoints (sum of tensor sizes in their safetensors).
PARAMETER_COUNTS: dict[str, int] = {
    "llama2-7b": 6_738_415_616,
    "llama2-13b": 13_015_864_320,
    "llama2-70b": 68_976_648_192,
    "llama3-8b": 8_030_261_248,
    "llama3-70b": 70_553_706_496,
    "llama3.1-8b": 8_030_261_248,
    "llama3.1-70b": 70_553_706_496,
    "llama3.1-405b": 405_853_388_800,
}


def get_config(name: str, **overrides) -> LlamaConfig:
    """A fresh copy of the released config ``name`` (a key of :data:`CONFIGS`) with ``overrides``."""
    if name not in CONFIGS:
        raise ValueError(f"name must be one of {sorted(CONFIGS)}, got {name!r}")
    base = CONFIGS[name]
    scaling = dict(base.rope_scaling) if base.rope_scaling is not None else None
    try:
        return replace(base, rope_scaling=scaling, **overrides)
    except TypeError as error:
        raise ValueError(f"overrides must be LlamaConfig fields, got {sorted(overrides)}: {error}") from None
