"""One module per paper (slug with hyphens as underscores): Config, run(cfg) -> Result, CLAIMS."""
