"""benchmarks/coherence_budget.py on a tiny trained run (Gaussian data, identity autoencoders):
structure of the tables and the JSON line, accuracies in [0, 1], reconstructions of an identity
autoencoder classified exactly as the real data, separable latents probed as such, and losses
that add up to real - generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_fixtures import tiny_recipe, train, write_yaml
from gaussian_fixtures import write_gaussian_data
from scripts import load_script

from mmlatent.diffusion.schedules import repaint_nfe

pytestmark = pytest.mark.usefixtures("single_thread")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "coherence_budget.py"
CHEAP = ["--reference", "repaint", "--reference-steps", "20", "--classifier-epochs", "40", "--no-progress"]


@pytest.fixture(scope="module")
def budget():
    return load_script(SCRIPT)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A whole tiny run in about a second: a (2 dims) determines the label (its quadrant), b (3 dims)
    is correlated with a; both autoencoders are the identity."""
    root = tmp_path_factory.mktemp("budget")
    data = write_gaussian_data(root / "gauss.safetensors", n=600)
    small = {"hidden": [32]}  # the classifiers' width (identity autoencoders have none)
    recipe = write_yaml(root / "recipe.yaml", tiny_recipe(data, **{
        "modalities.a.options": {"arch": "identity", "size": 2, **small},
        "modalities.b.options": {"arch": "identity", "size": 3, **small},
    }))
    assert train(recipe, root / "run") == 0
    return root / "run"


def _last_json(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    return lines, json.loads(lines[-1])


def _fractions(row: dict) -> list[float]:
    keys = ("real", "recon", "latent_linear", "latent_knn", "latent_decoded", "ceiling")
    values = [row[k] for k in (*keys, "recipe") if row[k] is not None]
    if "paper" in row:
        values += [row["paper"][k] for k in (*keys, "paper", "recipe") if row["paper"][k] is not None]
    return values


def test_budget_on_a_tiny_run(budget, tiny_run, capsys):
    result = budget.main([str(tiny_run), "--seeds", "2", "--limit", "40", *CHEAP])
    lines, printed = _last_json(capsys)
    assert printed == json.loads(json.dumps(result))  # the LAST line is the whole result
    assert result["num_items"] == 40 and result["paper_items"] == 40 and result["seeds"] == 2
    assert set(result["directions"]) == {"joint", "a->b", "b->a"}
    assert result["nfe"] == {"recipe": 4, "paper": repaint_nfe(20, 10, 10)}
    assert result["plans"]["paper"]["sampler"] == "repaint" and result["plans"]["recipe"]["sampler"] == "ddim"
    for key, row in result["directions"].items():
        assert all(0.0 <= v <= 1.0 for v in _fractions(row)), key
        # identity autoencoders: reconstructions are classified exactly as the real items
        assert row["recon"] == row["real"] and row["paper"]["recon"] == row["paper"]["real"]
        # the losses between consecutive stages add up to real - generated
        assert sum(row["losses"].values()) == pytest.approx(row["real"] - row["recipe"])
        assert sum(row["paper"]["losses"].values()) == pytest.approx(row["real"] - row["paper"]["recipe"])
        assert row["paper"]["losses"]["sampler"] == pytest.approx(row["paper"]["paper"] - row["paper"]["recipe"])
    assert result["classifier_accuracy"]["real"] == result["classifier_accuracy"]["recon"]
    joint = result["directions"]["joint"]
    assert joint["latent_linear"] is None and joint["ceiling"] == joint["recon"]
    # a's latent is a itself and the label is its quadrant: linearly and 5-NN separable
    a_to_b = result["directions"]["a->b"]
    assert a_to_b["given"] == ["a"] and a_to_b["target"] == "b"
    assert a_to_b["latent_linear"] >= 0.9 and a_to_b["latent_knn"] >= 0.85
    # dec: a's own classifier on a's reconstruction (identity: on a itself)
    assert a_to_b["latent_decoded"] == result["classifier_accuracy"]["recon"]["a"]
    assert a_to_b["ceiling"] == min(a_to_b["recon"], max(a_to_b["latent_linear"], a_to_b["latent_knn"],
                                                         a_to_b["latent_decoded"]))
    assert result["classifier_accuracy"]["real"]["a"] >= 0.8  # the label is a function of a
    # one table with every column when the paper sampler runs on all items
    text = "\n".join(lines[:-1])
    header = next(line for line in lines if line.startswith("direction"))
    for column in ("real", "recon", "lin", "kNN", "dec", "ceil", f"paper({result['nfe']['paper']})", "recipe(4)",
                   "AE", "latent", "stage2", "sampler"):
        assert column in header.split(), column
    assert "a->b" in text and "joint" in text and text.count("direction") == 1


def test_paper_on_a_subset_and_without_paper(budget, tiny_run, capsys):
    result = budget.main([str(tiny_run), "--seeds", "1", "--paper-limit", "15", "--split", "test", *CHEAP])
    lines, _ = _last_json(capsys)
    assert result["num_items"] == 60 and result["paper_items"] == 15  # 10% of 600 test items
    row = result["directions"]["b->a"]
    assert row["paper"]["items"] == 15 and set(row["paper"]["losses"]) == {"autoencoder", "latent", "stage2", "sampler"}
    assert set(row["losses"]) == {"autoencoder", "latent", "generation"}
    assert all(0.0 <= v <= 1.0 for v in _fractions(row))
    assert sum(1 for line in lines if line.startswith("direction")) == 2  # all items, then the paper's items
    assert any("15 paper-sampler items" in line for line in lines)

    result = budget.main([str(tiny_run), "--seeds", "1", "--no-paper-sampler", *CHEAP])
    lines, printed = _last_json(capsys)
    assert result["paper_items"] is None and "paper" not in result["nfe"] and "paper" not in result["plans"]
    assert all("paper" not in row for row in result["directions"].values())
    assert printed["directions"]["a->b"]["recipe"] == result["directions"]["a->b"]["recipe"]
    # same items, seed 0, same plan: the recipe sampler's figures do not depend on the paper's run
    assert sum(1 for line in lines if line.startswith("direction")) == 1


def test_bad_arguments_are_refused(budget, tiny_run):
    with pytest.raises(SystemExit):
        budget.main([str(tiny_run), "--seeds", "0", "--no-paper-sampler"])
