"""Training: one trial (semi-supervised, resumable, reproducible), checkpoints and prediction."""
