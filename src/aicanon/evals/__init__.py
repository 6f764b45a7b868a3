"""Evaluation harnesses: benchmarks scored exactly as their papers define them, over the
:class:`~aicanon.language.completion.LanguageModel` protocol (any backend), with per-subject tables,
confidence intervals (:mod:`.intervals`), the prompts used and the raw model outputs kept."""
