"""`ascbench report` rebuilt from the stored micro ablation (no training)."""
from __future__ import annotations

import pytest

from tests.support.ablation_fixture import micro_ablation


@pytest.mark.slow
def test_report_from_stored_ablation(ray_runtime, micro_data_config, tmp_path_factory, tmp_path):
    from harness.cli import main

    root, _ = micro_ablation(tmp_path_factory, micro_data_config)
    assert main(["report", str(root), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "REPORT.md").read_text()
    for section in ("## What was run", "git commit", "### Ablation table", "### Baselines: accuracy, parameters",
                    "### Per-class accuracy", "### Per-city accuracy", "### Best model's confusion matrix",
                    "n = number of seeds", "± is the standard deviation over seeds", "Holm"):
        assert section in text, section
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert len(pngs) == 4 and all((tmp_path / "rep" / p).stat().st_size > 5000 for p in pngs)
    for png in pngs:
        assert f"]({png})" in text


def test_report_on_a_folder_without_runs_is_one_line(tmp_path):
    from harness.cli import main

    assert main(["report", str(tmp_path)]) == 2


def test_the_report_package_imports_no_torch_ray_or_hydra():
    # `ascbench report` is a read-only leaf: it must run where only the results are
    import subprocess
    import sys

    code = ("import sys, reports.build, reports.sections, reports.tune_data, reports.discover, reports.figures; "
            "print(sorted(m for m in ('torch', 'torchaudio', 'ray', 'hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_results_tables_written_before_the_status_change_read_as_today(tmp_path):
    import pandas as pd

    from harness.schema import FINISHED, STOPPED
    from reports.tune_data import load_tune

    pd.DataFrame({"trial_id": ["a", "b"], "status": ["stopped (ASHA)", "finished"], "epochs": [1, 3]}).to_csv(
        tmp_path / "results.csv", index=False)
    assert load_tune(tmp_path).results["status"].tolist() == [STOPPED, FINISHED]
