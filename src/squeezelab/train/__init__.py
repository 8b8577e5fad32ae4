"""Training: the loop, LR schedules, checkpoints and multi-process (DDP) support."""
