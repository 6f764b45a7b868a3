"""Benchmark: a DPO training step, ours (aicanon.align.dpo on our Llama) against trl's DPOTrainer on
transformers' LlamaForCausalLM, same weights and the same preference batch, one process.

One step is: the policy's and the frozen reference's log-probabilities of the chosen and rejected
completions (one concatenated forward pass each), Eq. 7, backward, and an AdamW step. trl's side runs
``DPOTrainer.compute_loss`` (its fused log-probability head, its metrics) on the batch its own collator
built, then ``backward`` and the same AdamW; ours runs ``sequence_logprobs`` / ``dpo_loss``. The policy
is perturbed away from the reference first and the two losses are checked equal. The two run
alternately, repeat after repeat; the median step time and the ratio ours / trl's are printed (below 1:
ours is faster).

    python benchmarks/bench_dpo.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-small]

(also ``aicanon bench dpo``).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import warnings

import _timing
import torch

from aicanon.align.dpo import collate_preferences, dpo_loss, sequence_logprobs
from aicanon.language.llama import Llama
from aicanon.language.llama_weights import config_from_transformers, from_transformers


def _tokenizer(vocab_size: int):
    """A word-level tokenizer whose words are token ids ("t7" -> 7): trl then sees exactly our ids."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<pad>", "<s>", "</s>"] + [f"t{i}" for i in range(3, vocab_size)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def compare(
    name: str,
    hidden: int,
    layers: int,
    heads: int,
    vocab: int,
    pairs: int,
    prompt_length: int,
    completion_length: int,
    device: torch.device,
    repeats: int,
) -> None:
    import datasets
    import transformers
    import trl

    generator = torch.Generator().manual_seed(0)

    def draw(low: int, high: int) -> list[int]:
        length = int(torch.randint(low, high + 1, (1,), generator=generator))
        return torch.randint(3, vocab, (length,), generator=generator).tolist()

    triples = [
        (
            draw(prompt_length // 2, prompt_length),
            draw(completion_length // 2, completion_length),
            draw(completion_length // 2, completion_length),
        )
        for _ in range(pairs)
    ]
    text = lambda ids: " ".join(f"t{i}" for i in ids)
    data = datasets.Dataset.from_dict(
        {
            "prompt": [text(p) + " " for p, _, _ in triples],
            "chosen": [text(c) for _, c, _ in triples],
            "rejected": [text(r) for _, _, r in triples],
        }
    )
    hf_cfg = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=int(hidden * 8 / 3),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=512,
        attn_implementation="sdpa",
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    hf_policy = transformers.LlamaForCausalLM(hf_cfg)
    hf_reference = copy.deepcopy(hf_policy)
    with torch.no_grad():  # a policy away from the reference, so the loss is not ln 2
        for p in hf_policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    with tempfile.TemporaryDirectory() as folder:
        args = trl.DPOConfig(
            output_dir=folder,
            per_device_train_batch_size=pairs,
            beta=0.1,
            report_to="none",
            bf16=False,
            gradient_checkpointing=False,
            use_cpu=device.type == "cpu",
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = trl.DPOTrainer(
            model=hf_policy,
            ref_model=hf_reference,
            args=args,
            train_dataset=data,
            processing_class=_tokenizer(vocab),
        )
    cfg = config_from_transformers(hf_cfg)
    ours, ours_reference = Llama(cfg), Llama(cfg)
    ours.load_state_dict(from_transformers(hf_policy.state_dict(), cfg))
    ours_reference.load_state_dict(from_transformers(hf_reference.state_dict(), cfg))
    ours.to(device).train()
    ours_reference.to(device).eval()
    hf_policy.to(device).train()
    trainer.ref_model.to(device).eval()

    rows = [trainer.train_dataset[i] for i in range(pairs)]
    hf_inputs = {k: v.to(device) for k, v in trainer.data_collator(rows).items()}
    ours_triples = [
        (r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in rows
    ]  # EOS appended by trl
    batch = collate_preferences(*zip(*ours_triples, strict=True)).to(device)
    optimizers = {
        "ours": torch.optim.AdamW(ours.parameters(), lr=0.0),  # lr 0: every repeat sees the same weights
        "trl": torch.optim.AdamW(hf_policy.parameters(), lr=0.0),
    }

    def ours_step():
        optimizers["ours"].zero_grad(set_to_none=False)
        logps = sequence_logprobs(ours, batch.input_ids, batch.attention_mask, batch.loss_mask)
        with torch.no_grad():
            ref = sequence_logprobs(ours_reference, batch.input_ids, batch.attention_mask, batch.loss_mask)
        loss, _, _ = dpo_loss(logps[:pairs], logps[pairs:], ref[:pairs], ref[pairs:], beta=0.1)
        loss.backward()
        optimizers["ours"].step()
        return float(loss)

    def trl_step():
        optimizers["trl"].zero_grad(set_to_none=False)
        loss = trainer.compute_loss(hf_policy, hf_inputs)
        loss.backward()
        optimizers["trl"].step()
        return float(loss)

    ours_loss, trl_loss = ours_step(), trl_step()
    difference = abs(ours_loss - trl_loss)
    timings = _timing.time_alternately({"ours": ours_step, "trl": trl_step}, repeats, device, warmup=2)
    _timing.print_comparison(
        name, timings, "median", ours="ours", note=f"loss {ours_loss:.4f}, |diff| {difference:.1e}", width=48
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-small", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    _timing.print_setup(args, "median", "DPO step (policy + reference forward, Eq. 7, backward, AdamW)")
    compare(
        "tiny (2 x 64, vocab 64), 16 pairs, <= 16 + 48 tokens",
        64,
        2,
        4,
        64,
        16,
        16,
        48,
        args.device,
        args.repeats,
    )
    if not args.skip_small:
        compare(
            "small (4 x 256, vocab 512), 8 pairs, <= 32 + 96 tokens",
            256,
            4,
            4,
            512,
            8,
            32,
            96,
            args.device,
            max(3, args.repeats // 4),
        )


if __name__ == "__main__":
    main()
