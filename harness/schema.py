"""Names shared by the code that writes results and the report that reads them, importable
without torch, Ray or Hydra (the report is a read-only leaf: `ascbench report` on a laptop
needs none of them)."""
from __future__ import annotations

STRATEGY_DEFAULTS = {"scheduler": "asha", "searcher": "tpe"}   # a space without `strategy`

# Every experiment folder (tune, ablation, confirmation): see harness/engine/store.py
RECORDS = "results"            # results/<id>.json: one record per trial or run (config, status, history, metrics)
PROVENANCE = "provenance.json"   # versions, commit, hardware, recorded at run time
MANIFEST = "ablation.json"     # an ablation's plan and sessions

# A tune experiment's files (STORAGE/NAME/...)
RESULTS = "results"          # results.parquet + results.csv: one row per trial
BEST_CONFIG = "best_config.yaml"
BEST_INFO = "best.yaml"

# Stored trial statuses: data, not display labels; each says what happened to the trial.
FINISHED = "finished"          # trained its whole epoch budget
STOPPED = "stopped"            # stopped early by the scheduler (ASHA)
INTERRUPTED = "interrupted"    # the driver stopped before the trial ended (Ctrl-C, a crash): --resume continues it
ERROR = "error"                # raised on its first run and on every retry (budget.max_failures)
ENDED = (FINISHED, STOPPED, ERROR)
LEGACY_STATUSES = {"stopped (ASHA)": STOPPED}   # how results tables written before issue 15 spelled it

# Test figures of a trial's validation-chosen checkpoint, carried in its results row as last/<key>
TEST_KEYS = ("test/macro_acc", "test/acc", "test/log_loss", "test/unseen_macro_acc")
