"""Bad inputs to the Python API and to `mmlatent sample` get a ValueError that names the modality or
the option (never a traceback from inside a network), and what converts safely is converted.

The pipelines have untrained networks (mmlatent.testing.untrained_pipeline): these tests are about
input handling, not about samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gaussian_fixtures import gaussian_recipe, write_gaussian_data

from mmlatent.cli import main as cli_main
from mmlatent.pipeline import MLDPipeline
from mmlatent.recipe import RecipeError, parse_recipe
from mmlatent.testing import untrained_pipeline

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL_NET = {"width": 16, "blocks": 1, "time_embed": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_gaussian_data(tmp_path_factory.mktemp("gauss") / "gauss.safetensors", n=200)


@pytest.fixture(scope="module")
def pipe(data) -> MLDPipeline:
    """Vector modalities a (2 dims) and b (3 dims); the recipe's sampler is ddim, 2 steps."""
    return untrained_pipeline(gaussian_recipe(data, **{"diffusion.score_net": SMALL_NET,
                                                        "sampling": {"sampler": "ddim", "steps": 2}}))


@pytest.fixture
def sample_cli(monkeypatch, capsys, tmp_path):
    """``mmlatent sample RUN ARGS...`` on a given pipeline -> (exit code, stderr)."""

    def run(pipeline: MLDPipeline, *args: str) -> tuple[int, str]:
        monkeypatch.setattr("mmlatent.sample.load_model", lambda *a, **k: pipeline)
        code = cli_main(["sample", "RUN", "--out", str(tmp_path / "out"), *args])
        return code, capsys.readouterr().err

    return run


# ------------------------------------------------------------------------ given data-space batches
def test_float64_and_float16_batches_give_the_float32_output(pipe):
    a = torch.tensor([[0.5, -1.25], [2.0, 0.75]])
    reference = pipe.generate(given={"a": a}, seed=3)
    for dtype in (torch.float64, torch.float16):  # both hold these values exactly
        out = pipe.generate(given={"a": a.to(dtype)}, seed=3)
        assert out["a"].dtype == torch.float32 and torch.equal(out["a"], a)
        assert torch.equal(out["b"], reference["b"])
    assert pipe.generate(given={"a": a}, seed=3)["a"] is a  # data-space batches come back as given


