"""SDXL's additions: the micro-conditioning ids in diffusers' pipeline order, the conditioning path
against diffusers' UNet2DConditionModel (text_time), Algorithm 1's size and crop, the multi-aspect
buckets of Appendix I, the encoder pair, the SDEdit refiner's steps, bad input."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import space_timesteps
from aicanon.generative.diffusion.schedules import make_betas
from aicanon.generative.diffusion.sdxl import (
    BucketBatchSampler,
    DualTextEncoder,
    SDXLDenoiser,
    TokenEncoder,
    aspect_buckets,
    bucketed_batch,
    class_prompt,
    micro_conditioning,
    nearest_bucket,
    refine,
    sdedit_timesteps,
    size_and_crop,
)
from aicanon.generative.diffusion.unet_conditional import (
    ConditionalUNet,
    ConditionalUNetConfig,
    config_from_diffusers,
    config_to_diffusers,
)

pytestmark = pytest.mark.paper("sdxl")

# The 40 (height, width) pairs of the paper's Appendix I (multi-aspect buckets at ~1024² pixels), by
# aspect ratio h/w, as transcribed in public code (unverified against the PDF); the table has 704×1344
# but not its mirror 1344×704.
PAPER_BUCKETS = [
    (512, 2048), (512, 1984), (512, 1920), (512, 1856), (576, 1792), (576, 1728), (576, 1664),
    (640, 1600), (640, 1536), (704, 1472), (704, 1408), (704, 1344), (768, 1344), (768, 1280),
    (832, 1216), (832, 1152), (896, 1152), (896, 1088), (960, 1088), (960, 1024), (1024, 1024),
    (1024, 960), (1088, 960), (1088, 896), (1152, 896), (1152, 832), (1216, 832), (1280, 768),
    (1344, 768), (1408, 704), (1472, 704), (1536, 640), (1600, 640), (1664, 576),
    (1728, 576), (1792, 576), (1856, 512), (1920, 512), (1984, 512), (2048, 512),
]  # fmt: skip


def _encoder(first: int = 8, second: int = 12, vocab: int = 12) -> DualTextEncoder:
    return DualTextEncoder(
        TokenEncoder(vocab, first, layers=2, heads=2, max_length=4),
        TokenEncoder(vocab, second, layers=3, heads=2, max_length=4, projection_dim=10),
    )


def _unet_config(
    context: int = 20, pooled: int = 10, ids: int = 6, in_channels: int = 4
) -> ConditionalUNetConfig:
    return ConditionalUNetConfig(
        in_channels=in_channels,
        out_channels=in_channels,
        block_out_channels=(16, 32),
        layers_per_block=1,
        cross_attention_levels=(False, True),
        heads=2,
        cross_attention_dim=context,
        linear_projection=True,
        norm_groups=8,
        addition_time_embed_dim=4,
        addition_input_dim=pooled + ids * 4,
    )


def _diffusers_pair(cfg: ConditionalUNetConfig):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    reference = diffusers.UNet2DConditionModel(**config_to_diffusers(cfg, sample_size=8)).eval()
    ours = ConditionalUNet(config_from_diffusers(dict(reference.config))).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


# -- micro-conditioning -----------------------------------------------------------------------------


@pytest.mark.parity
def test_time_ids_follow_diffusers_sdxl_pipelines():
    """original_size + crops_coords_top_left + target_size (base) and + aesthetic score (refiner)."""
    pipelines = pytest.importorskip("diffusers.pipelines.stable_diffusion_xl")
    _, reference = _diffusers_pair(_unet_config())
    fake = SimpleNamespace(unet=reference)
    theirs = pipelines.StableDiffusionXLPipeline._get_add_time_ids(
        fake, (768, 1344), (16, 48), (1024, 1024), torch.float32, text_encoder_projection_dim=10
    )
    ours = micro_conditioning((768, 1344), (16, 48), (1024, 1024))
    torch.testing.assert_close(ours, theirs)
    assert ours.tolist() == [[768.0, 1344.0, 16.0, 48.0, 1024.0, 1024.0]]

    _, refiner = _diffusers_pair(_unet_config(ids=5))
    fake = SimpleNamespace(unet=refiner, config=SimpleNamespace(requires_aesthetics_score=True))
    theirs, negative = pipelines.StableDiffusionXLImg2ImgPipeline._get_add_time_ids(
        fake, (512, 512), (0, 0), (1024, 1024), 6.0, 2.5, (512, 512), (0, 0), (1024, 1024), torch.float32, 10
    )
    torch.testing.assert_close(micro_conditioning((512, 512), (0, 0), aesthetic_score=6.0), theirs)
    torch.testing.assert_close(micro_conditioning((512, 512), (0, 0), aesthetic_score=2.5), negative)


@pytest.mark.parity
def test_conditioning_path_matches_diffusers_with_the_pipelines_time_ids():
    """Our denoiser (encoder pair → context, pooled → text_embeds, time_ids) gives diffusers' output
    when diffusers' UNet gets the same context, pooled embedding and the pipeline's time_ids."""
    pipelines = pytest.importorskip("diffusers.pipelines.stable_diffusion_xl")
    ours, reference = _diffusers_pair(_unet_config())
    encoder = _encoder()
    model = SDXLDenoiser(ours, encoder).eval()
    tokens = class_prompt(torch.tensor([3, 7]), 10)
    ids = pipelines.StableDiffusionXLPipeline._get_add_time_ids(
        SimpleNamespace(unet=reference), (256, 384), (0, 64), (512, 512), torch.float32, 10
    ).repeat(2, 1)
    x, t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([10, 700])
    with torch.no_grad():
        context, pooled = encoder(tokens)
        theirs = reference(
            x, t, encoder_hidden_states=context, added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}
        ).sample
        mine = model(x, t, tokens, micro_conditioning((256, 384), (0, 64), (512, 512), batch=2))
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


def test_micro_conditioning_builds_rows_and_refuses_bad_input():
    ids = micro_conditioning(torch.tensor([[4, 4], [8, 8]]), (0, 0), (8, 8))
    assert ids.tolist() == [[4, 4, 0, 0, 8, 8], [8, 8, 0, 0, 8, 8]]
    assert micro_conditioning((8, 8), (1, 2), (8, 8), batch=3).shape == (3, 6)
    with pytest.raises(ValueError, match="exactly one of target_size"):
        micro_conditioning((8, 8), (0, 0))
    with pytest.raises(ValueError, match="exactly one of target_size"):
        micro_conditioning((8, 8), (0, 0), (8, 8), aesthetic_score=6.0)
    with pytest.raises(ValueError, match="crop_top_left must hold finite values >= 0"):
        micro_conditioning((8, 8), (-1, 0), (8, 8))
    with pytest.raises(ValueError, match="original_size must hold finite values >= 1"):
        micro_conditioning((0, 8), (0, 0), (8, 8))
    with pytest.raises(TypeError, match="original_size must be a pair"):
        micro_conditioning((8, 8, 8), (0, 0), (8, 8))
    with pytest.raises(ValueError, match="shape"):
        micro_conditioning(torch.zeros(2, 3), (0, 0), (8, 8))
    with pytest.raises(ValueError, match="same number of rows"):
        micro_conditioning(torch.ones(2, 2), torch.zeros(3, 2), (8, 8))
    with pytest.raises(ValueError, match="same number of rows"):
        micro_conditioning(torch.ones(2, 2), (0, 0), (8, 8), batch=3)


def test_without_micro_conditioning_time_ids_do_not_matter():
    cfg = _unet_config(in_channels=1)
    torch.manual_seed(0)
    on, off = SDXLDenoiser(ConditionalUNet(cfg), _encoder()), None
    off = SDXLDenoiser(on.unet, on.encoder, micro_conditioning=False)
    x, t, tokens = torch.randn(2, 1, 8, 8), torch.tensor([5, 500]), class_prompt(torch.tensor([1, 2]), 10)
    small, large = (
        micro_conditioning((4, 4), (0, 0), (8, 8), batch=2),
        micro_conditioning((8, 8), (2, 2), (8, 8), batch=2),
    )
    with torch.no_grad():
        assert not torch.allclose(on(x, t, tokens, small), on(x, t, tokens, large))
        torch.testing.assert_close(off(x, t, tokens, small), off(x, t, tokens, large))


# -- Algorithm 1 and the buckets --------------------------------------------------------------------


def test_size_and_crop_follows_algorithm_1():
    g = torch.Generator().manual_seed(0)
    landscape = torch.arange(8 * 12, dtype=torch.float32).reshape(1, 8, 12)
    lefts = Counter()
    for _ in range(200):
        crop, c_size, (top, left) = size_and_crop(landscape, (8, 8), g)
        assert c_size == (8, 12) and top == 0 and crop.shape == (1, 8, 8)
        torch.testing.assert_close(crop, landscape[:, :, left : left + 8])
        lefts[left] += 1
    assert sorted(lefts) == [0, 1, 2, 3, 4]  # uniform over every admissible offset
    portrait = torch.randn(1, 32, 16)  # resized to 16×8 (the shorter side meets the target), crop on top
    crop, c_size, (top, left) = size_and_crop(portrait, (8, 8), g)
    assert c_size == (32, 16) and left == 0 and 0 <= top <= 8 and crop.shape == (1, 8, 8)
    small = torch.randn(1, 4, 4)  # upscaled, nothing to crop
    crop, c_size, c_crop = size_and_crop(small, (8, 8), g)
    assert c_size == (4, 4) and c_crop == (0, 0) and crop.shape == (1, 8, 8)
    with pytest.raises(ValueError, match="image must be a 3-D tensor"):
        size_and_crop(torch.randn(1, 1, 8, 8), (8, 8))
    with pytest.raises(TypeError, match="target_size must be a pair"):
        size_and_crop(small, 8)


def test_aspect_buckets_are_the_papers():
    buckets = aspect_buckets()
    assert len(PAPER_BUCKETS) == 40 and set(PAPER_BUCKETS) <= set(buckets)
    assert set(buckets) - set(PAPER_BUCKETS) == {(1344, 704)}  # our rule is symmetric
    assert buckets == sorted(buckets, key=lambda b: b[0] / b[1])
    assert all(0.9 * 1024**2 <= h * w <= 1024**2 and h % 64 == w % 64 == 0 for h, w in buckets)
    assert nearest_bucket(1080, 1920, buckets) == (768, 1344)
    assert nearest_bucket(5000, 100, buckets) == (2048, 512)
    assert aspect_buckets(64, multiple=8, max_ratio=2.0) == [(8, 8)]
    assert aspect_buckets(128, multiple=8, max_ratio=2.0, tolerance=0.2) == [(8, 16), (16, 8)]
    with pytest.raises(ValueError, match="no bucket"):
        aspect_buckets(100, multiple=64)
    with pytest.raises(ValueError, match="buckets must not be empty"):
        nearest_bucket(8, 8, [])


def test_bucket_batches_hold_one_bucket_and_every_image_once():
    buckets = [(8, 16), (12, 12), (16, 8)]
    sizes = [(10, 21), (30, 60), (9, 9), (40, 41), (20, 10), (33, 15), (50, 100), (7, 7)]
    sampler = BucketBatchSampler(sizes, buckets, batch_size=2, seed=3)
    seen = []
    for bucket, indices in sampler:
        assert all(sampler.assignment[i] == bucket for i in indices)
        seen += indices
    assert sorted(seen) == list(range(len(sizes)))
    assert sampler.batches(5) == BucketBatchSampler(sizes, buckets, 2, seed=3).batches(5)
    dropped = BucketBatchSampler(sizes, buckets, batch_size=2, drop_last=True)
    assert all(len(indices) == 2 for _, indices in dropped)


def test_bucketed_batches_train_a_multi_aspect_denoiser():
    """Batches of different shapes from one bucket each go through the same UNet; time_ids carry
    c_size, c_crop and the bucket as target size."""
    g = torch.Generator().manual_seed(0)
    images = [
        torch.rand(1, h, w) * 2 - 1 for h, w in [(10, 21), (30, 60), (20, 10), (33, 15), (9, 9), (40, 41)]
    ]
    buckets = [(8, 16), (8, 8), (16, 8)]
    sampler = BucketBatchSampler([im.shape[1:] for im in images], buckets, batch_size=2)
    torch.manual_seed(0)
    model = SDXLDenoiser(ConditionalUNet(_unet_config(in_channels=1)), _encoder())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    shapes = set()
    for bucket, indices in sampler:
        x, ids = bucketed_batch(images, indices, bucket, g)
        assert x.shape == (len(indices), 1, *bucket) and ids.shape == (len(indices), 6)
        assert ids[:, 4:].tolist() == [list(bucket)] * len(indices)
        assert ids[:, :2].tolist() == [list(images[i].shape[1:]) for i in indices]
        tokens = class_prompt(torch.zeros(len(indices), dtype=torch.long), 10)
        loss = model(x, torch.full((len(indices),), 10), tokens, ids).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        shapes.add(tuple(x.shape[2:]))
    assert shapes == set(buckets)


# -- the encoder pair -------------------------------------------------------------------------------


def test_encoder_pair_concatenates_penultimate_states_and_pools_the_second():
    torch.manual_seed(0)
    encoder = _encoder()
    tokens = class_prompt(torch.tensor([0, 9, 4]), 10)
    context, pooled = encoder(tokens)
    assert context.shape == (3, 3, 20) and pooled.shape == (3, 10)
    first, _ = encoder.first(tokens)
    second, second_pooled = encoder.second(tokens)
    torch.testing.assert_close(context, torch.cat([first, second], -1))
    torch.testing.assert_close(pooled, second_pooled)
    # Penultimate: the output of all blocks but the last (no final norm); pooled: the last token,
    # final-normed and projected.
    enc = encoder.second
    h = enc.token_embedding(tokens) + enc.position_embedding[:3]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(3)
    states = []
    for block in enc.blocks:
        h = block(h, src_mask=mask, is_causal=True)
        states.append(h)
    torch.testing.assert_close(second, states[-2])
    torch.testing.assert_close(second_pooled, enc.projection(enc.final_norm(states[-1])[:, -1]))
    # Causal: changing the last token leaves the earlier positions' states alone.
    changed = tokens.clone()
    changed[:, 2] = 0
    torch.testing.assert_close(encoder(changed)[0][:, :2], context[:, :2])


def test_encoders_and_denoiser_refuse_bad_input():
    encoder = _encoder()
    with pytest.raises(ValueError, match="tokens must lie in"):
        encoder(torch.tensor([[0, 12]]))
    with pytest.raises(ValueError, match="max_length=4"):
        encoder(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="tokens"):
        encoder(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="layers must be >= 2"):
        TokenEncoder(10, 8, layers=1)
    with pytest.raises(ValueError, match="multiple of heads"):
        TokenEncoder(10, 9, heads=2)
    with pytest.raises(TypeError, match="first must be a TokenEncoder"):
        DualTextEncoder(torch.nn.Linear(2, 2), encoder.second)
    with pytest.raises(ValueError, match="labels must lie in"):
        class_prompt(torch.tensor([10]), 10)
    with pytest.raises(ValueError, match="cross_attention_dim"):
        SDXLDenoiser(ConditionalUNet(_unet_config(context=24)), encoder)
    with pytest.raises(ValueError, match="addition_input_dim"):
        SDXLDenoiser(ConditionalUNet(_unet_config(pooled=12)), encoder)
    model = SDXLDenoiser(ConditionalUNet(_unet_config(in_channels=1)), encoder)
    x, tokens = torch.randn(2, 1, 8, 8), class_prompt(torch.tensor([1, 2]), 10)
    with pytest.raises(ValueError, match="time_ids must be a tensor of shape \\[2, 6\\]"):
        model(x, 3, tokens, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="one row per image"):
        model(x, 3, tokens[:1], torch.zeros(2, 6))


# -- the refiner (Section 2.5) ----------------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("steps,strength", [(50, 0.2), (30, 0.33), (10, 1.0), (25, 0.5)])
def test_sdedit_steps_follow_diffusers_img2img_strength(steps, strength):
    diffusers = pytest.importorskip("diffusers")
    pipelines = pytest.importorskip("diffusers.pipelines.stable_diffusion_xl")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    fake = SimpleNamespace(scheduler=scheduler)
    theirs, count = pipelines.StableDiffusionXLImg2ImgPipeline.get_timesteps(fake, steps, strength, "cpu")
    schedule = sorted(int(t) for t in scheduler.timesteps)
    ours = sdedit_timesteps(schedule, strength)
    assert ours == sorted(int(t) for t in theirs) and len(ours) == count


def test_refine_noises_to_the_strength_and_calls_the_model_once_per_kept_step():
    diffusion = GaussianDiffusion(make_betas("cosine", 1000))
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    noise = torch.randn(3, 1, 8, 8)
    calls: list[tuple[list[int], torch.Tensor]] = []

    def model(x_t, t):
        calls.append((t.tolist(), x_t.clone()))
        return torch.zeros_like(x_t)

    out = refine(model, diffusion, x, 0.2, 50, noise=noise, generator=torch.Generator().manual_seed(0))
    kept = space_timesteps(1000, 50)[:10]
    assert len(calls) == 10 and [c[0][0] for c in calls] == kept[::-1]
    assert kept[-1] <= 0.2 * 1000  # noised to t = s·T (the highest kept step)
    start = diffusion.q_sample(x, torch.full((3,), kept[-1]), noise)
    torch.testing.assert_close(calls[0][1], start)
    assert out.shape == x.shape and torch.isfinite(out).all()
    calls.clear()
    refine(model, diffusion, x, 0.5, [0, 100, 200, 300], method="ddim")
    assert [c[0][0] for c in calls] == [100, 0]


def test_refine_and_sdedit_refuse_bad_input():
    diffusion = GaussianDiffusion(make_betas("cosine", 100))
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="strictly increasing"):
        sdedit_timesteps([0, 50, 20], 0.5)
    with pytest.raises(ValueError, match="strength must be in \\(0.0, 1.0\\]"):
        sdedit_timesteps([0, 10], 0.0)
    with pytest.raises(ValueError, match="strength must be"):
        sdedit_timesteps([0, 10], float("nan"))
    with pytest.raises(ValueError, match="keeps none"):
        sdedit_timesteps([0, 10, 20], 0.2)
    with pytest.raises(TypeError, match="diffusion must be a GaussianDiffusion"):
        refine(lambda x, t: x, None, x, 0.5)
    with pytest.raises(ValueError, match="timesteps must lie in"):
        refine(lambda x, t: x, diffusion, x, 1.0, [0, 50, 150])
