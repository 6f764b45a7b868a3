"""Reasoning with language models: prompting and search methods as programs over the
:class:`~aicanon.language.completion.LanguageModel` protocol (any backend: HTTP, transformers, ours),
and the answer extraction and voting they share (:mod:`.answers`)."""
