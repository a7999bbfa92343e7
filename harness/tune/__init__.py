"""Tuning on Ray Tune: search spaces, the trial trainable, ASHA + Optuna TPE, results and resume."""
