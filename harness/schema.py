"""Names shared by the code that writes results and the report that reads them, importable
without torch, Ray or Hydra (the report is a read-only leaf: `ascbench report` on a laptop
needs none of them)."""
from __future__ import annotations

STRATEGY_DEFAULTS = {"scheduler": "asha", "searcher": "tpe"}   # a space without `strategy`
