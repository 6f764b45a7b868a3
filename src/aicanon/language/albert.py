"""ALBERT (Lan et al., ICLR 2020): a BERT with a factorised embedding, cross-layer parameter sharing,
and sentence-order prediction (SOP) in place of next-sentence prediction (NSP).

The encoder is BERT's post-LN transformer (Devlin et al. 2019) with GELU feed-forward blocks. Per
layer ``l`` (Section 3.1; the layer equations are BERT's, which the paper keeps):

    A_l = LayerNorm(h_{l-1} + Attention(h_{l-1}) W_O + b_O)                  (post-LN attention)
    h_l = LayerNorm(A_l + GELU(A_l W_1 + b_1) W_2 + b_2)                     (post-LN feed-forward)

ALBERT's three changes (Section 3.1):

* **Factorised embedding parameterisation.** Token ids are embedded in a space of size ``E`` and
  projected to the hidden size ``H``: ``h_0 = LayerNorm(E_word[x] + E_pos + E_type) W_map + b_map``,
  which cuts the embedding parameters from ``O(V x H)`` to ``O(V x E + E x H)`` (Section 3.1,
  "Factorized embedding parameterization"); with ``E = H`` and no projection the model is BERT.
* **Cross-layer parameter sharing.** ``sharing="all"`` (ALBERT's default) uses one attention block and
  one feed-forward block for every layer; ``"attention"`` shares only the attention blocks; ``"ffn"``
  only the feed-forward blocks; ``"none"`` none (BERT). The four are Table 4's rows.
* **Inter-sentence coherence loss.** The pre-training loss is masked-LM cross-entropy plus a binary
  cross-entropy on the pooled ``[CLS]`` vector: SOP's positives are two consecutive segments in order,
  its negatives the same two segments swapped (Section 3.1, "Inter-sentence coherence loss"); BERT's
  NSP negatives take the second segment from another document.

The masked-LM targets use **n-gram masking** (Section 4.1, after Joshi et al. 2019): each masked span
has length ``n`` with probability

    p(n) = (1/n) / sum_{k=1}^{N} (1/k),     N = 3                                        (Section 4.1)

(6/11, 3/11, 2/11), spans are drawn until 15 % of the maskable tokens are covered, and each chosen
token becomes ``[MASK]`` (80 %), a random token (10 %) or stays (10 %), as in BERT.

The MLM head is ``LayerNorm(GELU(h W_d + b_d)) E_word^T + b_vocab`` (decoder tied to the E-dimensional
word embedding); the SOP head a linear layer on the pooler's ``tanh(h_[CLS] W_p + b_p)``.

Weights: module for module this is ``transformers``' ``AlbertModel`` / ``AlbertForPreTraining``;
:func:`from_transformers` and :func:`to_transformers` convert between the
two layouts (the released ``albert-*-v2`` checkpoints are distributed in that layout; no checkpoint
file is staged here, so loading is tested on randomly initialised transformers models of the same
layout), and :func:`config_from_transformers` / :func:`config_to_transformers` the configurations;
``load_state_dict_strict(model, from_transformers(state_dict, cfg))``
(:func:`aicanon.core.state_dict.load_state_dict_strict`) loads the converted weights.
Weights start as in BERT: N(0, 0.02^2) for linear and embedding weights, zero biases, unit LayerNorms
(``initializer_range``; small models may want a larger value, see ``aicanon.experiments.albert``).

Departures from the paper, and why:

* The word embedding has ``padding_idx = pad_token_id`` (the pad row gets no gradient): the
  ``transformers`` port does this and the released checkpoints were converted with it; the paper's
  TensorFlow code has no padding index. ``pad_token_id=None`` gives the paper's behaviour.
* The transformers layout also allows ``num_hidden_groups`` between 1 and L and several layers per
  group (``inner_group_num``); the paper has only the four sharing modes above, which is what this
  module builds. Converting a layout the four modes cannot express (or ``"attention"``/``"ffn"``
  sharing, which transformers cannot express) raises ``ValueError``.
* n-gram spans are drawn over *tokens* (a tokenizer-agnostic library function); the paper's code
  draws them over whole words of its SentencePiece vocabulary. With a word-level vocabulary the two
  coincide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int
from aicanon.nn.attention import attention

__all__ = [
    "ACTIVATIONS",
    "SHARING_MODES",
    "AlbertConfig",
    "AlbertEncoder",
    "AlbertForPreTraining",
    "config_from_transformers",
    "config_to_transformers",
    "count_parameters",
    "from_transformers",
    "init_weights",
    "load_pretrained",
    "ngram_mask",
    "ngram_probabilities",
    "pretraining_loss",
    "save_pretrained",
    "to_transformers",
]

SHARING_MODES = ("all", "attention", "ffn", "none")
ACTIVATIONS = ("gelu_new", "gelu", "relu")
IGNORE_INDEX = -100
"""Label of positions that carry no masked-LM target (PyTorch's cross-entropy default)."""


# --------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AlbertConfig:
    """Hyperparameters of an ALBERT (or, with ``factorize=False, sharing="none"``, a BERT) encoder."""

    vocab_size: int = 30000
    """V: the paper's SentencePiece vocabulary has 30,000 entries (Section 4.1)."""
    embedding_size: int = 128
    """E: width of the token, position and segment embeddings (128 in every ALBERT of Table 1)."""
    hidden_size: int = 768
    """H: width of the transformer layers."""
    num_layers: int = 12
    """L: transformer layers (applied L times even when their weights are shared)."""
    num_heads: int = 12
    """Attention heads (H / 64 in the paper's models)."""
    intermediate_size: int = 3072
    """Feed-forward width (4H in the paper)."""
    max_position_embeddings: int = 512
    """Longest input sequence (512 in the paper)."""
    type_vocab_size: int = 2
    """Segment (token-type) ids: segment A and segment B."""
    sharing: str = "all"
    """Cross-layer sharing: ``all``, ``attention`` (attention only), ``ffn`` (feed-forward only), ``none``."""
    factorize: bool = True
    """Project the E-dimensional embedding to H (ALBERT); False requires E == H and has no projection (BERT)."""
    hidden_act: str = "gelu_new"
    """``gelu_new`` (tanh approximation, the released checkpoints'), ``gelu`` (exact) or ``relu``."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon (BERT's and ALBERT's TensorFlow value)."""
    hidden_dropout: float = 0.0
    """Dropout on embeddings and block outputs; ALBERT v2 removed dropout (Section 4.9)."""
    attention_dropout: float = 0.0
    """Dropout on attention probabilities."""
    classifier_dropout: float = 0.1
    """Dropout before the SOP classifier (transformers' ``classifier_dropout_prob``)."""
    pad_token_id: int | None = 0
    """Padding id: its embedding row gets no gradient (see the module docstring); None: no padding row."""
    initializer_range: float = 0.02
    """Weights and embeddings start as N(0, initializer_range^2), biases at 0, LayerNorms at (1, 0) (BERT's init)."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):  # fmt: skip
            check_int(name, getattr(self, name))
        if self.sharing not in SHARING_MODES:
            raise ValueError(f"sharing must be one of {SHARING_MODES}, got {self.sharing!r}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")
        if not isinstance(self.factorize, bool):
            raise TypeError(f"factorize must be a bool, got {type(self.factorize).__name__}")
        if self.factorize and self.embedding_size > self.hidden_size:
            # Section 3.1: the factorisation pays only when E << H; E > H adds parameters instead.
            raise ValueError(
                f"embedding_size E must be <= hidden_size H when factorize=True (E << H, Section 3.1), "
                f"got E={self.embedding_size} > H={self.hidden_size}"
            )
        if not self.factorize and self.embedding_size != self.hidden_size:
            raise ValueError(
                f"factorize=False (BERT) needs embedding_size == hidden_size, "
                f"got E={self.embedding_size} and H={self.hidden_size}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size must be a multiple of num_heads, got {self.hidden_size} and {self.num_heads}"
            )
        for name in ("hidden_dropout", "attention_dropout", "classifier_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id must be None or in [0, {self.vocab_size}), got {self.pad_token_id}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AlbertConfig:
        """The paper's Table 1 models: ``albert-base|large|xlarge|xxlarge``, ``bert-base|large|xlarge``.

        All use V = 30,000, 512 positions, H/64 heads and a 4H feed-forward; the ALBERTs share all
        parameters across layers with E = 128, the BERTs share none with E = H.
        """
        sizes = {  # Table 1: (layers L, hidden H)
            "albert-base": (12, 768),
            "albert-large": (24, 1024),
            "albert-xlarge": (24, 2048),
            "albert-xxlarge": (12, 4096),
            "bert-base": (12, 768),
            "bert-large": (24, 1024),
            "bert-xlarge": (24, 2048),
        }
        if name not in sizes:
            raise ValueError(f"preset name must be one of {sorted(sizes)}, got {name!r}")
        layers, hidden = sizes[name]
        albert = name.startswith("albert")
        fields = {
            "num_layers": layers,
            "hidden_size": hidden,
            "num_heads": hidden // 64,
            "intermediate_size": 4 * hidden,
            "embedding_size": 128 if albert else hidden,
            "sharing": "all" if albert else "none",
            "factorize": albert,
        }
        fields.update(overrides)
        return cls(**fields)


def _activation(name: str):
    if name == "gelu_new":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu
    return F.relu


# --------------------------------------------------------------------------------------- blocks
class AlbertEmbeddings(nn.Module):
    """``LayerNorm(E_word[x] + E_pos[t] + E_type[s])`` in the E-dimensional space (Section 3.1)."""

    def __init__(self, cfg: AlbertConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.embedding_size, padding_idx=cfg.pad_token_id)
        self.position = nn.Embedding(cfg.max_position_embeddings, cfg.embedding_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        self.norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class AlbertAttention(nn.Module):
    """Post-LN bidirectional multi-head self-attention: ``LayerNorm(h + MHA(h) W_O + b_O)``."""

    def __init__(self, cfg: AlbertConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.query, self.key, self.value, self.output = (nn.Linear(h, h) for _ in range(4))
        self.norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.attention_dropout = cfg.attention_dropout
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        b, t, _ = x.shape

        def heads(linear: nn.Linear) -> Tensor:
            return linear(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

        out = attention(
            heads(self.query),
            heads(self.key),
            heads(self.value),
            causal=False,  # BERT/ALBERT encoders are bidirectional
            key_padding_mask=key_padding_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        out = self.output(out.transpose(1, 2).reshape(b, t, -1))
        return self.norm(x + self.dropout(out))


class AlbertFeedForward(nn.Module):
    """Post-LN feed-forward block: ``LayerNorm(a + act(a W_1 + b_1) W_2 + b_2)``."""

    def __init__(self, cfg: AlbertConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.act = _activation(cfg.hidden_act)
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.dropout(self.down(self.act(self.up(x)))))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation (kept by ALBERT): N(0, std^2) weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _check_ids(name: str, ids: Tensor, upper: int, what: str) -> None:
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an integer (int64/int32) tensor, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= upper):
        raise ValueError(
            f"{name} must lie in [0, {upper}) ({what}), got values in [{int(ids.min())}, {int(ids.max())}]"
        )


class AlbertEncoder(nn.Module):
    """The ALBERT encoder (transformers' ``AlbertModel``): embeddings, projection, L layers, pooler.

    ``attentions`` and ``feed_forwards`` hold one block each when shared, L otherwise; layer ``l``
    applies ``attentions[l or 0]`` then ``feed_forwards[l or 0]`` (Section 3.1, cross-layer sharing).
    """

    def __init__(self, cfg: AlbertConfig, add_pooler: bool = True) -> None:
        super().__init__()
        if not isinstance(cfg, AlbertConfig):
            raise TypeError(f"cfg must be an AlbertConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.embeddings = AlbertEmbeddings(cfg)
        # Section 3.1: the E -> H projection of the factorised embedding (absent in BERT).
        self.embedding_projection = nn.Linear(cfg.embedding_size, cfg.hidden_size) if cfg.factorize else None
        n_attention = 1 if cfg.sharing in ("all", "attention") else cfg.num_layers
        n_ffn = 1 if cfg.sharing in ("all", "ffn") else cfg.num_layers
        self.attentions = nn.ModuleList(AlbertAttention(cfg) for _ in range(n_attention))
        self.feed_forwards = nn.ModuleList(AlbertFeedForward(cfg) for _ in range(n_ffn))
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size) if add_pooler else None
        init_weights(self, cfg.initializer_range)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``input_ids [B, T]`` -> ``(hidden [B, T, H], pooled [B, H] or None)``.

        ``token_type_ids [B, T]`` are segment ids (default 0); ``attention_mask [B, T]`` is 1/True at
        real tokens, 0/False at padding (padding keys are masked out of every attention).
        """
        cfg = self.cfg
        _check_ids("input_ids", input_ids, cfg.vocab_size, "token ids below vocab_size")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be 2-D [batch, length], got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > cfg.max_position_embeddings:
            raise ValueError(
                f"input_ids length must be <= max_position_embeddings={cfg.max_position_embeddings}, "
                f"got {input_ids.shape[1]}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        else:
            _check_ids(
                "token_type_ids", token_type_ids, cfg.type_vocab_size, "segment ids below type_vocab_size"
            )
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                    f"got {tuple(token_type_ids.shape)}"
                )
        key_padding_mask = None
        if attention_mask is not None:
            if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
                got = (
                    tuple(attention_mask.shape)
                    if isinstance(attention_mask, Tensor)
                    else type(attention_mask)
                )
                raise ValueError(
                    f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {got}"
                )
            key_padding_mask = attention_mask.to(torch.bool)
        h = self.transform(self.embeddings(input_ids, token_type_ids), key_padding_mask)
        pooled = torch.tanh(self.pooler(h[:, 0])) if self.pooler is not None else None
        return h, pooled

    def transform(self, embedded: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """The E -> H projection and the L layers on already embedded tokens ``[B, T, E]`` (the
        output of :class:`AlbertEmbeddings`; soft prompts enter here), ``key_padding_mask [B, T]``
        True at real tokens -> hidden states ``[B, T, H]``."""
        h = embedded
        if self.embedding_projection is not None:
            h = self.embedding_projection(h)
        for layer in range(self.cfg.num_layers):
            h = self.attentions[layer if len(self.attentions) > 1 else 0](h, key_padding_mask)
            h = self.feed_forwards[layer if len(self.feed_forwards) > 1 else 0](h)
        return h

    @classmethod
    def from_pretrained(cls, path):
        """The model of a transformers ALBERT folder (``config.json`` and safetensors, single or
        sharded); see :func:`load_pretrained`."""
        return load_pretrained(path, model_class=cls)

    def save_pretrained(self, path, max_shard_size: int | str | None = None) -> None:
        """Write a folder transformers loads; see :func:`save_pretrained`."""
        save_pretrained(self, path, max_shard_size=max_shard_size)


class AlbertForPreTraining(nn.Module):
    """Encoder + MLM head (tied to the word embedding) + SOP head (transformers' ``AlbertForPreTraining``).

    ``forward`` returns ``(mlm_logits [B, T, V], sop_logits [B, 2])``; SOP label 0 = segments in
    order, 1 = swapped (the released checkpoints' convention). The same head trains NSP (0 = B
    follows A, 1 = B is random) when the data says so.
    """

    def __init__(self, cfg: AlbertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.albert = AlbertEncoder(cfg, add_pooler=True)
        self.mlm_dense = nn.Linear(cfg.hidden_size, cfg.embedding_size)
        self.mlm_norm = nn.LayerNorm(cfg.embedding_size, eps=cfg.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.act = _activation(cfg.hidden_act)
        self.sop_dropout = nn.Dropout(cfg.classifier_dropout)
        self.sop_classifier = nn.Linear(cfg.hidden_size, 2)
        init_weights(self, cfg.initializer_range)

    def mlm_logits(self, hidden: Tensor) -> Tensor:
        """MLM head on hidden states ``[..., H]`` -> ``[..., V]`` (call it on masked positions only to save time)."""
        z = self.mlm_norm(self.act(self.mlm_dense(hidden)))
        # Decoder tied to the E-dimensional input embedding (BERT and ALBERT tie them).
        return F.linear(z, self.albert.embeddings.word.weight, self.mlm_bias)

    def sop_logits(self, pooled: Tensor) -> Tensor:
        """Sentence-order (or next-sentence) head on the pooled ``[CLS]`` vector ``[B, H]`` -> ``[B, 2]``."""
        return self.sop_classifier(self.sop_dropout(pooled))

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        h, pooled = self.albert(input_ids, token_type_ids, attention_mask)
        return self.mlm_logits(h), self.sop_logits(pooled)

    @classmethod
    def from_pretrained(cls, path):
        """The model of a transformers ALBERT folder (``config.json`` and safetensors, single or
        sharded); see :func:`load_pretrained`."""
        return load_pretrained(path, model_class=cls)

    def save_pretrained(self, path, max_shard_size: int | str | None = None) -> None:
        """Write a folder transformers loads; see :func:`save_pretrained`."""
        save_pretrained(self, path, max_shard_size=max_shard_size)


def pretraining_loss(
    mlm_logits: Tensor, mlm_labels: Tensor, sop_logits: Tensor, sop_labels: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, mlm, sop)``: the paper's pre-training loss is the sum of the MLM and SOP cross-entropies.

    ``mlm_labels [B, T]`` hold the original id at masked positions and -100 elsewhere; ``sop_labels
    [B]`` are 0/1.
    """
    if mlm_logits.dim() != 3 or mlm_labels.shape != mlm_logits.shape[:2]:
        raise ValueError(
            f"mlm_labels must be [batch, length] matching mlm_logits {tuple(mlm_logits.shape)}, "
            f"got {tuple(mlm_labels.shape)}"
        )
    if sop_logits.dim() != 2 or sop_labels.shape != sop_logits.shape[:1]:
        raise ValueError(
            f"sop_labels must be [batch] matching sop_logits {tuple(sop_logits.shape)}, got {tuple(sop_labels.shape)}"
        )
    if sop_labels.numel() and (int(sop_labels.min()) < 0 or int(sop_labels.max()) > 1):
        raise ValueError(
            f"sop_labels must be 0 or 1, got values in [{int(sop_labels.min())}, {int(sop_labels.max())}]"
        )
    mlm = F.cross_entropy(mlm_logits.flatten(0, 1), mlm_labels.flatten(), ignore_index=IGNORE_INDEX)
    if not (mlm_labels != IGNORE_INDEX).any():
        mlm = mlm_logits.sum() * 0.0  # no target in the batch: zero, not NaN
    sop = F.cross_entropy(sop_logits, sop_labels)
    return mlm + sop, mlm, sop


def count_parameters(module: nn.Module) -> int:
    """Distinct parameters (a shared block counts once; a tied weight once): works on the meta device."""
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------- n-gram masking
def ngram_probabilities(max_ngram: int = 3) -> Tensor:
    """``p(n) = (1/n) / sum_k (1/k)`` for ``n = 1..max_ngram`` (Section 4.1): [6/11, 3/11, 2/11] for 3."""
    check_int("max_ngram", max_ngram)
    inverse = 1.0 / torch.arange(1, max_ngram + 1, dtype=torch.float64)
    return inverse / inverse.sum()


def ngram_mask(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    special_mask: Tensor | None = None,
    mask_prob: float = 0.15,
    max_ngram: int = 3,
    max_predictions: int | None = None,
    replace_probs: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> tuple[Tensor, Tensor]:
    """n-gram masking (Section 4.1): returns ``(masked_ids, labels)``, labels -100 where nothing is predicted.

    Per sequence, ``round(mask_prob * #maskable)`` tokens (at least 1, at most ``max_predictions``)
    are covered by spans: span starts are visited in random order, each draws its length ``n`` from
    :func:`ngram_probabilities` (shortened while it would overshoot the budget, as the paper's code
    does), and a span is kept only if its ``n`` consecutive positions are all maskable and uncovered.
    Each covered token becomes ``mask_token_id``, a uniformly random id, or stays, with
    ``replace_probs``. ``special_mask [B, T]`` (True = never mask: [CLS], [SEP], padding).
    """
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.int64:
        got = (
            (tuple(input_ids.shape), input_ids.dtype)
            if isinstance(input_ids, Tensor)
            else type(input_ids).__name__
        )
        raise ValueError(f"input_ids must be a 2-D int64 tensor [batch, length], got {got}")
    if special_mask is not None and (
        not isinstance(special_mask, Tensor) or special_mask.shape != input_ids.shape
    ):
        got = tuple(special_mask.shape) if isinstance(special_mask, Tensor) else type(special_mask).__name__
        raise ValueError(f"special_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {got}")
    check_float("mask_prob", mask_prob, 0, 1, min_inclusive=False)
    check_int("vocab_size", vocab_size)
    check_int("mask_token_id", mask_token_id, 0, vocab_size - 1)
    if len(replace_probs) != 3 or min(replace_probs) < 0 or not math.isclose(sum(replace_probs), 1.0):
        raise ValueError(
            f"replace_probs must be three non-negative numbers summing to 1, got {replace_probs}"
        )
    check_int("max_predictions", max_predictions, allow_none=True)
    probs = ngram_probabilities(max_ngram)
    batch, length = input_ids.shape
    maskable = torch.ones_like(input_ids, dtype=torch.bool) if special_mask is None else ~special_mask.bool()
    covered = torch.zeros_like(maskable)
    for row in range(batch):
        ok = maskable[row].tolist()
        n_maskable = sum(ok)
        if n_maskable == 0:
            continue
        budget = max(1, round(n_maskable * mask_prob))
        if max_predictions is not None:
            budget = min(budget, max_predictions)
        starts = [i for i in range(length) if ok[i]]
        order = torch.randperm(len(starts), generator=generator).tolist()
        lengths = (
            torch.multinomial(probs, len(starts), replacement=True, generator=generator).add_(1).tolist()
        )
        taken = [False] * length
        count = 0
        for k, j in enumerate(order):
            if count >= budget:
                break
            start = starts[j]
            n = min(lengths[k], budget - count)  # shorten an n-gram that would overshoot the budget
            span = range(start, start + n)
            if span.stop > length or not all(ok[i] and not taken[i] for i in span):
                continue
            for i in span:
                taken[i] = True
            count += n
        covered[row] = torch.tensor(taken, dtype=torch.bool)
    labels = torch.where(covered, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    # BERT's 80/10/10 replacement, decided per covered token.
    u = torch.rand(input_ids.shape, generator=generator, dtype=torch.float64)
    to_mask = covered & (u < replace_probs[0])
    to_random = covered & (u >= replace_probs[0]) & (u < replace_probs[0] + replace_probs[1])
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


# ------------------------------------------------------------------- transformers format conversion
def config_to_transformers(cfg: AlbertConfig) -> dict[str, Any]:
    """Keyword arguments of ``transformers.AlbertConfig`` for ``cfg`` (``all``/``none`` sharing, factorised)."""
    if cfg.sharing not in ("all", "none"):
        raise ValueError(
            f"sharing must be 'all' or 'none' for the transformers layout (its layer groups cannot "
            f"share only attention or only feed-forward blocks), got {cfg.sharing!r}"
        )
    if not cfg.factorize:
        raise ValueError(
            "factorize must be True for the transformers layout (AlbertModel always has the E -> H projection)"
        )
    return {
        "vocab_size": cfg.vocab_size,
        "embedding_size": cfg.embedding_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_hidden_groups": 1 if cfg.sharing == "all" else cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.intermediate_size,
        "inner_group_num": 1,
        "hidden_act": cfg.hidden_act,
        "hidden_dropout_prob": cfg.hidden_dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "classifier_dropout_prob": cfg.classifier_dropout,
        "max_position_embeddings": cfg.max_position_embeddings,
        "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "pad_token_id": cfg.pad_token_id,
        "initializer_range": cfg.initializer_range,
    }


def config_from_transformers(config: Any) -> AlbertConfig:
    """An :class:`AlbertConfig` from a ``transformers.AlbertConfig`` (or its ``to_dict()``)."""
    d = config if isinstance(config, dict) else config.to_dict()
    layers, groups = d["num_hidden_layers"], d.get("num_hidden_groups", 1)
    if d.get("inner_group_num", 1) != 1 or groups not in (1, layers):
        raise ValueError(
            f"inner_group_num must be 1 and num_hidden_groups 1 (all shared) or num_hidden_layers={layers} "
            f"(none shared), got inner_group_num={d.get('inner_group_num', 1)}, num_hidden_groups={groups}"
        )
    return AlbertConfig(
        vocab_size=d["vocab_size"],
        embedding_size=d["embedding_size"],
        hidden_size=d["hidden_size"],
        num_layers=layers,
        num_heads=d["num_attention_heads"],
        intermediate_size=d["intermediate_size"],
        max_position_embeddings=d["max_position_embeddings"],
        type_vocab_size=d["type_vocab_size"],
        sharing="all" if groups == 1 else "none",
        factorize=True,
        hidden_act=d.get("hidden_act", "gelu_new"),
        layer_norm_eps=d.get("layer_norm_eps", 1e-12),
        hidden_dropout=d.get("hidden_dropout_prob", 0.0),
        attention_dropout=d.get("attention_probs_dropout_prob", 0.0),
        classifier_dropout=d.get("classifier_dropout_prob", 0.1) or 0.0,
        pad_token_id=d.get("pad_token_id", 0),
        initializer_range=d.get("initializer_range", 0.02),
    )


def _key_pairs(cfg: AlbertConfig) -> list[tuple[str, str]]:
    """(our key, transformers AlbertModel key) for every tensor of the encoder."""
    pairs = [
        ("embeddings.word.weight", "embeddings.word_embeddings.weight"),
        ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
        ("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
    ]
    pairs += [(f"embeddings.norm.{p}", f"embeddings.LayerNorm.{p}") for p in ("weight", "bias")]
    pairs += [
        (f"embedding_projection.{p}", f"encoder.embedding_hidden_mapping_in.{p}") for p in ("weight", "bias")
    ]
    groups = 1 if cfg.sharing == "all" else cfg.num_layers
    for g in range(groups):
        base = f"encoder.albert_layer_groups.{g}.albert_layers.0."
        for ours, theirs in (
            ("query", "query"),
            ("key", "key"),
            ("value", "value"),
            ("output", "dense"),
            ("norm", "LayerNorm"),
        ):
            pairs += [
                (f"attentions.{g}.{ours}.{p}", f"{base}attention.{theirs}.{p}") for p in ("weight", "bias")
            ]
        for ours, theirs in (("up", "ffn"), ("down", "ffn_output"), ("norm", "full_layer_layer_norm")):
            pairs += [(f"feed_forwards.{g}.{ours}.{p}", f"{base}{theirs}.{p}") for p in ("weight", "bias")]
    pairs += [(f"pooler.{p}", f"pooler.{p}") for p in ("weight", "bias")]
    return pairs


_HEAD_PAIRS = [
    ("mlm_dense.weight", "predictions.dense.weight"),
    ("mlm_dense.bias", "predictions.dense.bias"),
    ("mlm_norm.weight", "predictions.LayerNorm.weight"),
    ("mlm_norm.bias", "predictions.LayerNorm.bias"),
    ("mlm_bias", "predictions.bias"),
    ("sop_classifier.weight", "sop_classifier.classifier.weight"),
    ("sop_classifier.bias", "sop_classifier.classifier.bias"),
]


def _pairs(cfg: AlbertConfig, pretraining: bool) -> list[tuple[str, str]]:
    config_to_transformers(cfg)  # raises for layouts transformers cannot hold
    encoder = _key_pairs(cfg)
    if not pretraining:
        return encoder
    return [("albert." + a, "albert." + b) for a, b in encoder] + _HEAD_PAIRS


def from_transformers(
    state_dict: dict[str, Tensor], cfg: AlbertConfig, pretraining: bool | None = None
) -> dict[str, Tensor]:
    """Our state dict from a transformers ``AlbertModel`` (``pretraining=False``) or
    ``AlbertForPreTraining`` (``True``; the default guesses from the ``albert.`` prefix) state dict.

    The tied decoder (``predictions.decoder.*``) is dropped: ours reads the word embedding and
    ``mlm_bias``. Keys a model without pooler lacks are skipped; any other missing key raises.
    """
    if pretraining is None:
        pretraining = any(k.startswith("albert.") for k in state_dict)
    out: dict[str, Tensor] = {}
    for ours, theirs in _pairs(cfg, pretraining):
        if theirs not in state_dict:
            if "pooler" in theirs:
                continue
            raise ValueError(
                f"state_dict lacks {theirs!r} (expected a transformers ALBERT state dict for {cfg})"
            )
        out[ours] = state_dict[theirs]
    return out


def to_transformers(state_dict: dict[str, Tensor], cfg: AlbertConfig) -> dict[str, Tensor]:
    """The transformers state dict of our ``AlbertEncoder`` or ``AlbertForPreTraining`` state dict."""
    pretraining = any(k.startswith("albert.") for k in state_dict)
    out: dict[str, Tensor] = {}
    for ours, theirs in _pairs(cfg, pretraining):
        if ours not in state_dict:
            if "pooler" in ours:
                continue
            raise ValueError(f"state_dict lacks {ours!r} (expected an aicanon ALBERT state dict for {cfg})")
        out[theirs] = state_dict[ours]
    if pretraining:  # the tied decoder, written out as transformers saves it
        out["predictions.decoder.weight"] = state_dict["albert.embeddings.word.weight"]
        out["predictions.decoder.bias"] = state_dict["mlm_bias"]
    return out


# ------------------------------------------------------------------- transformers folders
# Options of transformers' AlbertConfig that change the function and that this module does not
# build: (key, the value we compute). Anything else is refused, never dropped.
_FIXED_OPTIONS = (("position_embedding_type", "absolute"),)


def load_pretrained(path, model_class: type | None = None) -> nn.Module:
    """An :class:`AlbertEncoder` (transformers' ``AlbertModel``) or :class:`AlbertForPreTraining`
    from a transformers folder: ``config.json`` and ``model.safetensors`` or index-listed shards
    (:func:`aicanon.core.pretrained.read_transformers_folder`; pickled ``.bin`` folders are refused).

    The config is read by :func:`config_from_transformers`; layer-group layouts the paper's sharing
    modes cannot express and ``position_embedding_type`` other than ``"absolute"`` raise
    ``ValueError``. An encoder loads from a model with heads (``albert.*`` keys: the heads are left
    out, as transformers' ``AlbertModel.from_pretrained`` does); :class:`AlbertForPreTraining` needs
    the SOP head, so an ``AlbertForMaskedLM`` folder (MLM head only, as the released ``albert-*-v2``)
    loads as an encoder and is refused as a pre-training model (:func:`from_transformers` names the
    first key it lacks; the strict loader then checks every shape).
    """
    from aicanon.core.pretrained import read_transformers_folder
    from aicanon.core.state_dict import load_state_dict_strict

    model_class = AlbertEncoder if model_class is None else model_class
    if not (isinstance(model_class, type) and issubclass(model_class, (AlbertEncoder, AlbertForPreTraining))):
        raise TypeError(f"model_class must be AlbertEncoder or AlbertForPreTraining, got {model_class!r}")
    config, tensors = read_transformers_folder(path, "AlbertModel")
    for key, ours in _FIXED_OPTIONS:
        if config.get(key, ours) != ours:
            raise ValueError(
                f"config must describe a model this ALBERT computes: {key} must be {ours!r}, got {config[key]!r}"
            )
    cfg = config_from_transformers(config)
    pretraining = issubclass(model_class, AlbertForPreTraining)
    if not pretraining and any(k.startswith("albert.") for k in tensors):
        tensors = {k.removeprefix("albert."): v for k, v in tensors.items() if k.startswith("albert.")}
    model = model_class(cfg)
    load_state_dict_strict(
        model,
        from_transformers(tensors, cfg, pretraining=pretraining),
        source=f"transformers checkpoint {str(path)!r}",
    )
    return model


def save_pretrained(model: nn.Module, path, max_shard_size: int | str | None = None) -> None:
    """Write ``model`` as a folder transformers loads: an :class:`AlbertEncoder` as ``AlbertModel``,
    an :class:`AlbertForPreTraining` as ``AlbertForPreTraining`` (``config.json`` and safetensors;
    sharded with ``max_shard_size``, see :func:`aicanon.core.pretrained.write_transformers_folder`).
    Sharing modes transformers cannot hold (``"attention"``, ``"ffn"``) and BERT (``factorize=False``)
    raise ``ValueError`` (:func:`config_to_transformers`); an encoder without pooler is refused, as
    ``AlbertModel`` always has one. The tied MLM decoder is not written: transformers re-ties it."""
    from aicanon.core.pretrained import write_transformers_folder

    if not isinstance(model, (AlbertEncoder, AlbertForPreTraining)):
        raise TypeError(f"model must be an AlbertEncoder or AlbertForPreTraining, got {type(model).__name__}")
    encoder = model if isinstance(model, AlbertEncoder) else model.albert
    if encoder.pooler is None:
        raise ValueError(
            "model must have its pooler to be written as transformers' AlbertModel, got add_pooler=False"
        )
    cfg = model.cfg
    state = model.state_dict()
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) != 1:
        raise ValueError(f"model must hold one floating dtype to be saved, got {sorted(map(str, dtypes))}")
    dtype = str(dtypes.pop()).removeprefix("torch.")
    architecture = "AlbertModel" if isinstance(model, AlbertEncoder) else "AlbertForPreTraining"
    config = {
        "architectures": [architecture],
        "model_type": "albert",
        **config_to_transformers(cfg),
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        # "dtype" for transformers 5, "torch_dtype" for 4.x.
        "dtype": dtype,
        "torch_dtype": dtype,
    }
    tensors = to_transformers(state, cfg)
    # safetensors refuses tensors sharing storage; transformers ties the decoder to the embedding.
    tensors = {k: v for k, v in tensors.items() if not k.startswith("predictions.decoder.")}
    write_transformers_folder(path, config, tensors, max_shard_size)
