"""The one experiment engine behind `ascbench tune`, the confirmation of tune winners and `ascbench ablate`.

ray_env quiets Ray, tuner builds every Tuner (search or fixed runs) around the one trainable,
progress prints a line per ended trial, outcome is the failure/interrupt policy, store holds
the per-trial records read back through Ray's result API, pruning adapts Optuna's searcher.
"""
