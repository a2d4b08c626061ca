"""bench: the engine of the long-tail contrastive-learning benchmark (config, trainer, evaluation,
records, leaderboard, CLI). Run it from the repository root: ``python -m bench --help``."""
