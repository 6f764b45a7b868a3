"""LoRA layers, apply/merge, peft-format adapters and Eq. 4 (aicanon.align.lora)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.align.lora import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    LoRAConv2d,
    LoRAEmbedding,
    LoRALinear,
    adapter_state_dict,
    apply_lora,
    count_parameters,
    load_adapter,
    load_adapter_state_dict,
    lora_layers,
    merge_lora,
    save_adapter,
    subspace_similarity,
    unmerge_lora,
)
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("lora")


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Give every LoRA factor non-zero values so that B A != 0 and tests can see the adapter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.conv = nn.Conv2d(8, 6, 3, padding=1, stride=2)
        self.proj = nn.Linear(6, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, ids):
        x = self.embed(ids)  # [B, 16, 8]
        x = x.transpose(1, 2).reshape(ids.shape[0], 8, 4, 4)
        x = self.conv(x).mean((2, 3))
        return self.head(torch.tanh(self.proj(x)))


# ----- golden values and invariants ------------------------------------------------------------------


def test_linear_golden_value_eq3():
    base = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    layer = LoRALinear(base, r=1, alpha=2.0)
    with torch.no_grad():
        layer.lora_A.weight.copy_(torch.tensor([[1.0, -1.0]]))
        layer.lora_B.weight.copy_(torch.tensor([[0.5], [2.0]]))
    x = torch.tensor([[3.0, 1.0]])
    # W0 x = [5, 13]; A x = 2; B A x = [1, 4]; scaled by alpha/r = 2 -> [2, 8]
    assert torch.allclose(layer(x), torch.tensor([[7.0, 21.0]]))


def test_initial_adapter_is_identity_and_init_distributions():
    torch.manual_seed(0)
    base = nn.Linear(64, 32)
    layer = LoRALinear(base, r=8, alpha=16)
    x = torch.randn(5, 64)
    assert torch.equal(layer(x), base(x))  # B = 0: dW = 0 at the start (Section 4.1)
    assert layer.lora_A.weight.abs().max() <= 1 / math.sqrt(64) + 1e-6  # kaiming_uniform(a=sqrt 5) bound
    gauss = LoRALinear(nn.Linear(512, 4), r=4, init="gaussian")
    assert abs(gauss.lora_A.weight.std().item() - 0.25) < 0.02
    assert layer.scaling == 2.0


def test_apply_lora_freezes_all_but_adapter_and_saved_modules():
    torch.manual_seed(0)
    model = _Toy()
    apply_lora(model, ["proj", "conv", "embed"], r=2, alpha=4, modules_to_save=["head"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "embed.lora_embedding_A",
        "embed.lora_embedding_B",
        "conv.lora_A.weight",
        "conv.lora_B.weight",
        "proj.lora_A.weight",
        "proj.lora_B.weight",
        "head.weight",
        "head.bias",
    }
    assert count_parameters(
        model, trainable_only=True
    ) == 2 * 11 + 8 * 2 + 2 * 8 * 9 + 6 * 2 + 2 * 6 + 5 * 2 + (5 * 2 + 2)
    ids = torch.randint(0, 11, (3, 16))
    model(ids).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_merge_equals_unmerged_and_unmerge_restores(dropout):
    torch.manual_seed(0)
    model = _Toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, ["proj", "conv", "embed", "head"], r=3, alpha=5, dropout=dropout)
    _randomise(model)
    model.eval()  # dropout off: merged and unmerged compute the same function
    ids = torch.randint(0, 11, (4, 16))
    unmerged = model(ids)
    merge_lora(model)
    assert all(m.merged for m in lora_layers(model).values())
    assert torch.allclose(model(ids), unmerged, atol=1e-5)
    unmerge_lora(model)
    assert torch.allclose(model(ids), unmerged, atol=1e-5)
    for key, value in before.items():
        parts = key.split(".")
        ours = ".".join(parts[:-1] + ["base_layer", parts[-1]])
        assert torch.allclose(model.state_dict()[ours], value, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    r=st.integers(1, 6),
    d_in=st.integers(1, 12),
    d_out=st.integers(1, 12),
    alpha=st.floats(0.1, 32.0),
    seed=st.integers(0, 1000),
)
def test_property_linear_equals_dense_update(r, d_in, d_out, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    layer = LoRALinear(base, r=r, alpha=alpha)
    with torch.no_grad():
        layer.lora_B.weight.copy_(torch.randn(d_out, r, generator=g))
    x = torch.randn(3, d_in, generator=g)
    dense = x @ (base.weight + layer.lora_B.weight @ layer.lora_A.weight * alpha / r).T + base.bias
    assert torch.allclose(layer(x), dense, atol=1e-4, rtol=1e-4)
    assert torch.linalg.matrix_rank(layer.delta_weight()) <= min(r, d_in, d_out)


@settings(max_examples=30, deadline=None)
@given(r1=st.integers(1, 6), r2=st.integers(1, 6), k=st.integers(6, 16), seed=st.integers(0, 1000))
def test_property_subspace_similarity_bounds_and_symmetry(r1, r2, k, seed):
    g = torch.Generator().manual_seed(seed)
    a1, a2 = torch.randn(r1, k, generator=g), torch.randn(r2, k, generator=g)
    for i in range(1, r1 + 1):
        for j in range(1, r2 + 1):
            phi = float(subspace_similarity(a1, a2, i, j))
            assert -1e-6 <= phi <= 1 + 1e-6
            assert abs(phi - float(subspace_similarity(a2, a1, j, i))) < 1e-5
    # A matrix against itself (or a rescaled, row-mixed copy: same row space) overlaps completely.
    mix = torch.linalg.qr(torch.randn(r1, r1, generator=g))[0]
    assert abs(float(subspace_similarity(a1, 3 * mix @ a1, r1, r1)) - 1) < 1e-5


def test_subspace_similarity_golden():
    a1 = torch.tensor([[1.0, 0.0, 0.0]])
    a2 = torch.tensor([[1.0, 1.0, 0.0]])
    assert abs(float(subspace_similarity(a1, a2, 1, 1)) - 0.5) < 1e-6  # cos^2 45 deg
    a3 = torch.tensor([[0.0, 0.0, 2.0], [0.0, 5.0, 0.0]])  # top direction e2 (singular value 5)
    assert abs(float(subspace_similarity(a1, a3, 1, 2))) < 1e-6
    assert abs(float(subspace_similarity(a2, a3, 1, 1)) - 0.5) < 1e-6


def test_adapter_roundtrip_in_files(tmp_path):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, max_seq_len=32
    )
    base = Llama(cfg)
    model = apply_lora(Llama(cfg), ["q_proj", "v_proj"], r=4, alpha=8)
    model.load_state_dict({**model.state_dict(), **_rename_base(base.state_dict(), model)})
    _randomise(model, 3)
    save_adapter(model, tmp_path)
    keys = set(adapter_state_dict(model))
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys and len(keys) == 8
    config = json.loads((tmp_path / ADAPTER_CONFIG_NAME).read_text())
    assert (config["r"], config["lora_alpha"], config["target_modules"]) == (4, 8.0, ["q_proj", "v_proj"])
    fresh = Llama(cfg)
    fresh.load_state_dict(base.state_dict())
    load_adapter(fresh, tmp_path)
    ids = torch.randint(0, 40, (2, 9))
    assert torch.equal(fresh(ids), model(ids))


def _rename_base(state, wrapped):
    names = set(wrapped.state_dict())
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        alt = ".".join(parts[:-1] + ["base_layer", parts[-1]])
        out[alt if alt in names else key] = value
    return out


# ----- reference parity: peft on transformers' LlamaForCausalLM ---------------------------------------


def _pair(targets=("q_proj", "v_proj"), r=4, alpha=8):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    from aicanon.language.llama_weights import config_from_transformers, from_transformers

    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    cfg = config_from_transformers(hf_cfg)
    ours = Llama(cfg)
    ours.load_state_dict(from_transformers(hf.state_dict(), cfg))
    ours.eval()
    ours.base_state = {k: v.clone() for k, v in ours.state_dict().items()}
    peft_model = peft.get_peft_model(
        hf, peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0)
    )
    _randomise(peft_model, 1)
    apply_lora(ours, list(targets), r=r, alpha=alpha)
    return peft, peft_model, ours


def _compare(peft_model, ours, peft_lib):
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(5))
    ref_logits = peft_model(input_ids=ids).logits
    our_logits = ours(ids)
    assert torch.allclose(our_logits, ref_logits, atol=1e-5)
    ref_logits.square().sum().backward()
    our_logits.square().sum().backward()
    ref_grads = {
        k.replace(".default", ""): p.grad for k, p in peft_model.named_parameters() if p.requires_grad
    }
    our_grads = {
        "base_model.model." + ("model." + k): p.grad for k, p in ours.named_parameters() if p.requires_grad
    }
    assert set(ref_grads) == set(our_grads) and ref_grads
    for key, grad in ref_grads.items():
        assert torch.allclose(our_grads[key], grad, atol=1e-5), key


@pytest.mark.parity
def test_parity_outputs_and_gradients_with_peft():
    peft, peft_model, ours = _pair()
    load_adapter_state_dict(ours, peft.get_peft_model_state_dict(peft_model))
    _compare(peft_model, ours, peft)


@pytest.mark.parity
def test_parity_peft_saved_adapter_loads_into_ours(tmp_path):
    peft, peft_model, ours = _pair()
    peft_model.save_pretrained(tmp_path)
    assert (tmp_path / ADAPTER_WEIGHTS_NAME).is_file()
    # Load into a fresh model with no adapter: the layers come from peft's adapter_config.json.
    fresh = Llama(ours.config)
    fresh.load_state_dict(ours.base_state)
    load_adapter(fresh, tmp_path)
    fresh.eval()
    _compare(peft_model, fresh, peft)


@pytest.mark.parity
def test_parity_our_saved_adapter_loads_into_peft(tmp_path):
    peft, peft_model, ours = _pair()
    _randomise(ours, 7)
    save_adapter(ours, tmp_path)
    import transformers

    from aicanon.language.llama_weights import to_transformers

    plain = transformers.LlamaForCausalLM(peft_model.get_base_model().config).eval()
    plain.load_state_dict(to_transformers(ours.base_state))
    reference = peft.PeftModel.from_pretrained(plain, tmp_path)
    ids = torch.randint(0, 50, (2, 12))
    assert torch.allclose(ours(ids), reference(input_ids=ids).logits, atol=1e-5)


@pytest.mark.parity
def test_parity_embedding_lora_and_merge_with_peft():
    peft, peft_model, ours = _pair(targets=("embed_tokens", "o_proj", "gate_proj"), r=3, alpha=6)
    load_adapter_state_dict(ours, peft.get_peft_model_state_dict(peft_model, save_embedding_layers=False))
    _compare(peft_model, ours, peft)
    ids = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        merged_ref = peft_model.merge_and_unload()(input_ids=ids).logits
        merge_lora(ours)
        assert torch.allclose(ours(ids), merged_ref, atol=1e-5)


@pytest.mark.parity
def test_parity_conv2d_lora_with_peft():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    reference = _Toy()
    ours = _Toy()
    ours.load_state_dict(reference.state_dict())
    reference = peft.get_peft_model(reference, peft.LoraConfig(r=2, lora_alpha=3, target_modules=["conv"]))
    _randomise(reference, 2)
    apply_lora(ours, ["conv"], r=2, alpha=3)
    load_adapter_state_dict(ours, peft.get_peft_model_state_dict(reference))
    ids = torch.randint(0, 11, (3, 16))
    assert torch.allclose(ours(ids), reference(ids), atol=1e-5)
    ours(ids).sum().backward()
    reference(ids).sum().backward()
    ref = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        if p.requires_grad:
            key = "base_model.model." + name.replace("lora_A.", "lora_A.default.").replace(
                "lora_B.", "lora_B.default."
            )
            assert torch.allclose(p.grad, ref[key].grad, atol=1e-5), name


# ----- bad input ---------------------------------------------------------------------------------------


def test_bad_target_modules_lists_existing_names():
    with pytest.raises(ValueError, match=r"target_modules .*match no.*proj"):
        apply_lora(_Toy(), ["query"])
    with pytest.raises(TypeError, match="target_modules must be"):
        apply_lora(_Toy(), 3)
    with pytest.raises(ValueError, match="modules_to_save .* match no module"):
        apply_lora(_Toy(), ["proj"], modules_to_save=["classifier"])
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        apply_lora("model", ["proj"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"r": 0}, ValueError, r"r must be >= 1 \(the rank of B A\), got 0"),
        ({"r": 2.5}, TypeError, r"r must be an int \(the rank of B A\), got float"),
        ({"alpha": 0}, ValueError, r"alpha must be > 0 \(the update is scaled by alpha / r\), got 0"),
        ({"alpha": -1.0}, ValueError, r"alpha must be > 0 .*, got -1.0"),
        ({"alpha": "1"}, TypeError, r"alpha must be a number .*, got str"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a probability in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, ValueError, r"dropout must be a probability in \[0, 1\)"),
        ({"init": "xavier"}, ValueError, "init must be one of"),
    ],
)
def test_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        apply_lora(_Toy(), ["proj"], **kwargs)
    with pytest.raises(error, match=message):
        LoRALinear(nn.Linear(3, 3), **kwargs)


def test_bad_layer_types_and_twice():
    with pytest.raises(TypeError, match="base_layer must be an nn.Linear, got Conv2d"):
        LoRALinear(nn.Conv2d(2, 2, 1))
    with pytest.raises(TypeError, match="base_layer must be an nn.Embedding"):
        LoRAEmbedding(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="groups=1"):
        LoRAConv2d(nn.Conv2d(4, 4, 3, groups=2))
    model = apply_lora(_Toy(), ["proj"])
    with pytest.raises(ValueError, match="already has LoRA layers"):
        apply_lora(model, ["head"])


def test_merging_twice_and_unmerging_unmerged_raise():
    model = apply_lora(_Toy(), ["proj", "head"])
    with pytest.raises(ValueError, match="expected merged LoRA layers, got unmerged ones"):
        unmerge_lora(model)
    merge_lora(model)
    with pytest.raises(
        ValueError, match=r"expected unmerged LoRA layers, got already merged ones: \['proj', 'head'\]"
    ):
        merge_lora(model)
    with pytest.raises(ValueError, match="expected unmerged"):
        adapter_state_dict(model)
    with pytest.raises(ValueError, match="model has no LoRA layers"):
        merge_lora(_Toy())


def test_loading_adapter_that_does_not_fit_lists_keys(tmp_path):
    model = apply_lora(_Toy(), ["proj"], r=2)
    state = adapter_state_dict(model)
    bad = dict(state)
    bad["base_model.model.head.lora_A.weight"] = torch.zeros(2, 5)
    del bad["base_model.model.proj.lora_B.weight"]
    with pytest.raises(
        ValueError,
        match=r"missing keys \['base_model.model.proj.lora_B.weight'\].*unexpected keys \['base_model.model.head.lora_A.weight'\]",
    ):
        load_adapter_state_dict(model, bad)
    wrong = {k: torch.zeros(3, 3) for k in state}
    with pytest.raises(ValueError, match=r"wrong shapes .*expected \(2, 6\), got \(3, 3\)"):
        load_adapter_state_dict(model, wrong)
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        load_adapter_state_dict(model, [1])
    with pytest.raises(ValueError, match="directory must hold adapter_model.safetensors"):
        load_adapter(model, tmp_path)
    other = apply_lora(_Toy(), ["proj"], r=3)
    save_adapter(other, tmp_path)
    with pytest.raises(ValueError, match=r"LoRA layers differ from the config \(r=3.*proj: r=2"):
        load_adapter(model, tmp_path)
    with pytest.raises(ValueError, match="wrong shapes"):
        load_adapter_state_dict(model, adapter_state_dict(other))


def test_bad_subspace_similarity_arguments():
    a = torch.randn(4, 10)
    with pytest.raises(ValueError, match=r"i must be in \[1, 4\] \(the rank of a1\), got 5"):
        subspace_similarity(a, a, 5, 1)
    with pytest.raises(ValueError, match=r"j must be in \[1, 4\] \(the rank of a2\), got 0"):
        subspace_similarity(a, a, 1, 0)
    with pytest.raises(ValueError, match="a1 and a2 must share their input size k, got 10 and 9"):
        subspace_similarity(a, torch.randn(4, 9), 1, 1)
    with pytest.raises(ValueError, match="a2 must be a 2-D float tensor"):
        subspace_similarity(a, torch.ones(4, 10, dtype=torch.long), 1, 1)


# ----- peft round trips: rsLoRA, rank/alpha patterns, regex targets, embeddings (files both ways) -----


def _hf_and_ours():
    """A tiny LlamaForCausalLM and our Llama with the same random weights (no adapters)."""
    transformers = pytest.importorskip("transformers")
    from aicanon.language.llama_weights import config_from_transformers, from_transformers

    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    ours = Llama(config_from_transformers(hf_cfg))
    ours.load_state_dict(from_transformers(hf.state_dict(), ours.config))
    return hf, ours.eval()


_IDS = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(5))

# (peft's LoraConfig arguments, in transformers' names; apply_lora's, in ours)
_ROUND_TRIPS = {
    "rslora": (
        {"target_modules": ["q_proj", "v_proj"], "r": 4, "lora_alpha": 8, "use_rslora": True},
        {"target_modules": ["q_proj", "v_proj"], "r": 4, "alpha": 8, "use_rslora": True},
    ),
    "rank_alpha_patterns": (
        {
            "target_modules": ["q_proj", "v_proj", "down_proj"],
            "r": 4,
            "lora_alpha": 8,
            "rank_pattern": {"model.layers.1.self_attn.q_proj": 2, "down_proj": 3},
            "alpha_pattern": {r"^model\.layers\.0\.self_attn\.v_proj": 3.0},
        },
        {
            # "^layers..." anchors at our names' start: peft's key rule would not match it in
            # transformers' names ("model.layers..."), so save_adapter must rewrite it.
            "target_modules": ["q_proj", "v_proj", "down_proj"],
            "r": 4,
            "alpha": 8,
            "rank_pattern": {r"^layers\.1\.self_attn\.q_proj": 2, "down_proj": 3},
            "alpha_pattern": {r"^layers\.0\.self_attn\.v_proj": 3.0},
        },
    ),
    "rslora_with_patterns": (
        {
            "target_modules": ["q_proj", "o_proj"],
            "r": 4,
            "lora_alpha": 8,
            "use_rslora": True,
            "rank_pattern": {"o_proj": 2},
            "alpha_pattern": {"q_proj": 5.0},
        },
        {
            "target_modules": ["q_proj", "o_proj"],
            "r": 4,
            "alpha": 8,
            "use_rslora": True,
            "rank_pattern": {"o_proj": 2},
            "alpha_pattern": {"q_proj": 5.0},
        },
    ),
    "regex_target": (
        {"target_modules": r"model\.layers\.1\.self_attn\.(q|v)_proj", "r": 4, "lora_alpha": 8},
        {"target_modules": r"layers\.1\.self_attn\.(q|v)_proj", "r": 4, "alpha": 8},
    ),
    "embedding": (
        {"target_modules": ["embed_tokens", "q_proj"], "r": 3, "lora_alpha": 6},
        {"target_modules": ["embed_tokens", "q_proj"], "r": 3, "alpha": 6},
    ),
}


@pytest.mark.parity
@pytest.mark.parametrize("case", sorted(_ROUND_TRIPS))
def test_parity_peft_saved_adapter_options_load_into_ours(tmp_path, case):
    peft = pytest.importorskip("peft")
    hf, ours = _hf_and_ours()
    reference = peft.get_peft_model(hf, peft.LoraConfig(**_ROUND_TRIPS[case][0])).eval()
    _randomise(reference, 11)
    reference.save_pretrained(tmp_path)  # peft's defaults: embed_tokens also writes base_layer.weight
    if case == "embedding":
        saved = json.loads((tmp_path / ADAPTER_CONFIG_NAME).read_text())
        from safetensors.torch import load_file

        assert "base_model.model.model.embed_tokens.base_layer.weight" in load_file(
            str(tmp_path / ADAPTER_WEIGHTS_NAME)
        ), saved
    load_adapter(ours, tmp_path)
    with torch.no_grad():
        assert torch.allclose(ours(_IDS), reference(input_ids=_IDS).logits, atol=1e-5)
    layers = lora_layers(ours)
    for name, layer in reference.named_modules():
        if hasattr(layer, "scaling") and isinstance(layer.scaling, dict) and "default" in layer.scaling:
            ours_name = name.removeprefix("base_model.model.").removeprefix("model.")
            assert layers[ours_name].scaling == pytest.approx(layer.scaling["default"]), name


@pytest.mark.parity
@pytest.mark.parametrize("case", sorted(_ROUND_TRIPS))
def test_parity_our_saved_adapter_options_load_into_peft(tmp_path, case):
    peft = pytest.importorskip("peft")
    hf, ours = _hf_and_ours()
    apply_lora(ours, **_ROUND_TRIPS[case][1])
    _randomise(ours, 13)
    save_adapter(ours, tmp_path)
    reference = peft.PeftModel.from_pretrained(hf, tmp_path).eval()
    wrapped = {
        n.removeprefix("base_model.model.") for n, m in reference.named_modules() if hasattr(m, "lora_A")
    }
    assert wrapped == {"model." + n for n in lora_layers(ours)}
    with torch.no_grad():
        assert torch.allclose(ours(_IDS), reference(input_ids=_IDS).logits, atol=1e-5)


def test_apply_lora_rslora_and_patterns_scaling():
    model = apply_lora(
        _Toy(),
        ["proj", "head", "conv"],
        r=4,
        alpha=8,
        use_rslora=True,
        rank_pattern={"head": 2},
        alpha_pattern={"c.nv": 3.0},  # keys are regular expressions (peft)
    )
    layers = lora_layers(model)
    assert (layers["proj"].r, layers["proj"].scaling) == (4, 8 / 2)  # alpha / sqrt(r)
    assert (layers["head"].r, layers["head"].scaling) == (2, pytest.approx(8 / math.sqrt(2)))
    assert (layers["conv"].r, layers["conv"].scaling) == (4, 3 / 2)
    assert LoRALinear(nn.Linear(3, 3), r=4, alpha=8).scaling == 2.0


def test_unsupported_or_bad_adapter_config_is_refused_naming_file_and_field(tmp_path):
    model = apply_lora(_Toy(), ["proj"], r=2)
    save_adapter(model, tmp_path)
    path = tmp_path / ADAPTER_CONFIG_NAME
    good = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG_NAME} is not valid JSON"):
        load_adapter(_Toy(), tmp_path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "r"}))
    with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG_NAME}: field 'r' is missing"):
        load_adapter(_Toy(), tmp_path)
    path.write_text(json.dumps({**good, "r": 0}))
    with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG_NAME}: field 'r': r must be >= 1"):
        load_adapter(_Toy(), tmp_path)
    for option in (
        {"use_dora": True},
        {"layers_to_transform": [0]},
        {"exclude_modules": ["head"]},
        {"init_lora_weights": "pissa"},
        {"lora_bias": True},
        {"some_future_option": 3},
    ):
        path.write_text(json.dumps({**good, **option}))
        name = next(iter(option))
        with pytest.raises(ValueError, match=rf"{ADAPTER_CONFIG_NAME}: options that change .*{name}"):
            load_adapter(_Toy(), tmp_path)


class _SubclassedLinear(nn.Linear):
    """An nn.Linear subclass, like torch's NonDynamicallyQuantizableLinear."""


