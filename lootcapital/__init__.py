"""LootCapital: the CLI, settings and the composition root."""
