"""ascbench harness: data, training, tuning, ablation and the command line."""
