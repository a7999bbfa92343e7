"""Hydra config groups (model, data, train, pseudo), composed with `harness.train.config.compose_config`."""
