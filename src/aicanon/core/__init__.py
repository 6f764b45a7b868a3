"""Framework shared by every paper: experiment protocol, results, data, seeding, checkpoints."""

from aicanon.core.checkpoint import (
    CheckpointMismatch,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from aicanon.core.data import DataUnavailable, fetch
from aicanon.core.device import autocast, select_device
from aicanon.core.experiment import Claim, ExperimentConfig, Reproduction, Result, reproduce
from aicanon.core.progress import track
from aicanon.core.seeding import seed, torch_threads
from aicanon.core.state_dict import load_state_dict_strict

__all__ = [
    "CheckpointMismatch",
    "Claim",
    "DataUnavailable",
    "ExperimentConfig",
    "Reproduction",
    "Result",
    "autocast",
    "fetch",
    "load_checkpoint",
    "load_state_dict_strict",
    "reproduce",
    "rng_state",
    "save_checkpoint",
    "seed",
    "select_device",
    "set_rng_state",
    "torch_threads",
    "track",
]
