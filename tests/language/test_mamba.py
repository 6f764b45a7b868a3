"""Mamba: parity with transformers' MambaForCausalLM (outputs, gradients, generation), weight layouts
round trip, recurrent inference, initialisation, the LTI ablation, and bad input."""

import math

import pytest
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.mamba import (
    MambaConfig,
    MambaLM,
    MambaState,
    config_from_mamba_ssm,
    config_from_transformers,
    config_to_transformers,
    from_mamba_ssm,
    from_transformers,
    to_mamba_ssm,
    to_transformers,
)

pytestmark = pytest.mark.paper("mamba")

VOCAB = 40


def tiny(**overrides) -> MambaConfig:
    values = dict(d_model=16, n_layer=2, vocab_size=VOCAB, d_state=4, dt_rank=2)
    values.update(overrides)
    return MambaConfig(**values)


@pytest.fixture(scope="module")
def hf_pair():
    transformers = pytest.importorskip("transformers")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    hf_config = transformers.MambaConfig(
        vocab_size=VOCAB, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4,
        use_associative_scan=False,
    )  # fmt: skip
    reference = transformers.MambaForCausalLM(hf_config).eval()
    ours = MambaLM(config_from_transformers(hf_config)).eval()
    load_state_dict_strict(
        ours, from_transformers(reference.state_dict()), source="transformers MambaForCausalLM"
    )
    return ours, reference


@pytest.mark.parity
def test_logits_and_gradients_equal_transformers(hf_pair):
    ours, reference = hf_pair
    ids = torch.randint(0, VOCAB, (3, 37), generator=torch.Generator().manual_seed(1))
    ours.zero_grad()
    reference.zero_grad()
    logits = ours(ids)
    expected = reference(ids).logits
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
    logits.square().mean().backward()
    expected.square().mean().backward()
    ours_grads = {k: p.grad for k, p in ours.named_parameters()}
    theirs = from_transformers({k: p.grad for k, p in reference.named_parameters()})
    assert set(ours_grads) <= set(theirs)
    for name, grad in ours_grads.items():
        # Gradients reach about 1 in size; 1e-5 absolute after scaling by the largest.
        scale = max(1.0, theirs[name].abs().max().item())
        torch.testing.assert_close(grad / scale, theirs[name] / scale, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parity
def test_greedy_generation_equals_transformers(hf_pair):
    ours, reference = hf_pair
    prompt = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(2))
    ours_tokens = ours.generate(prompt, 12)
    with torch.no_grad():
        theirs = reference.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=12,
            min_new_tokens=12,
            do_sample=False,
        )
    assert torch.equal(ours_tokens, theirs)


