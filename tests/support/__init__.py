"""Helpers shared by test modules (processes, sockets, a micro ablation), and the repository root."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
