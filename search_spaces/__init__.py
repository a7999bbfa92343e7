"""Shipped search spaces and ablation grids (YAML), usable after a non-editable install."""