@pytest.mark.parametrize("value, message", [
    ([[0.0, 1.0]], r"modality 'a': expected a torch tensor of shape \(N, 2\), got list"),
    (np.zeros((2, 2), np.float32), r"modality 'a': expected a torch tensor of shape \(N, 2\), got ndarray"),
    (torch.zeros(2, 3), r"modality 'a': expected shape \(N, 2\), got \(2, 3\) \(torch.float32\)"),
    (torch.zeros(2), r"modality 'a': expected shape \(N, 2\), got \(2,\)"),
    (torch.tensor(1.0), r"modality 'a': expected shape \(N, 2\), got \(\)"),
    (torch.tensor([[0.0, math.nan], [0.0, 0.0]]), "modality 'a': the batch holds 1 NaN or infinite value"),
    (torch.tensor([[0.0, math.inf]], dtype=torch.float64), "modality 'a': the batch holds 1 NaN or infinite"),
    (torch.zeros(2, 2, dtype=torch.complex64), "modality 'a': expected real values"),
])
def test_bad_batches_name_the_modality(pipe, value, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate(given={"a": value})
    with pytest.raises(ValueError, match=message):
        pipe.encode({"a": value})


def test_bad_given_mappings(pipe):
    with pytest.raises(ValueError, match="expected a mapping"):
        pipe.generate(given=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="unknown modality 'c'"):
        pipe.encode({"c": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"different batch sizes: \{'a': 2, 'b': 3\}"):
        pipe.encode({"a": torch.zeros(2, 2), "b": torch.zeros(3, 3)})


def test_encode_converts_like_generate(pipe):
    a = torch.tensor([[0.5, -1.25]])
    assert torch.equal(pipe.encode({"a": a.double()})["a"], pipe.encode({"a": a})["a"])


# ------------------------------------------------------------------------------ generate arguments
@pytest.mark.parametrize("kwargs, message", [
    ({"n": 2.5}, "n must be a positive integer, got 2.5"),
    ({"n": True}, "n must be a positive integer, got True"),
    ({"n": 0}, "n must be a positive integer, got 0"),
    ({"n": 2, "steps": 0}, "steps must be a positive integer, got 0"),
    ({"n": 2, "steps": "10"}, "steps must be a positive integer, got '10'"),
    ({"n": 2, "batch_size": -1}, "batch_size must be a positive integer"),
    ({"n": 2, "seed": 1.5}, "seed must be an integer, got 1.5"),
    ({"n": 2, "guidance": 2.0}, "guidance must map modality names to weights, got 2.0"),
])
def test_bad_generate_arguments(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate(**kwargs)


@pytest.mark.parametrize("weight", [math.nan, math.inf, "abc", True, None])
def test_guidance_weights_must_be_finite_numbers(pipe, weight):
    with pytest.raises(ValueError, match=f"guidance weight of modality 'a': expected a finite number, got {weight!r}"):
        pipe.generate(given={"b": torch.zeros(2, 3)}, guidance={"a": weight})


# --------------------------------------------------------------------------------- sampler options
@pytest.mark.parametrize("sampler, options, message", [
    ("ddim", {"eta": "abc"}, "sampler option eta: expected a finite number >= 0, got 'abc'"),
    ("ddim", {"eta": math.nan}, "sampler option eta: expected a finite number >= 0, got nan"),
    ("ddim", {"eta": -0.5}, "sampler option eta: expected a finite number >= 0, got -0.5"),
    ("ddim", {"eta": True}, "sampler option eta: expected a finite number >= 0, got True"),
    ("heun", {"grid": "cosine"}, "sampler option grid: expected one of 'uniform', 'logsnr', 'karras', got 'cosine'"),
    ("heun", {"t_min": 1.0}, r"sampler option t_min: expected a finite number in \[0, 1\), got 1.0"),
    ("heun", {"rho": math.inf}, "sampler option rho: expected a finite number > 0, got inf"),
    ("heun", {"clip_denoised": 0}, "sampler option clip_denoised: expected null or a finite number > 0, got 0"),
    ("heun", {"denoise_final": "yes"}, "sampler option denoise_final: expected true or false, got 'yes'"),
    ("heun", {"joint_steps": 2.5}, "sampler option joint_steps: expected null or an integer >= 1, got 2.5"),
    ("heun", {"guidance_interval": [0.6, 0.3]}, r"sampler option guidance_interval: expected null or two ordered"),
    ("heun", {"guidance_interval": [0.2, 1.5]}, r"numbers \[t_low, t_high\] in \[0, 1\], got \[0.2, 1.5\]"),
    ("heun", {"guidance_interval": "0.2"}, "sampler option guidance_interval"),
    ("heun", {"joint_guidance": {"a": math.nan}}, "sampler option joint_guidance: expected a mapping"),
    ("repaint", {"jump_length": 0}, "sampler option jump_length: expected an integer >= 1, got 0"),
    ("pc", {"corrector_steps": -1}, "sampler option corrector_steps: expected an integer >= 0, got -1"),
    ("pc", {"predictor": "heun"}, "sampler option predictor: expected one of 'ddpm', 'euler_maruyama', got 'heun'"),
    ("churn", {"s_tmax": math.nan}, r"sampler option s_tmax: expected a number >= 0 \(inf allowed\), got nan"),
    ("churn", {"order": 3}, "sampler option order: expected one of 1, 2, got 3"),
])
def test_bad_sampler_option_values(pipe, sampler, options, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate(n=2, sampler=sampler, steps=2, **options)


def test_good_sampler_option_values_run(pipe):
    pipe.generate(n=2, sampler="churn", steps=2, s_tmax=math.inf, order=1, t_min=0.0, clip_denoised=None,
                  guidance_interval=(0.0, 1.0), joint_guidance={"a": 1}, rho=np.float32(7.0), joint_steps=np.int64(2))
    assert pipe.last_nfe == 2 + 2  # 2 Euler steps, each with one joint-guidance branch


def test_recipes_check_option_values_too(data):
    recipe = gaussian_recipe(data, sampling={"sampler": "ddim", "options": {"eta": math.nan}})
    with pytest.raises(RecipeError, match="sampler option eta: expected a finite number >= 0, got nan"):
        parse_recipe(recipe)


@pytest.mark.parametrize("text, shown", [("abc", "'abc'"), (".nan", "nan"), ("nan", "'nan'"), ("[1]", "[1]")])
def test_sample_command_rejects_bad_option_values_without_traceback(pipe, sample_cli, text, shown):
    code, err = sample_cli(pipe, "--sampler", "ddim", "--steps", "2", "--option", f"eta={text}")
    assert code == 2
    assert f"sampler option eta: expected a finite number >= 0, got {shown}" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------ corrupt files
def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _safetensors_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save(tensors)


@pytest.mark.parametrize("name, content, message", [
    ("empty.npy", b"", "cannot read 'empty.npy' as a .npy file: the file is empty"),
    ("text.npy", b"0.5, 1.0\n", "cannot read 'text.npy' as a .npy file: not a NumPy array file"),
    ("cut.npy", _npy_bytes(np.zeros((4, 2), np.float32))[:-5], "cannot read 'cut.npy' as a .npy file: Failed to read"),
    ("words.npy", _npy_bytes(np.array(["ab", "cd"])), "cannot read 'words.npy' as a .npy file: can't convert"),
    ("empty.safetensors", b"", "cannot read 'empty.safetensors' as a .safetensors file: the file is empty"),
    ("cut.safetensors", _safetensors_bytes({"a": torch.zeros(4, 2)})[:-5],
     "cannot read 'cut.safetensors' as a .safetensors file: truncated or not a safetensors file"),
    ("none.safetensors", _safetensors_bytes({}), "cannot read 'none.safetensors' as a .safetensors file: it holds no"),
])
def test_corrupt_array_files_name_the_file(pipe, tmp_path, sample_cli, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"modality 'a': {message}"):
        pipe.modalities["a"].read_file(path)
    code, err = sample_cli(pipe, "--given", f"a={path}")
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_array_file(pipe, tmp_path):
    with pytest.raises(FileNotFoundError, match="modality 'a'"):
        pipe.modalities["a"].read_array(tmp_path / "missing.npy")
