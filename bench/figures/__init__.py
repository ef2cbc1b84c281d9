"""One module per figure; each exposes ``run(ctx) -> dict`` and never asserts a number."""
