"""DETR transformers folders: Detr.from_pretrained / save_pretrained round trips with transformers
(through the feature-map path of the parity test in test_detr.py), refused options, refused pickles."""

from __future__ import annotations

import json

import pytest
import torch

from aicanon.vision.detr import Detr, SmallResNet, config_from_transformers

pytestmark = pytest.mark.paper("vision-transformers-survey")


def _reference_config(transformers, **overrides):
    # A transformers ResNet of basic blocks (no timm, nothing pretrained, nothing downloaded), its last
    # stage 16 channels wide like SmallResNet(1, (8, 16)); a tiny random transformer.
    backbone = transformers.ResNetConfig(
        num_channels=1,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        out_features=["stage2"],
        layer_type="basic",
    )
    kwargs = {
        "backbone_config": backbone,
        "num_channels": 1,
        "num_queries": 5,
        "d_model": 16,
        "encoder_layers": 2,
        "decoder_layers": 1,
        "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "num_labels": 3,
        "dropout": 0.0,
    }
    kwargs.update(overrides)
    return transformers.DetrConfig(**kwargs)


def _reference(transformers, **overrides):
    torch.manual_seed(1)
    reference = transformers.DetrForObjectDetection(_reference_config(transformers, **overrides)).eval()
    with torch.no_grad():  # random, non-trivial values everywhere (HF initialises some to 0 or 1)
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return reference


def _assert_same_detector(ours: Detr, reference) -> None:
    """Same outputs from one feature map: ours from the map, transformers from the tokens its *own*
    input projection makes of it (so the projection is compared too), as in test_detr.py."""
    torch.manual_seed(2)
    feature_map = torch.randn(2, 16, 3, 3)
    projection = reference.model.input_projection
    tokens = (
        torch.nn.functional.conv2d(feature_map, projection.weight, projection.bias).flatten(2).transpose(1, 2)
    )
    with torch.no_grad():
        out = ours.eval().forward_feature_map(feature_map)
        ref = reference.eval()(pixel_values=None, inputs_embeds=tokens)
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.boxes, ref.pred_boxes, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_transformers_folder_loads_into_detr_on_our_backbone(tmp_path):
    transformers = pytest.importorskip("transformers")
    reference = _reference(transformers)
    reference.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    torch.manual_seed(3)
    backbone = SmallResNet(1, (8, 16))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    ours = Detr.from_pretrained(tmp_path, backbone)
    assert ours.backbone is backbone and ours.num_classes == 3 and len(ours.decoder_layers) == 1
    for key, value in backbone.state_dict().items():  # the checkpoint's ResNet is not loaded into ours
        assert torch.equal(value, before[key]), key
    _assert_same_detector(ours, reference)
    # aux_loss only adds the earlier layers' predictions
    assert Detr.from_pretrained(tmp_path, SmallResNet(1, (8, 16)), aux_loss=False).aux_loss is False


@pytest.mark.parity
def test_our_folder_loads_into_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = Detr(
        SmallResNet(1, (8, 16)), 3, num_queries=5, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=2,
        ffn_dim=32, dropout=0.0,
    )  # fmt: skip
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auxiliary_loss"] is False and config["backbone_config"]["hidden_sizes"] == [8, 16]
    assert not any(
        k.startswith("model.backbone.") for k in _safetensors_keys(tmp_path)
    )  # our backbone is not written
    reference = transformers.DetrForObjectDetection.from_pretrained(tmp_path).eval()
    assert reference.config.num_labels == 3 and reference.config.decoder_layers == 2
    _assert_same_detector(ours, reference)
    # and back: our folder reads into ours unchanged
    again = Detr.from_pretrained(tmp_path, SmallResNet(1, (8, 16)))
    for key, value in ours.state_dict().items():
        if not key.startswith("backbone."):
            assert torch.equal(value, again.state_dict()[key]), key


