"""recipes/digits_audio.yaml end to end at a tiny size: the core's `paired` dataset joins the
image plugin's digits_pair with spoken_digits, the four modalities train, are evaluated in every
direction, and a WAV file given on the command line conditions sampling."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile

from mmlatent.cli import main as cli_main
from mmlatent.recipe import load_recipe
from mmlatent_audio.testing import write_speech_embedding

REPO = Path(__file__).resolve().parents[3]
RECIPE = REPO / "recipes" / "digits_audio.yaml"


def tiny_overrides(root: Path) -> list[str]:
    recipe = load_recipe(RECIPE)
    sets = []
    for name in recipe.modalities:
        sets += [f"modalities.{name}.train.epochs=null", f"modalities.{name}.train.steps=3",
                 f"modalities.{name}.train.batch_size=16"]
    return sets + [
        "data.options.sources.0.options.k=1",
        f"data.options.sources.1.options.root={root}",
        "data.options.sources.1.options.speakers={train: 4, val: 0, test: 2}",
        "modalities.audio.options.channels=[4,8]",
        "diffusion.train.steps=5", "diffusion.train.batch_size=16", "diffusion.score_net.width=32",
        "diffusion.score_net.time_embed=16", "evaluation.samples=4", "evaluation.limit=6",
        "evaluation.classifier_epochs=1",
    ]


def test_the_four_modality_recipe_is_built_from_two_plugins():
    recipe = load_recipe(RECIPE)
    assert recipe.data.dataset == "paired"
    assert [source["dataset"] for source in recipe.data.options["sources"]] == ["digits_pair", "spoken_digits"]
    assert list(recipe.modalities) == ["gray", "color", "caption", "audio"]
    assert recipe.modalities["audio"].kind == "audio"


def test_digits_audio_trains_evaluates_and_samples_from_a_wav(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(RECIPE), "--output", str(run), "--no-progress"]
    write_speech_embedding(tmp_path / "embedding.safetensors")  # a Frechet audio distance in its features
    for item in [*tiny_overrides(tmp_path / "spoken"), f"evaluation.embeddings={{audio: {tmp_path}/embedding.safetensors}}"]:
        args += ["--set", item]
    assert cli_main(args) == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"joint:audio", "gray->audio", "gray+color+caption->audio"} <= set(metrics["fd_embedding"])
    assert "Frechet distance in embedding-network features" in (run / "report.md").read_text()
    names = ["gray", "color", "caption", "audio"]
    # M = 4: joint, every single given modality and every pair and triple as the condition
    assert {"joint", "audio->gray", "gray->audio", "gray+color+caption->audio", "caption+audio->color"} <= set(
        metrics["coherence"])
    assert all(0.0 <= value <= 1.0 for value in metrics["coherence"].values())
    assert any(key.endswith("audio") for key in metrics["fd"])
    assert list((run / "samples").glob("joint_audio-*.wav")) and (run / "samples" / "joint_audio.png").is_file()

    wav = tmp_path / "seven.wav"
    t = np.arange(8000) / 8000
    soundfile.write(str(wav), (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000, subtype="PCM_16")
    out = tmp_path / "samples"
    assert cli_main(["sample", str(run), "--given", f"audio={wav}", "--out", str(out)]) == 0, capsys.readouterr().err
    for name in names[:3]:
        assert list(out.glob(f"{name}.*")), name

    # the benchmark of docs/audio.md runs on this run
    spec = importlib.util.spec_from_file_location("digits_audio_benchmark", REPO / "benchmarks" / "digits_audio.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    capsys.readouterr()
    assert benchmark.main([str(run), "--seeds", "2", "--limit", "4", "--assets", str(tmp_path / "assets")]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed.strip().splitlines()[-1])
    assert result["seeds"] == 2 and result["audio"]["real"] is not None
    assert set(result["audio"]) >= {"recon_gl8", "recon_gl32", "recon_gl100"}
    assert result["coherence"]["gray->audio"]["sd"] >= 0 and "| gray->audio |" in printed
    assert (tmp_path / "assets" / "gray_to_audio.png").is_file() and list((tmp_path / "assets").glob("joint_audio-*.wav"))
