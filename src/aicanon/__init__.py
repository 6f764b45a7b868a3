"""aicanon: the 100 most-cited AI papers since 2015 as importable, tested, reproducible PyTorch code."""

__version__ = "0.1.0"
