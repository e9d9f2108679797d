"""benchmarks/missing.py: its recipes (same budget at every rate, the missing section as documented)
and a quick real run of the script end to end (MLD at rates 0 and 0.5, and by label)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import load_script

from mmlatent.recipe import parse_recipe

REPO = Path(__file__).resolve().parents[2]
bench = load_script(REPO / "benchmarks" / "missing.py")


def test_cases_share_the_budget_and_differ_only_in_missing_values():
    recipes = {label: parse_recipe(bench.case_recipe("mld", missing, 5000, None))
               for label, missing in bench.cases([0, 0.25, 0.75], by_label=True, complete_case=0.75,
                                                 complete_fractions=[(0.25, 0.5)])}
    assert list(recipes) == ["rate 0", "rate 0.25", "rate 0.75", "by label", "rate 0.75 complete items only",
                             "rate 0.25 complete fraction 0.5"]
    assert recipes["rate 0.75 complete items only"].data.missing.complete_only
    assert recipes["rate 0.25 complete fraction 0.5"].diffusion.train.complete_fraction == 0.5
    assert recipes["rate 0.25 complete fraction 0.5"].data.missing.rate["gray"] == 0.25
    assert recipes["rate 0"].data.missing is None
    assert recipes["rate 0.75"].data.missing.rate == {"gray": 0.75, "color": 0.75, "caption": 0.75}
    assert recipes["by label"].data.missing.by_label["caption"] == {k: 0.75 for k in range(5)}
    assert {r.diffusion.train.steps for r in recipes.values()} == {5000}
    # stage 1 in steps: the complete-data run's (10 epochs of 7,000 items at batch 128 for gray)
    assert recipes["rate 0.75"].modalities["gray"].train.steps == 10 * 55
    assert recipes["rate 0.75"].modalities["gray"].train.epochs is None
    dumps = {label: r.model_dump(exclude={"data": {"missing"}, "diffusion": {"train": {"complete_fraction"}}})
             for label, r in recipes.items()}
    assert all(d == dumps["rate 0"] for d in dumps.values())


def test_quick_run_writes_table_plot_and_json(tmp_path, capsys):
    assert bench.main(["--out", str(tmp_path), "--rates", "0,0.5", "--families", "mld", "--quick",
                       "--complete-case", "0", "--complete-fraction", ""]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cases = [(r["family"], r["case"]) for r in last["records"]]
    assert cases == [("mld", "rate 0"), ("mld", "rate 0.5"), ("mld", "by label")]
    fractions = {r["case"]: r["missing_fraction"] for r in last["records"]}
    assert fractions["rate 0"] == {"gray": 0.0, "color": 0.0, "caption": 0.0}
    assert all(0.3 < value < 0.5 for value in fractions["rate 0.5"].values())  # 3 modalities, redrawn empties
    assert fractions["by label"]["gray"] == 0.0 and 0.3 < fractions["by label"]["caption"] < 0.45
    assert (tmp_path / "missing.png").stat().st_size > 10_000
    table = (tmp_path / "table.md").read_text()
    assert "| mld | rate 0.5 |" in table and "| mld | by label |" in table
    # every run is judged by the classifiers of the first run
    first = (tmp_path / "mld" / "rate_0" / "classifiers" / "gray.safetensors").read_bytes()
    assert (tmp_path / "mld" / "rate_0.5" / "classifiers" / "gray.safetensors").read_bytes() == first


def test_rates_must_start_at_zero(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path), "--rates", "0.5"])
