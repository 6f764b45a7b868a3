"""Language models: the transformer stack (Llama 2/3), its positional and sparse variants, training."""
