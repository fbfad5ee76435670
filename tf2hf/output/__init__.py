"""Everything written into an output folder: staging, weights, config, tokenizer, model card."""