def _safetensors_keys(folder) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return list(f.keys())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("position_embedding_type", "learned", "position_embedding_type='sine'.*got 'learned'"),
        ("activation_function", "gelu", "activation_function='relu'.*got 'gelu'"),
        ("auxiliary_loss", True, "auxiliary_loss=False.*got True.*normalised"),
        ("dilation", True, "dilation=False.*got True.*DC5"),
        ("decoder_layerdrop", 0.1, "decoder_layerdrop=0.0.*LayerDrop"),
    ],
)
def test_options_detr_does_not_compute_are_refused(tmp_path, option, value, message):
    transformers = pytest.importorskip("transformers")
    reference = _reference(transformers)
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[option] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        Detr.from_pretrained(tmp_path, SmallResNet(1, (8, 16)))


def test_config_mismatches_are_refused():
    base = {"architectures": ["DetrForObjectDetection"], "id2label": {"0": "a"}}
    with pytest.raises(
        ValueError, match="encoder_ffn_dim == decoder_ffn_dim.*got encoder_ffn_dim=64, decoder_ffn_dim=32"
    ):
        config_from_transformers({**base, "encoder_ffn_dim": 64, "decoder_ffn_dim": 32})
    with pytest.raises(
        ValueError, match="DetrForObjectDetection.*got architectures=\\['DetrForSegmentation'\\]"
    ):
        config_from_transformers({**base, "architectures": ["DetrForSegmentation"]})
    with pytest.raises(TypeError, match="config must be a mapping"):
        config_from_transformers([1])
    assert config_from_transformers(base)["num_classes"] == 1  # one label; defaults otherwise
    assert config_from_transformers(base)["d_model"] == 256


def test_backbone_that_does_not_fit_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    _reference(transformers).save_pretrained(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"backbone must give the 16 channels .*resnet with stage widths \[8, 16\].*got SmallResNet with 32 channels at stride 4",
    ):
        Detr.from_pretrained(tmp_path, SmallResNet(1, (8, 32)))
    with pytest.raises(
        ValueError, match="backbone must take the checkpoint's 1-channel images.*in_channels=3"
    ):
        Detr.from_pretrained(tmp_path, SmallResNet(3, (8, 16)))
    with pytest.raises(TypeError, match="backbone must be an aicanon.vision.backbone.Backbone, got Linear"):
        Detr.from_pretrained(tmp_path, torch.nn.Linear(2, 2))


def test_pickle_only_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["DetrForObjectDetection"], "model_type": "detr"})
    )
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(
        ValueError, match=r"only pickled \['pytorch_model.bin'\].*never unpickle.*DetrForObjectDetection"
    ):
        Detr.from_pretrained(tmp_path, SmallResNet(1, (8, 16)))


def test_save_refuses_what_transformers_cannot_hold(tmp_path):
    model = Detr(
        SmallResNet(1, (8, 16)), 3, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=32
    )
    model.position_embedding.temperature = 20.0
    with pytest.raises(ValueError, match="position_embedding must be the paper's.*temperature=20.0"):
        model.save_pretrained(tmp_path)
    model.position_embedding.temperature = 10000.0
    model.class_head.double()
    with pytest.raises(ValueError, match="one floating dtype"):
        model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="backbone_config must be a transformers backbone config"):
        Detr(SmallResNet(1, (8, 16)), 3, d_model=16, num_heads=2).save_pretrained(
            tmp_path, backbone_config={"x": 1}
        )


def test_to_transformers_names_both_layouts_and_inverts_from_transformers():
    transformers = pytest.importorskip("transformers")
    from aicanon.vision.detr import from_transformers, to_transformers

    reference = _reference(transformers)
    modules = {k: v for k, v in reference.state_dict().items() if not k.startswith("model.backbone.")}
    ours = from_transformers(reference.state_dict())
    assert to_transformers(ours, layout="modules").keys() == modules.keys()
    checkpoint = to_transformers(ours)
    assert (
        "model.encoder.layers.0.fc1.weight" in checkpoint
        and "model.decoder.layers.0.self_attn.out_proj.bias" in checkpoint
    )
    assert from_transformers(checkpoint).keys() == ours.keys()  # the files' names read back too
    with pytest.raises(ValueError, match="layout must be 'checkpoint' or 'modules', got 'hub'"):
        to_transformers(ours, layout="hub")
    with pytest.raises(ValueError, match=r"not DETR's detector: \['foo.bar'\]"):
        to_transformers({"foo.bar": torch.ones(1)})
