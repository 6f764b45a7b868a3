"""Learning across tasks: meta-learning (MAML), continual learning (EWC, GEM) and multi-task learning.

The continual-learning methods share one task-stream abstraction (:mod:`aicanon.learning.streams`)
and one set of metrics (:mod:`aicanon.learning.metrics`), so they compare on the same streams.
"""
