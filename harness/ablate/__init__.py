"""`ascbench ablate`: every (variant, seed) of a small YAML grid as one engine trial, paired by seed."""