class _WithSubclass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = _SubclassedLinear(6, 4)
        self.attention = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        return self.proj(x)


@pytest.mark.parity
def test_parity_lora_on_linear_subclass_with_peft():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    ours, base = _WithSubclass(), _WithSubclass()
    base.load_state_dict(ours.state_dict())
    apply_lora(ours, ["proj"], r=2, alpha=3)  # was refused: "wrappable modules are []"
    assert isinstance(lora_layers(ours)["proj"], LoRALinear)
    _randomise(ours, 4)
    reference = peft.get_peft_model(base, peft.LoraConfig(r=2, lora_alpha=3, target_modules=["proj"]))
    result = peft.set_peft_model_state_dict(reference, adapter_state_dict(ours))
    assert not result.unexpected_keys
    x = torch.randn(3, 6)
    assert torch.allclose(ours(x), reference(x), atol=1e-5)
    assert not torch.allclose(ours(x), lora_layers(ours)["proj"].base_layer(x), atol=1e-3)
    # nn.MultiheadAttention never calls its out_proj (it reads the weight): refused, naming the class.
    with pytest.raises(ValueError, match=r"NonDynamicallyQuantizableLinear inside nn.MultiheadAttention"):
        apply_lora(_WithSubclass(), ["out_proj"])


@pytest.mark.parametrize("layer_kind", ["linear", "conv"])
def test_dropout_in_train_mode_applies_to_the_adapter_input(layer_kind):
    """Eq. 3 with peft's dropout: ``W0 x + (alpha/r) B A (mask * x) / (1 - p)``, one mask for x."""
    p = 0.5
    torch.manual_seed(0)
    if layer_kind == "linear":
        layer, x = LoRALinear(nn.Linear(16, 8), r=4, alpha=6, dropout=p), torch.randn(5, 16)
    else:
        layer, x = LoRAConv2d(nn.Conv2d(3, 4, 3, padding=1), r=2, alpha=6, dropout=p), torch.randn(2, 3, 5, 5)
    _randomise(layer, 9)
    layer.train()
    torch.manual_seed(123)
    out = layer(x)
    torch.manual_seed(123)  # the base path draws no random numbers: the next draw is the dropout mask
    dropped = nn.functional.dropout(x, p, training=True)
    mask = (dropped != 0).float()
    assert 0 < mask.mean() < 1
    expected = layer.base_layer(x) + layer.scaling * layer.lora_B(layer.lora_A(mask * x / (1 - p)))
    assert torch.allclose(out, expected, atol=1e-5)
    # The dropout must act on the input of B A, not on its output: the two differ here.
    torch.manual_seed(123)
    delta = layer.scaling * layer.lora_B(layer.lora_A(x))
    at_output = layer.base_layer(x) + nn.functional.dropout(delta, p, training=True)
    assert not torch.allclose(out, at_output, atol=1e-3)