@pytest.mark.parity
def test_weights_round_trip_through_the_transformers_layout(hf_pair):
    transformers = pytest.importorskip("transformers")
    ours, reference = hf_pair
    rebuilt = transformers.MambaForCausalLM(
        transformers.MambaConfig(**config_to_transformers(ours.cfg))
    ).eval()
    missing, unexpected = rebuilt.load_state_dict(to_transformers(ours.state_dict()), strict=True)
    assert not missing and not unexpected
    ids = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids).logits, ours(ids), rtol=0, atol=1e-5)
    back = from_transformers(to_transformers(ours.state_dict()))
    assert set(back) == set(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(back[key], value)


def test_mamba_ssm_layout_is_ours_and_round_trips():
    model = MambaLM(tiny())
    layout = to_mamba_ssm(model.state_dict())
    assert "backbone.embedding.weight" in layout and "backbone.layers.1.mixer.A_log" in layout
    assert torch.equal(layout["lm_head.weight"], layout["backbone.embedding.weight"])
    copy = MambaLM(tiny())
    without_head = {k: v for k, v in layout.items() if k != "lm_head.weight"}
    load_state_dict_strict(copy, from_mamba_ssm(without_head))
    for key, value in model.state_dict().items():
        assert torch.equal(copy.state_dict()[key], value)
    # A bare backbone's keys (no "backbone." prefix) are accepted too.
    bare = {k.removeprefix("backbone."): v for k, v in without_head.items()}
    assert set(from_mamba_ssm(bare)) == set(layout)


def test_config_of_the_released_130m_model():
    cfg = config_from_mamba_ssm(
        {"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {}, "rms_norm": True,
         "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8}
    )  # fmt: skip
    assert (cfg.d_model, cfg.n_layer, cfg.vocab_size, cfg.d_state, cfg.rank, cfg.d_inner) == (
        768, 24, 50280, 16, 48, 1536,
    )  # fmt: skip
    model = MambaLM(MambaConfig(d_model=768, n_layer=1, vocab_size=16))
    mixer = model.backbone.layers[0].mixer
    # Shapes of one layer of state-spaces/mamba-130m.
    assert tuple(mixer.in_proj.weight.shape) == (3072, 768)
    assert tuple(mixer.conv1d.weight.shape) == (1536, 1, 4)
    assert tuple(mixer.x_proj.weight.shape) == (48 + 32, 1536)
    assert tuple(mixer.dt_proj.weight.shape) == (1536, 48)
    assert tuple(mixer.A_log.shape) == (1536, 16)
    with pytest.raises(ValueError, match="ssm_cfg has options we do not implement"):
        config_from_mamba_ssm({"d_model": 8, "n_layer": 1, "vocab_size": 8, "ssm_cfg": {"headdim": 4}})


def test_recurrent_steps_and_split_prefill_equal_the_full_forward():
    torch.manual_seed(0)
    model = MambaLM(tiny()).eval()
    ids = torch.randint(0, VOCAB, (2, 15))
    with torch.no_grad():
        full = model(ids)
        state = model.initial_state(2)
        steps = []
        for t in range(15):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
        torch.testing.assert_close(torch.stack(steps, 1), full, rtol=0, atol=1e-5)
        first, middle = model(ids[:, :2], return_state=True)  # shorter than the convolution
        second, _ = model(ids[:, 2:], middle, return_state=True)
        torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=0, atol=1e-5)
        # The state's size does not grow with the sequence (Section 3.4).
        assert [tuple(s.shape) for s in state.ssm] == [(2, 32, 4)] * 2
        assert [tuple(s.shape) for s in state.conv] == [(2, 32, 3)] * 2


def test_generate_continues_with_the_argmax_of_the_full_forward():
    torch.manual_seed(1)
    model = MambaLM(tiny()).eval()
    prompt = torch.randint(0, VOCAB, (2, 4))
    tokens = model.generate(prompt, 5)
    assert tokens.shape == (2, 9) and torch.equal(tokens[:, :4], prompt)
    with torch.no_grad():
        logits = model(tokens[:, :-1])
    assert torch.equal(logits[:, 3:].argmax(-1), tokens[:, 4:])


def test_initialisation_follows_the_paper():
    cfg = tiny(d_state=6, dt_min=0.002, dt_max=0.05)
    torch.manual_seed(0)
    model = MambaLM(cfg)
    mixer = model.backbone.layers[0].mixer
    # S4D-Real: A_n = -(n + 1) in every channel.
    A = -torch.exp(mixer.A_log)
    assert torch.allclose(A, -torch.arange(1, 7.0).expand(32, 6))
    assert torch.equal(mixer.D, torch.ones(32))
    dt = torch.nn.functional.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 0.002 * (1 - 1e-5) and dt.max() <= 0.05 * (1 + 1e-5)
    bound = cfg.rank**-0.5
    assert mixer.dt_proj.weight.abs().max() <= bound
    assert model.lm_head.weight is model.backbone.embedding.weight  # tied
    assert abs(model.backbone.embedding.weight.std().item() - 0.02) < 0.005


def test_the_lti_ablation_has_input_independent_delta_b_c():
    torch.manual_seed(0)
    model = MambaLM(tiny(selective=False))
    mixer = model.backbone.layers[0].mixer
    assert not hasattr(mixer, "x_proj")
    u1, u2 = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    for a, b in zip(mixer.ssm_parameters(u1), mixer.ssm_parameters(u2)):
        assert torch.equal(a, b)
        assert torch.equal(a[0, 0], a[1, 4])  # the same at every step and in every sequence
    selective = MambaLM(tiny()).backbone.layers[0].mixer
    assert not torch.equal(selective.ssm_parameters(u1)[1], selective.ssm_parameters(u2)[1])
    with torch.no_grad():  # recurrent mode works for the ablation too
        ids = torch.randint(0, VOCAB, (2, 7))
        state = model.initial_state(2)
        steps = []
        for t in range(7):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
        torch.testing.assert_close(torch.stack(steps, 1), model(ids), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="transformers has no LTI"):
        config_to_transformers(model.cfg)


def test_output_is_causal():
    torch.manual_seed(0)
    model = MambaLM(tiny()).eval()
    ids = torch.randint(0, VOCAB, (1, 12))
    changed = ids.clone()
    changed[0, 8] = (ids[0, 8] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_bad_inputs_are_rejected_with_clear_messages():
    model = MambaLM(tiny())
    with pytest.raises(ValueError, match="input_ids must be an integer tensor"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, 40\)"):
        model(torch.full((1, 3), VOCAB))
    with pytest.raises(ValueError, match="at least one token"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="state must be a MambaState"):
        model(torch.zeros(1, 3, dtype=torch.long), state=(torch.zeros(1),))
    with pytest.raises(ValueError, match="state must hold 2 layers"):
        model(torch.zeros(1, 3, dtype=torch.long), state=MambaState())
    with pytest.raises(ValueError, match=r"state.conv must be a tensor of shape \[1, 32, 3\]"):
        state = model.initial_state(2)
        model.step(torch.zeros(1, dtype=torch.long), state)
    with pytest.raises(ValueError, match="d_model must be >= 1"):
        MambaConfig(d_model=0)
    with pytest.raises(ValueError, match="scan must be one of"):
        MambaConfig(scan="cuda")
    with pytest.raises(ValueError, match="dt_max must be >= 0.1"):
        MambaConfig(dt_min=0.1, dt_max=0.01)
    with pytest.raises(TypeError, match="selective must be a bool"):
        MambaConfig(selective=1)
    with pytest.raises(TypeError, match="cfg must be a MambaConfig"):
        MambaLM({"d_model": 4})
    with pytest.raises(ValueError, match="hidden_act must be 'silu'"):
        config_from_transformers(
            {"hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 4, "hidden_act": "gelu"}
        )
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), -1)


def test_dt_rank_defaults_to_a_sixteenth_of_the_width():
    assert MambaConfig(d_model=100, n_layer=1, vocab_size=4).rank == math.ceil(100 / 16)
