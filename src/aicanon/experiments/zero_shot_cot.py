"""Zero-shot chain of thought on held-out arithmetic word problems (Kojima et al. 2022, Table 1 and
Table 4).

The paper's claim: appending "Let's think step by step." after ``A:`` and reading the answer out in
a second prompt makes a large model reason without any exemplar (text-davinci-002 on MultiArith:
17.7 % Zero-shot, 78.7 % Zero-shot-CoT; GSM8K: 10.4 % and 40.7 %), and the gain comes from
*instructive* triggers: misleading or irrelevant ones ("Don't think. Just feel.", "Abrakadabra!")
stay near Zero-shot (Table 4).

Ours, per seed:

1. Load the cached arithmetic testbed model (:mod:`aicanon.testbeds.arithmetic_lm`: a 0.1M-parameter
   Llama pre-trained on word problems, 15 % of them written "Let's think step by step." + rationale;
   never retrained here).
2. Draw ``problems`` held-out problems (questions never seen in pre-training) from the seed.
3. **Zero-shot** (direct): ``"Q: <q>\\nA: <direct trigger>"``, greedy, first number (the paper's
   answer cleansing for arithmetic).
4. **Zero-shot-CoT** with each trigger of ``triggers`` (Table 4's templates; ``""`` is no trigger):
   stage 1 generates the rationale, stage 2 appends the answer trigger and reads the first number.
5. ``gain_over_zero_shot``: the accuracy of the claimed ``trigger`` minus Zero-shot's, in points
   (95 % Wilson intervals of every accuracy in the details). The ablation sets ``trigger`` to a
   misleading or irrelevant template: the claim must then fail.

The answer trigger, honestly: our model cannot follow the paper's arithmetic triggers. It never saw
"Therefore, the answer (arabic numerals) is" nor "The answer (arabic numerals) is" and continues
both with film-review text (its English pre-training data), so the paper's protocol scores about 0 %
for both arms (reported as ``*_paper_trigger_accuracy``). The claims use the answer phrase the model
was trained on, "The answer is" (``answer_trigger``), for both arms: Zero-shot asks ``"A: The answer
is"``, and Zero-shot-CoT stops stage 1 where the model itself starts "The answer is" and appends
that phrase as the stage-2 trigger (Eq. 2 unchanged). The paper's answer trigger runs on the same
rationales in the same run.

A caveat the paper's setting does not have: half of our model's pre-training problems are written
with a rationale and no trigger, so with no trigger at all (``"A:"``) it already reasons (reported as
``no_trigger_accuracy``); the paper's Zero-shot baseline is the direct answer trigger, which is what
``gain_over_zero_shot`` compares against.

Full scale (written, smoke-tested with tiny overrides): all 16 templates of Table 4 plus no trigger,
the paper's token budgets (128 for stage 1, 32 for stage 2), 500 problems per seed, 5 seeds:
17 x 2 stages x 500 prompts, about 10 min per seed on two CPU cores, a minute on a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed
from aicanon.core.checks import check_int
from aicanon.evals.intervals import wilson_interval
from aicanon.reasoning.answers import normalize_number
from aicanon.reasoning.zero_shot_cot import (
    ANSWER_TRIGGERS,
    REASONING_TRIGGER,
    TEMPLATES,
    ZeroShotOutput,
    answer_prompt,
    clean_answer,
    direct_answer_trigger,
    zero_shot,
    zero_shot_cot,
)
from aicanon.testbeds.arithmetic_lm import (
    ANSWER_PREFIX,
    ArithmeticLMConfig,
    arithmetic_language_model,
    arithmetic_problems,
    cache_folder,
)

_CATEGORY = {t.trigger: t.category for t in TEMPLATES} | {"": "none"}
_PAPER = {t.trigger: t.paper_accuracy for t in TEMPLATES}
_STOP = ("\n\n", "\nQ:")


@dataclass
class Config(ExperimentConfig):
    cache: str | None = None
    """Folder of the pre-trained testbed model (None: the project's results/_cache)."""
    problems: int = 60
    """Held-out test problems per seed."""
    min_steps: int = 2
    max_steps: int = 3
    """Steps of the test problems (multi-step, as MultiArith's)."""
    trigger: str = REASONING_TRIGGER
    """The reasoning trigger whose gain over Zero-shot is claimed; the ablations set a misleading or
    irrelevant template of Table 4."""
    triggers: tuple[str, ...] = (
        "Let's think step by step.",
        "Let's think about this logically.",
        "First,",
        "Don't think. Just feel.",
        "Abrakadabra!",
        "",
    )
    """Table 4's templates to evaluate (``""``: no trigger); ``trigger`` is added when missing."""
    answer_trigger: str = ANSWER_PREFIX
    """Answer phrase of both claimed arms (module docstring: the paper's ones are reported too)."""
    max_reasoning_tokens: int = 60
    """Stage-1 tokens (the paper: 128; a 3-step rationale of ours is about 45 tokens)."""
    max_answer_tokens: int = 8
    """Stage-2 and Zero-shot tokens (the paper: 32; our answers are 2-4 tokens)."""
    model_size: str = "small"
    """Testbed model size (only ``small`` is calibrated and cached)."""

    def __post_init__(self) -> None:
        for name in ("problems", "min_steps", "max_reasoning_tokens", "max_answer_tokens"):
            check_int(name, getattr(self, name))
        check_int("max_steps", self.max_steps, self.min_steps)
        if not isinstance(self.trigger, str) or not isinstance(self.answer_trigger, str):
            raise TypeError("trigger and answer_trigger must be str")
        if not self.answer_trigger.strip():
            raise ValueError(f"answer_trigger must be a non-empty string, got {self.answer_trigger!r}")
        if not isinstance(self.triggers, tuple) or not all(isinstance(t, str) for t in self.triggers):
            raise ValueError(f"triggers must be a tuple of str, got {self.triggers!r}")
        if len(set(self.triggers)) != len(self.triggers):
            raise ValueError(f"triggers must be distinct, got {self.triggers!r}")
        ArithmeticLMConfig(size=self.model_size)  # validates the size

    @classmethod
    def quick(cls) -> Config:
        # 2 seeds x 60 held-out 2-3 step problems, six triggers (each category of Table 4, no trigger);
        # one torch thread: a 0.1M-parameter model decodes faster on one thread of a busy machine.
        return cls(scale="quick", seeds=2, threads=1)

    @classmethod
    def full(cls) -> Config:
        # Every template of Table 4 and the paper's token budgets.
        return cls(
            scale="full",
            seeds=5,
            problems=500,
            triggers=tuple(t.trigger for t in TEMPLATES) + ("",),
            max_reasoning_tokens=128,
            max_answer_tokens=32,
        )


# Quick thresholds from our runs (2 seeds of 60 problems, small model): "Let's think step by step."
# scores about 70 % and Zero-shot ("A: The answer is") about 5-10 %, a gain of about 60 points; 40
# points leave room for seed noise (the Wilson half-width at n = 60 is about 12 points), while the
# misleading and irrelevant triggers score about 0-5 % and fail it.
CLAIMS = [
    Claim(
        metric="gain_over_zero_shot",
        description="Zero-shot-CoT ('Let's think step by step.') minus Zero-shot accuracy, held-out 2-3 step "
        "problems",
        paper=61.0,
        source="Table 1 / abstract: text-davinci-002 on MultiArith, 17.7 % Zero-shot vs 78.7 % Zero-shot-CoT",
        quick=40.0,
        full=40.0,
        unit="points",
    ),
    Claim(
        metric="instructive_minus_best_other",
        description="'Let's think step by step.' minus the best misleading or irrelevant trigger "
        "(Table 4's form)",
        paper=59.9,
        source="Table 4: 78.7 % vs 18.8 % ('Don't think. Just feel.') (unverified)",
        quick=40.0,
        full=40.0,
        unit="points",
    ),
    Claim(
        metric="zero_shot_cot_accuracy",
        description="Zero-shot-CoT accuracy (answer trigger 'The answer is')",
        paper=78.7,
        source="Table 1: MultiArith, text-davinci-002",
        unit="%",
    ),
    Claim(
        metric="zero_shot_accuracy",
        description="Zero-shot (direct) accuracy (answer trigger 'The answer is')",
        paper=17.7,
        source="Table 1: MultiArith, text-davinci-002",
        unit="%",
    ),
    Claim(
        metric="zero_shot_cot_paper_trigger_accuracy",
        description="Zero-shot-CoT with the paper's answer trigger "
        "'Therefore, the answer (arabic numerals) is'",
        paper=78.7,
        source="Table 1: MultiArith, text-davinci-002 (our model cannot follow this trigger)",
        unit="%",
    ),
    Claim(
        metric="no_trigger_accuracy",
        description="stage 1 with no trigger at all ('A:'): our model reasons by default",
        paper=None,
        source="not in the paper",
        unit="%",
    ),
]


def _score(outputs: list[ZeroShotOutput], references: list[str]) -> dict:
    correct = sum(
        o.answer is not None and normalize_number(o.answer) == r
        for o, r in zip(outputs, references, strict=True)
    )
    interval = wilson_interval(correct, len(references))
    return {
        "accuracy": 100 * correct / len(references),
        "correct": correct,
        "wilson_95": [100 * interval.low, 100 * interval.high],
        "examples": [
            {"prompt": o.answer_prompt, "answer_text": o.answer_text, "answer": o.answer, "reference": r}
            for o, r in list(zip(outputs, references, strict=True))[:2]
        ],
    }


def _figure(table: dict[str, dict], zero_shot_accuracy: float) -> Figure:
    figure = Figure(figsize=(9, 4), layout="constrained")
    axis = figure.subplots()
    colours = {
        "instructive": "tab:green",
        "misleading": "tab:red",
        "irrelevant": "tab:grey",
        "none": "tab:blue",
    }
    names = list(table)
    for i, name in enumerate(names):
        row = table[name]
        low, high = row["wilson_95"]
        axis.bar(
            i,
            row["accuracy"],
            yerr=[[row["accuracy"] - low], [high - row["accuracy"]]],
            capsize=3,
            color=colours[row["category"]],
            label=row["category"],
        )
    axis.axhline(zero_shot_accuracy, color="black", linestyle="--", label="Zero-shot (direct)")
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axis.legend(unique.values(), unique.keys(), fontsize=8)
    axis.set_xticks(range(len(names)), [n or "(none)" for n in names], rotation=25, ha="right", fontsize=7)
    axis.set(
        ylabel="accuracy (%)", ylim=(0, 100), title="Zero-shot-CoT by trigger (Table 4's form, 95 % Wilson)"
    )
    return figure


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    started = time.perf_counter()
    model = arithmetic_language_model(
        ArithmeticLMConfig(size=cfg.model_size), cache=cache_folder(cfg.cache), seed=cfg.seed
    )
    problems = arithmetic_problems(
        cfg.problems, split="test", seed=cfg.seed, min_steps=cfg.min_steps, max_steps=cfg.max_steps
    )
    questions = [p.question for p in problems]
    references = [str(p.answer) for p in problems]
    common = {"dataset": "multiarith", "stop": _STOP}

    # Zero-shot (direct), with our model's answer phrase and with the paper's.
    direct = _score(
        zero_shot(
            model,
            questions,
            answer_trigger=cfg.answer_trigger,
            max_answer_tokens=cfg.max_answer_tokens,
            **common,
        ),
        references,
    )
    direct_paper = _score(
        zero_shot(model, questions, max_answer_tokens=cfg.max_answer_tokens, **common), references
    )

    # Zero-shot-CoT with each trigger (Table 4): stage 1 stops where the model starts its own answer.
    triggers = cfg.triggers if cfg.trigger in cfg.triggers else (cfg.trigger, *cfg.triggers)
    table: dict[str, dict] = {}
    claimed_outputs: list[ZeroShotOutput] = []
    for trigger in triggers:
        outputs = zero_shot_cot(
            model,
            questions,
            trigger=trigger,
            answer_trigger=cfg.answer_trigger,
            max_reasoning_tokens=cfg.max_reasoning_tokens,
            max_answer_tokens=cfg.max_answer_tokens,
            reasoning_stop=(cfg.answer_trigger,),
            **common,
        )
        table[trigger] = _score(outputs, references) | {
            "category": _CATEGORY.get(trigger, "custom"),
            "paper_accuracy": _PAPER.get(trigger),
        }
        if trigger == cfg.trigger:
            claimed_outputs = outputs

    # The paper's answer trigger (Eq. 2 as published) on the claimed trigger's rationales.
    paper_trigger = ANSWER_TRIGGERS["multiarith"]
    second = [answer_prompt(o.reasoning_prompt, o.rationale, paper_trigger) for o in claimed_outputs]
    texts = [c[0].text for c in model.complete(second, max_tokens=cfg.max_answer_tokens, stop=list(_STOP))]
    cot_paper = _score(
        [
            ZeroShotOutput(o.reasoning_prompt, o.rationale, s, t, clean_answer(t, "multiarith"))
            for o, s, t in zip(claimed_outputs, second, texts, strict=True)
        ],
        references,
    )

    others = [row["accuracy"] for row in table.values() if row["category"] in ("misleading", "irrelevant")]
    metrics = {
        "zero_shot_accuracy": direct["accuracy"],
        "zero_shot_cot_accuracy": table[cfg.trigger]["accuracy"],
        "gain_over_zero_shot": table[cfg.trigger]["accuracy"] - direct["accuracy"],
        "zero_shot_paper_trigger_accuracy": direct_paper["accuracy"],
        "zero_shot_cot_paper_trigger_accuracy": cot_paper["accuracy"],
    }
    if others:
        metrics["instructive_minus_best_other"] = table[cfg.trigger]["accuracy"] - max(others)
    if "" in table:
        metrics["no_trigger_accuracy"] = table[""]["accuracy"]
    for category in ("instructive", "misleading", "irrelevant"):
        rows = [row["accuracy"] for row in table.values() if row["category"] == category]
        if rows:
            metrics[f"{category}_mean_accuracy"] = sum(rows) / len(rows)

    notes = [
        "Held-out arithmetic word problems of the testbed (0.1M-parameter model), not MultiArith/GSM8K: "
        "the paper's numbers come from text-davinci-002 (175B) and PaLM 540B.",
        f"Both claimed arms use the answer phrase {cfg.answer_trigger!r}: our model cannot follow the "
        f"paper's {paper_trigger.strip()!r} (Zero-shot-CoT with it: {cot_paper['accuracy']:.1f} %; "
        f"Zero-shot with {direct_answer_trigger('multiarith')!r}: {direct_paper['accuracy']:.1f} %).",
        f"Stage 1 stops where the model writes {cfg.answer_trigger!r}; token budgets "
        f"{cfg.max_reasoning_tokens}/{cfg.max_answer_tokens} (the paper: 128/32).",
    ]
    if "" in table:
        notes.append(
            f"With no trigger at all our model already reasons ({table['']['accuracy']:.1f} %): half its "
            "pre-training problems carry an untriggered rationale."
        )
    if cfg.trigger != REASONING_TRIGGER:
        notes.append(f"Ablation: the claimed trigger is {cfg.trigger!r}, not {REASONING_TRIGGER!r}.")
    details = {
        "trigger_table": table,
        "zero_shot": direct,
        "zero_shot_paper_trigger": direct_paper,
        "zero_shot_cot_paper_trigger": cot_paper,
        "seconds": time.perf_counter() - started,
    }
    return Result(
        metrics=metrics,
        figures={"trigger_table": _figure(table, direct["accuracy"])},
        details=details,
        notes=notes,
    )
