"""Distilled few-step students (mmlatent.distill) against closed forms, and `mmlatent distill` end to end.

The closed-form check: Gaussian data over modalities a (2 dims) and b (3 dims) (gaussian_fixtures),
the exact noise predictor of the masked multi-time process as the TEACHER, and a small ScoreNet
pre-trained with the masked multi-time loss as the student's initialisation (as a real student
starts from the run's EMA network). The error of a sampler is the KL divergence
KL(N(sample mean, sample cov) || exact law) of 4,000 samples, for the joint law and for both
conditionals (b | a = a0 and a | b = b0, values 1-2 standard deviations off the mean). Finite-sample
KL of exact samples is about (k + k(k+1)/2) / (2n) <= 0.003 here. Teacher and student sample with
the engine's default clipping of the clean-signal estimate (|x0| <= 5), as Student.generate does:
without it ~1% of a 4-step student's samples, those drawn from the prior's far tail, go off.

Stated tolerances (measured values in brackets, seed 0):
- progressive, 64 -> 4 steps (250 iterations per round): KL <= 0.15 in every direction
  [0.01-0.07], below a quarter of the teacher's own deterministic DDIM at 4 steps [1.0-2.1] and
  below the teacher at 8 steps [0.33-0.69];
- consistency, 32 -> 4 steps (600 iterations): KL <= 0.5 [0.03-0.25] and below half the teacher's
  at 4 steps.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from gaussian_fixtures import GAUSS_COV, GAUSS_MEAN, gaussian_recipe, write_gaussian_data

from mmlatent.cli import main as cli_main
from mmlatent.diffusion import (
    VPSDE,
    GaussianLatents,
    LatentLayout,
    ScoreNet,
    generate_latents,
    masked_multitime_loss,
)
from mmlatent.distill import (
    DistillConfig,
    Student,
    distill_consistency,
    distill_progressive,
    list_students,
    load_student,
)

N = 4_000
LAYOUT = LatentLayout([2, 3], names=["a", "b"])
SDE = VPSDE()
DATA = GaussianLatents(torch.tensor(GAUSS_MEAN), torch.tensor(GAUSS_COV), LAYOUT)
VALUE = torch.tensor(GAUSS_MEAN, dtype=torch.float32) + torch.tensor([1.0, -0.8, 0.5, 0.3, -0.4])
MODES = {"joint": [False, False], "b|a": [True, False], "a|b": [False, True]}


pytestmark = pytest.mark.usefixtures("single_thread")


def exact_eps(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """The exact noise predictor S K^{-1} (x - A mu), batched over rows with their own times."""
    t = LAYOUT.expand(tau.double())
    a, s = SDE.alpha(t), SDE.sigma(t)
    k = a[:, :, None] * DATA.cov * a[:, None, :] + torch.diag_embed(s * s)
    y = torch.linalg.solve(k, (x.double() - a * DATA.mean)[..., None])[..., 0]
    return (s * y).to(x.dtype)


def kl_to_exact(samples: torch.Tensor, given: torch.Tensor) -> float:
    """KL(N(sample mean, sample cov) || exact law of the unknown dims)."""
    mean, cov, unknown = DATA.conditional(given, VALUE)
    y = samples.double()[:, unknown]
    m, c = y.mean(0), torch.cov(y.T)
    inv = torch.linalg.inv(cov)
    diff = mean - m
    return 0.5 * float(torch.trace(inv @ c) + diff @ inv @ diff - len(mean) + torch.logdet(cov) - torch.logdet(c))


def sample(model, mode: str, steps: int, **options) -> torch.Tensor:
    given = torch.tensor(MODES[mode])
    known = VALUE.expand(N, -1) if given.any() else None
    options.setdefault("t_min", 0.0)
    return generate_latents(model, SDE, LAYOUT, N, known=known, given=given, sampler="ddim", steps=steps,
                            eta=0.0, generator=torch.Generator().manual_seed(5), **options).latents


def errors(model, steps: int, **options) -> dict[str, float]:
    return {mode: kl_to_exact(sample(model, mode, steps, **options), torch.tensor(MODES[mode])) for mode in MODES}


@pytest.fixture(scope="module")
def training_data() -> torch.Tensor:
    return DATA.sample(20_000, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def student_init(training_data) -> ScoreNet:
    """A small ScoreNet pre-trained with the masked multi-time loss (the student's starting point)."""
    torch.manual_seed(0)
    net = ScoreNet(5, 2, width=128, blocks=2, time_embed=64)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(600):
        idx = torch.randint(len(training_data), (256,), generator=generator)
        loss = masked_multitime_loss(net, training_data[idx], SDE, LAYOUT, d=0.5, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


@pytest.fixture(scope="module")
def teacher_errors() -> dict[int, dict[str, float]]:
    """The exact teacher's own deterministic DDIM at 4 and 8 steps (best of the student's grid and
    ddim's default grid)."""
    out = {}
    for steps in (4, 8):
        ends_at_zero, default = errors(exact_eps, steps), errors(exact_eps, steps, t_min=1e-3)
        out[steps] = {mode: min(ends_at_zero[mode], default[mode]) for mode in MODES}
    return out


@pytest.fixture(scope="module")
def progressive_student(student_init, training_data) -> tuple[ScoreNet, list]:
    student = copy.deepcopy(student_init).requires_grad_(True)
    config = DistillConfig(method="progressive", steps=4, teacher_steps=64, iterations=250, lr=1e-3)
    history = distill_progressive(exact_eps, student, training_data, SDE, LAYOUT, config)
    return student, history


def test_exact_eps_matches_the_engine_oracle():
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    tau = torch.tensor([[0.3, 0.0], [0.0, 0.7], [0.5, 0.5], [1.0, 1.0], [0.01, 0.0], [0.2, 0.9]])
    assert torch.allclose(exact_eps(x, tau), DATA.eps_model(SDE)(x, tau), atol=1e-5)


def test_progressive_student_reproduces_joint_and_conditionals(progressive_student, teacher_errors):
    student, history = progressive_student
    assert [(r["teacher_steps"], r["student_steps"]) for r in history] == [(64, 32), (32, 16), (16, 8), (8, 4)]
    got = errors(student, 4)
    for mode in MODES:
        assert got[mode] <= 0.15, f"student {mode}: KL {got[mode]:.4f} ({got})"
        assert got[mode] < 0.25 * teacher_errors[4][mode], f"{mode}: student {got} vs teacher@4 {teacher_errors[4]}"
        assert got[mode] < teacher_errors[8][mode], f"{mode}: student@4 {got} vs teacher@8 {teacher_errors[8]}"


def test_student_keeps_known_dims_bit_identical(progressive_student):
    student, _ = progressive_student
    wrapped = Student("s", student, {"steps": 4, "grid": "uniform"})
    n = 64
    known = torch.randn(n, 5, generator=torch.Generator().manual_seed(3))
    given = torch.zeros(n, 2, dtype=torch.bool)
    given[: n // 3, 0] = True
    given[n // 3: 2 * n // 3, 1] = True  # per-row conditioning sets, the last third joint
    result = wrapped.generate(SDE, LAYOUT, n, known=known, given=given, generator=torch.Generator().manual_seed(0))
    assert result.nfe == 4
    dims = LAYOUT.modality_mask(given)
    assert torch.equal(result.latents[dims], known[dims])
    assert torch.isfinite(result.latents).all() and not torch.equal(result.latents[~dims], known[~dims])
    with pytest.raises(ValueError, match="distilled for 4 steps"):
        wrapped.generate(SDE, LAYOUT, n, steps=8)
    with pytest.raises(ValueError, match="without guidance"):
        wrapped.generate(SDE, LAYOUT, n, guidance={0: 1.0})


def test_student_eta_from_its_record(progressive_student):
    student, _ = progressive_student
    deterministic = Student("s", student, {"steps": 4, "grid": "uniform"})
    ancestral = Student("s", student, {"steps": 4, "grid": "uniform", "eta": 1.0})

    def run(s, **options):
        return s.generate(SDE, LAYOUT, 32, generator=torch.Generator().manual_seed(0), **options).latents

    assert torch.equal(run(ancestral, eta=0.0), run(deterministic))
    assert not torch.equal(run(ancestral), run(deterministic))


def test_consistency_student_beats_the_teacher_at_the_same_steps(student_init, training_data, teacher_errors):
    student = copy.deepcopy(student_init).requires_grad_(True)
    config = DistillConfig(method="consistency", steps=4, teacher_steps=32, iterations=600, lr=1e-3)
    distill_consistency(exact_eps, student, training_data, SDE, LAYOUT, config)
    got = errors(student, 4)
    for mode in MODES:
        assert got[mode] <= 0.5, f"consistency student {mode}: KL {got[mode]:.4f} ({got})"
        assert got[mode] < 0.5 * teacher_errors[4][mode], f"{mode}: student {got} vs teacher@4 {teacher_errors[4]}"


def test_config_checks():
    with pytest.raises(ValueError, match="steps \\* 2\\^R"):
        DistillConfig(steps=4, teacher_steps=48).check()
    DistillConfig(method="consistency", steps=4, teacher_steps=48).check()
    with pytest.raises(ValueError, match="1 to 8"):
        DistillConfig(steps=16, teacher_steps=64).check(8)
    with pytest.raises(ValueError, match="unknown distillation method"):
        DistillConfig(method="magic").check()


# ------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distill_run")
    data = write_gaussian_data(root / "gauss.safetensors", n=2000)
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(gaussian_recipe(data)))
    assert cli_main(["train", str(recipe), "--output", str(root / "run"), "--no-progress", "--no-eval"]) == 0
    return root / "run"


def test_cli_distils_saves_and_samples(tiny_run: Path, tmp_path: Path, capsys):
    from mmlatent import MLDPipeline

    args = ["distill", str(tiny_run), "--steps-student", "2", "--teacher-steps", "8", "--iterations", "30",
            "--out", "fast", "--no-progress"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "student:fast" in out and "2 NFE" in out
    assert (tiny_run / "students" / "fast.safetensors").is_file()
    info = json.loads((tiny_run / "students" / "fast.json").read_text())
    assert info["steps"] == 2 and info["method"] == "progressive" and info["sampler"] == "student:fast"
    assert [r["student_steps"] for r in info["rounds"]] == [4, 2]
    assert list_students(tiny_run) == ["fast"]
    assert load_student(tiny_run, "fast").steps == 2
    assert not list((tiny_run / "students").glob("*.tmp"))

    # the same name again needs --overwrite
    assert cli_main(args) == 2
    assert "already exists" in capsys.readouterr().err

    pipe = MLDPipeline.load(tiny_run)
    joint = pipe.generate(n=32, sampler="student:fast", seed=1)
    assert pipe.last_nfe == 2 and joint["a"].shape == (32, 2) and torch.isfinite(joint["b"]).all()
    a = torch.randn(16, 2)
    conditional = pipe.generate(given={"a": a}, sampler="student:fast")
    assert pipe.last_nfe == 2 and torch.equal(conditional["a"], a) and conditional["b"].shape == (16, 3)
    with pytest.raises(ValueError, match="no student 'other'"):
        pipe.generate(n=4, sampler="student:other")
    with pytest.raises(ValueError, match="distilled for 2 steps"):
        pipe.generate(n=4, sampler="student:fast", steps=5)

    assert cli_main(["sample", str(tiny_run), "--sampler", "student:fast", "--n", "8", "--out", str(tmp_path / "s")]) == 0
    assert "2 NFE" in capsys.readouterr().out

    # the other method, through the command too
    assert cli_main(["distill", str(tiny_run), "--method", "consistency", "--steps-student", "2",
                     "--teacher-steps", "6", "--iterations", "20", "--eta", "1", "--no-progress"]) == 0
    info = load_student(tiny_run, "consistency-2").info
    assert info["method"] == "consistency" and info["eta"] == 1.0
    assert load_student(tiny_run, "fast").info["eta"] == 0.0


def test_cli_errors(tiny_run: Path, tmp_path: Path, capsys):
    assert cli_main(["distill", str(tmp_path / "nowhere")]) == 2
    assert "no run directory" in capsys.readouterr().err

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("manifest.json", "recipe.yaml", "score_net.safetensors", "latent_stats.safetensors"):
        (bare / name).write_bytes((tiny_run / name).read_bytes())
    assert cli_main(["distill", str(bare), "--no-progress"]) == 2
    assert "no cached training latents" in capsys.readouterr().err

    assert cli_main(["distill", str(tiny_run), "--steps-student", "16", "--no-progress"]) == 2
    assert "1 to 8 steps" in capsys.readouterr().err
    assert cli_main(["distill", str(tiny_run), "--teacher-steps", "48", "--no-progress"]) == 2
    assert "2^R" in capsys.readouterr().err
    assert cli_main(["distill", str(tiny_run), "--out", "../x", "--no-progress"]) == 2
    assert "invalid student name" in capsys.readouterr().err


def test_guided_teacher_is_the_samplers_guided_eps_per_time():
    """Rows at two times and three conditioning sets: each time's rows get exactly what the sampler's
    guided stack (MaskedEpsModel with the same weights and options) computes at that time."""
    from mmlatent.diffusion.guidance import MaskedEpsModel
    from mmlatent.distill import GuidedTeacher

    torch.manual_seed(0)
    layout = LatentLayout([2, 3, 1], names=["a", "b", "c"])
    net = ScoreNet(6, 3, width=16, blocks=1, time_embed=8)
    torch.nn.init.normal_(net.output.weight)
    given = torch.tensor([[True, False, False], [False, True, True], [False, False, False], [True, False, False]])
    t = torch.tensor([0.3, 0.3, 0.3, 0.7])
    x = torch.randn(4, 6)
    tau = torch.where(given, torch.zeros(()), t[:, None])
    guidance, options = {"a": 2.0, "b": 1.0}, {"combine_guidance": True, "joint_guidance": {"a": 3.0},
                                               "guidance_interval": (0.0, 0.5), "eta": 1.0}
    teacher = GuidedTeacher(net, SDE, layout, guidance, options, generator=torch.Generator().manual_seed(5))
    got = teacher(x, tau)
    generator = torch.Generator().manual_seed(5)
    stack = {k: v for k, v in options.items() if k != "eta"}
    for value, rows in ((0.3, [0, 1, 2]), (0.7, [3])):
        expected = MaskedEpsModel(net, SDE, layout, given[rows], x[rows], guidance=guidance, generator=generator,
                                  **stack).eps(x[rows], value)
        assert torch.equal(got[rows], expected)
    plain = net(x, tau)
    assert not torch.allclose(got[:3], plain[:3])  # guided inside the interval (joint row 2 by modality a)
    torch.testing.assert_close(got[3], plain[3])  # t = 0.7 is outside the guidance interval
    assert teacher.record() == {"weights": guidance, "combine_guidance": True, "joint_guidance": {"a": 3.0},
                                "guidance_interval": [0.0, 0.5]}


def test_guided_distillation_needs_guidance_in_the_recipe(tiny_run: Path, capsys):
    assert cli_main(["distill", str(tiny_run), "--guided", "--steps-student", "2", "--teacher-steps", "4",
                     "--iterations", "2", "--no-progress"]) == 2
    assert "no guidance to distil" in capsys.readouterr().err
