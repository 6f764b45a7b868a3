"""Benchmark: a reward-model training step, ours (RewardModel + pairwise_loss) against trl's RewardTrainer
on transformers' LlamaForSequenceClassification.

Same weights (converted), same right-padded batch of chosen/rejected token rows (trl's collator), same
Llama 2 margins; one step is forward, the pairwise loss (Eq. 1 / Eq. 2), backward and an AdamW step.
trl's step is its ``compute_loss`` (which also logs its reward metrics) and the same optimiser calls,
not the whole ``Trainer.training_step``, so both sides time the same work. Prints ours / trl's median
step time (ratio below 1: ours faster) and the largest loss difference. The two run alternately.

    python benchmarks/bench_instructgpt.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench instructgpt``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings

import _timing
import torch

from aicanon.align.reward_model import RewardModel, from_sequence_classification, pairwise_loss
from aicanon.language.llama import Llama
from aicanon.language.llama_weights import config_from_transformers


def compare(
    name: str, hidden: int, layers: int, heads: int, pairs: int, length: int, device, repeats: int
) -> None:
    import datasets
    import transformers
    import trl
    from tokenizers import Tokenizer, models

    vocab_size = 512
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t1")),
        pad_token="t0",
        unk_token="t1",
        eos_token="t2",
    )
    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=int(hidden * 8 / 3),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=max(256, length),
        num_labels=1,
        pad_token_id=0,
        attn_implementation="sdpa",
    )
    reference = transformers.LlamaForSequenceClassification(hf_cfg)
    ours = RewardModel(Llama(config_from_transformers(hf_cfg)))
    ours.load_state_dict(from_sequence_classification(reference.state_dict()), strict=False)
    g = torch.Generator().manual_seed(1)
    rows = []
    for i in range(pairs):  # lengths vary, so the batch is really padded
        n_c, n_r = (int(torch.randint(length // 2, length + 1, (1,), generator=g)) for _ in range(2))
        rows.append(
            {
                "chosen_ids": torch.randint(3, vocab_size, (n_c,), generator=g).tolist(),
                "rejected_ids": torch.randint(3, vocab_size, (n_r,), generator=g).tolist(),
                "margin": float(i % 4),
            }
        )
    dataset = datasets.Dataset.from_list(rows)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = trl.RewardConfig(
        output_dir=tempfile.mkdtemp(),
        report_to="none",
        use_cpu=device.type == "cpu",
        per_device_train_batch_size=pairs,
        disable_dropout=True,
    )
    trainer = trl.RewardTrainer(model=reference, args=args, train_dataset=dataset, processing_class=tokenizer)
    batch = {k: v.to(device) for k, v in trainer.data_collator(rows).items()}
    reference.to(device).train()
    ours.to(device).train()
    optimizers = {
        "ours": torch.optim.AdamW(ours.parameters(), lr=1e-5),
        "trl": torch.optim.AdamW(reference.parameters(), lr=1e-5),
    }

    def ours_loss():
        r_c, r_r = ours(batch["input_ids"], batch["attention_mask"]).chunk(2)
        return pairwise_loss(r_c, r_r, batch["margin"])

    def trl_loss():
        return trainer.compute_loss(reference, dict(batch))

    with torch.no_grad():
        difference = abs(float(ours_loss()) - float(trl_loss()))

    def step(loss_of, optimizer):
        optimizer.zero_grad(set_to_none=False)
        loss_of().backward()
        optimizer.step()

    timings = _timing.time_alternately(
        {
            "ours": lambda: step(ours_loss, optimizers["ours"]),
            "trl": lambda: step(trl_loss, optimizers["trl"]),
        },
        repeats,
        device,
        warmup=3,
    )
    _timing.print_comparison(
        name, timings, "median", ours="ours", note=f"|loss diff| {difference:.1e}", width=44
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-small", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(
        args, "median", "reward-model training step (forward, pairwise loss, backward, AdamW)"
    )
    compare("tiny (2 x 64, 4 heads), 16 pairs x <=64 tokens", 64, 2, 4, 16, 64, args.device, args.repeats)
    if not args.skip_small:
        compare(
            "small (4 x 256, 4 heads), 16 pairs x <=128 tokens",
            256,
            4,
            4,
            16,
            128,
            args.device,
            max(3, args.repeats // 4),
        )


if __name__ == "__main__":
    main()
