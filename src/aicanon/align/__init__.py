"""Adapting and aligning language models: LoRA, SFT, reward models, DPO."""
