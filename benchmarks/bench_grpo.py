"""Benchmark: a GRPO step, ours (aicanon.align.grpo on our Llama) against trl's GRPOTrainer on
transformers' LlamaForCausalLM, same weights, same prompts, one process.

One step is: G sampled completions per prompt (KV-cache generation at temperature 1), rewards and
group-normalised advantages, the reference model's log-probabilities, the GRPO loss (Eq. 3 with the
KL of Eq. 4), backward and an AdamW step. trl's side runs ``_generate_and_score_completions`` (its
transformers ``generate`` path, no vLLM) on the rows of its dataset, then ``compute_loss``, backward
and AdamW; ours runs ``GRPO.step``. No end-of-sequence token can be sampled on either side (its logit
is pushed to -inf), so both always generate the full ``max_new_tokens``: the same work. The two run
alternately, repeat after repeat; the median step time and the ratio ours / trl's are printed (below
1: ours is faster). Learning rate 0, so every repeat sees the same weights.

    python benchmarks/bench_grpo.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench deepseekmath-grpo``).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import warnings

import _timing
import torch

from aicanon.align.grpo import GRPO, GRPOConfig
from aicanon.language.llama import Llama
from aicanon.language.llama_weights import config_from_transformers, from_transformers


class _WordTokenizer:
    """Our side's view of the word-level vocabulary ("t7" <-> 7)."""

    def encode(self, text: str) -> list[int]:
        return [int(w[1:]) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"t{i}" for i in ids)


def _hf_tokenizer(vocab_size: int):
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = ["<pad>", "<s>", "</s>"] + [f"t{i}" for i in range(3, vocab_size)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def _reward(prompts, completions, **kwargs) -> list[float]:
    return [float(c.split().count("t5")) for c in completions]


def compare(
    name: str,
    hidden: int,
    layers: int,
    heads: int,
    vocab: int,
    prompts: int,
    group: int,
    prompt_length: int,
    new_tokens: int,
    device: torch.device,
    repeats: int,
) -> None:
    import datasets
    import transformers
    import trl

    generator = torch.Generator().manual_seed(0)
    texts = [
        " ".join(f"t{i}" for i in torch.randint(3, vocab, (prompt_length,), generator=generator).tolist())
        for _ in range(prompts)
    ]
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
    # No EOS can be sampled: every completion is new_tokens long on both sides.
    bias = torch.zeros(vocab)
    bias[2] = -1e4
    with tempfile.TemporaryDirectory() as folder:
        # trl builds its reference model from the policy's path (beta > 0): give it a saved folder.
        hf_policy.save_pretrained(folder)
        args = trl.GRPOConfig(
            output_dir=folder,
            per_device_train_batch_size=prompts * group,
            num_generations=group,
            max_completion_length=new_tokens,
            temperature=1.0,
            beta=0.04,
            loss_type="grpo",  # trl's default is "dapo"; Eq. 3's per-sequence 1/|o_i| is "grpo"
            learning_rate=0.0,
            report_to="none",
            bf16=False,
            use_cpu=device.type == "cpu",
            save_strategy="no",
            disable_tqdm=True,
            logging_steps=10**9,
        )
        trainer = trl.GRPOTrainer(
            model=folder,
            reward_funcs=_reward,
            args=args,
            train_dataset=datasets.Dataset.from_dict({"prompt": texts}),
            processing_class=_hf_tokenizer(vocab),
        )
    hf_policy = trainer.model
    trainer.current_gradient_accumulation_steps = 1  # set by trl's training loop, which we bypass
    for model in (hf_policy, trainer.ref_model):
        model.lm_head.register_forward_hook(lambda m, i, out: out + bias.to(out.device))
    cfg = config_from_transformers(hf_cfg)
    ours = Llama(cfg)
    ours.load_state_dict(from_transformers(hf_policy.state_dict(), cfg))
    ours.lm_head.register_forward_hook(lambda m, i, out: out + bias.to(out.device))
    ours.to(device)
    grpo = GRPO(
        ours,
        _WordTokenizer(),
        lambda p, c: _reward(p, c),
        GRPOConfig(group_size=group, beta=0.04, lr=1e-12, max_new_tokens=new_tokens, max_grad_norm=None),
        reference=copy.deepcopy(ours),
        eos_token_id=2,
    )
    hf_policy.to(device).train()
    optimizer = torch.optim.AdamW(hf_policy.parameters(), lr=0.0)
    rows = [{"prompt": t} for t in texts for _ in range(group)]

    def ours_step():
        return grpo.step(texts)["loss"]

    def trl_step():
        inputs = trainer._generate_and_score_completions(rows)
        optimizer.zero_grad(set_to_none=False)
        loss = trainer.compute_loss(hf_policy, inputs)
        loss.backward()
        optimizer.step()
        return float(loss)

    ours_step(), trl_step()
    timings = _timing.time_alternately({"ours": ours_step, "trl": trl_step}, repeats, device, warmup=1)
    _timing.print_comparison(name, timings, "median", ours="ours", width=48)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=5)
    warnings.filterwarnings("ignore")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    _timing.print_setup(
        args, "median", "GRPO step (sample G, reward, reference, Eq. 3 + Eq. 4, backward, AdamW)"
    )
    compare(
        "tiny (2 x 64, vocab 64), 4 prompts x G 8, 16 + 32 tokens",
        64,
        2,
        4,
        64,
        4,
        8,
        16,
        32,
        args.device,
        args.repeats,
    )


if __name__ == "__main__":
    main()
