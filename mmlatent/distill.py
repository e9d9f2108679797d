"""Few-step students: distil a run's EMA score network into a network that samples in <= 8 NFE.

``mmlatent distill RUN [--steps-student K] [--iterations N] [--method progressive|consistency] [--guided]
[--out NAME]`` writes ``RUN/students/NAME.safetensors`` (the student's weights) and
``RUN/students/NAME.json`` (its step count, grid, method and settings); then::

    mmlatent sample RUN --sampler student:NAME --out DIR
    mmlatent evaluate RUN --sampler student:NAME
    MLDPipeline.load(RUN).generate(n=16, given={...}, sampler="student:NAME")

``--guided`` distils the recipe sampler's guidance (its weights, ``combine_guidance``,
``joint_guidance``, ``guidance_interval``) instead of the plain network: the teacher's noise
prediction is :class:`GuidedTeacher` (the sampler's own guided stack, per row time), so the student
samples guided at K NFE without guidance branches.

The student keeps ANY-SUBSET conditioning: it is the same network as the teacher (the masked
multi-time ScoreNet, initialised from the teacher's EMA weights), trained on conditioning sets drawn
per sample from nu(d) exactly as in training (:func:`~mmlatent.diffusion.sample_given_mask`):
known modalities clean with tau = 0, the others noised, the loss on the unknown dims only.

Both methods distil the teacher's deterministic DDIM (the probability-flow ODE) on a fine time grid
of ``teacher_steps`` steps, uniform in t from T to 0, and give a student that runs DDIM (eta = 0)
on the coarse grid of K steps (every ``teacher_steps / K``-th point of the fine grid), its last
step landing on t = 0 (the sample). NFE = K.

- ``progressive`` (Salimans & Ho 2022): rounds of halving. In a round the student is trained so that
  ONE of its DDIM steps t -> t'' matches TWO DDIM steps t -> t' -> t'' of the teacher (the previous
  round's student; the EMA score network in the first round), 64 -> 32 -> 16 -> 8 -> 4 steps.
  ``iterations`` per round; Adam, learning rate decayed linearly to 0 within each round.
- ``consistency`` (multistep consistency distillation, Heek et al. 2024, over the same grid): the
  coarse grid cuts [0, T] into K segments; for a fine point t_n inside a segment the student's DDIM
  jump from t_n to the segment's end must agree with its own jump from t_{n+1} after one teacher
  DDIM step t_n -> t_{n+1} (stop-gradient target; at the segment end the target is the teacher's
  step itself). ``iterations`` in total.

Loss: squared error of the state a step lands on (the sample itself for the last step), summed over
the unknown dims and averaged over the batch. (Measured alternatives, not kept: the same error
divided by alpha^2 at the landing time -- the clean-signal units of Salimans & Ho's truncated-SNR
weighting -- made students worse than the teacher at the same steps, on the closed-form Gaussian
and on the quickstart run: with an eps-predicting teacher the first steps' targets are not
reproducible to that precision and dominate the loss; an extra zero-initialised x0 head on the
student changed nothing measurable.) Samples of the process are drawn as in training:
a cached training latent (standardised with the run's statistics), noised to the step's start time.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlatent.checkpoint import CheckpointError
from mmlatent.diffusion import (
    VPSDE,
    LatentLayout,
    generate_latents,
    multitime_vector,
    sample_given_mask,
)
from mmlatent.diffusion.guidance import MaskedEpsModel
from mmlatent.diffusion.schedules import time_grid
from mmlatent.errors import UserError, run_command
from mmlatent.families import DEFAULT_FAMILY
from mmlatent.latents import LatentStats, load_latents
from mmlatent.model import load_run_recipe
from mmlatent.pipeline import MLDPipeline
from mmlatent.progress import progress_bar
from mmlatent.rundir import RunDir, check_run_path, is_run_directory
from mmlatent.runlock import RunLock
from mmlatent.stopping import StopSignals
from mmlatent.students import (
    STUDENT_SAMPLER,
    Student,
    check_student_name,
    list_students,
    load_student,
    save_student,
    students_dir,
)

__all__ = [
    "DistillConfig",
    "Student",  # re-exported from mmlatent.students (where students are loaded and sampled)
    "distill_progressive",
    "distill_consistency",
    "distill_run",
    "load_student",
    "list_students",
    "main",
]

METHODS = ("progressive", "consistency")
MAX_STUDENT_STEPS = 8

EpsModel = Callable[[Tensor, Tensor], Tensor]


GUIDANCE_OPTIONS = ("combine_guidance", "joint_guidance", "guidance_interval")


class GuidedTeacher:
    """The guided noise prediction of a sampling plan as an ``eps(x (B, D), tau (B, M))`` callable.

    Rows carry their own times and conditioning sets (tau_i = 0: modality i given, its dims of ``x``
    the clean latent); the rows sharing a time go through the sampler's own stack,
    :func:`~mmlatent.diffusion.guidance.MaskedEpsModel` (:class:`~mmlatent.diffusion.guidance.Guided`
    with the plan's weights, ``combine_guidance``, ``joint_guidance`` and ``guidance_interval``), so a
    student distilled from it learns exactly what the guided sampler evaluates.
    """

    def __init__(self, net: EpsModel, sde: VPSDE, layout: LatentLayout, guidance: dict[str, float],
                 options: dict[str, Any], generator: torch.Generator | None = None):
        self.net, self.sde, self.layout, self.generator = net, sde, layout, generator
        self.guidance = dict(guidance)
        self.options = {key: options[key] for key in GUIDANCE_OPTIONS if options.get(key) is not None}

    def __call__(self, x: Tensor, tau: Tensor) -> Tensor:
        given = tau == 0  # (B, M)
        t = tau.amax(1)  # (B,) the time of the diffused modalities
        out = torch.empty_like(x)
        for time_value in t.unique():
            rows = torch.nonzero(t == time_value).flatten()
            denoiser = MaskedEpsModel(self.net, self.sde, self.layout, given[rows], x[rows],
                                      guidance=self.guidance, generator=self.generator, **self.options)
            out[rows] = denoiser.eps(x[rows], float(time_value))
        return out

    def record(self) -> dict[str, Any]:
        """The guidance the student was distilled with (its record's ``guidance``)."""
        return {"weights": self.guidance, **{k: (list(v) if isinstance(v, tuple) else v)
                                             for k, v in self.options.items()}}


# ------------------------------------------------------------------------------------ settings
@dataclass
class DistillConfig:
    """Settings of one distillation.

    Attributes:
        method: ``"progressive"`` or ``"consistency"``.
        steps: K, the student's number of DDIM steps (= its NFE), 1..8.
        teacher_steps: the fine DDIM grid of the teacher; ``K * 2^R`` (R >= 1) for progressive.
        iterations: optimiser steps per halving round (progressive) or in total (consistency).
        batch_size: training batch.
        lr: Adam learning rate (decayed linearly to 0 within each round / over the whole run).
        d: probability of a conditional sample (the conditioning set is drawn from nu(d)).
        grid: the time grid kind (:func:`~mmlatent.diffusion.schedules.time_grid`); t_min is 0.
        seed: seed of the data, mask, time and noise draws.
    """

    method: str = "progressive"
    steps: int = 4
    teacher_steps: int = 64
    iterations: int = 1500
    batch_size: int = 256
    lr: float = 3e-4
    d: float = 0.5
    grid: str = "uniform"
    seed: int = 0

    def check(self, max_steps: int | None = None) -> None:
        """Raise ValueError on inconsistent settings (``max_steps``: the most student steps allowed)."""
        if self.method not in METHODS:
            raise ValueError(f"unknown distillation method {self.method!r}; choose {' or '.join(METHODS)}")
        if self.steps < 1 or (max_steps is not None and self.steps > max_steps):
            raise ValueError(f"the student takes 1 to {max_steps or 'any number of'} steps, got {self.steps}")
        if self.teacher_steps <= self.steps or self.teacher_steps % self.steps:
            raise ValueError(f"teacher_steps ({self.teacher_steps}) must be a multiple of the student's "
                             f"steps ({self.steps}) larger than it")
        if self.method == "progressive":
            ratio = self.teacher_steps // self.steps
            if ratio & (ratio - 1):
                raise ValueError(f"progressive distillation halves the steps: teacher_steps must be "
                                 f"steps * 2^R, got {self.teacher_steps} for {self.steps} steps")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be > 0, got {self.lr}")
        if not 0.0 <= self.d <= 1.0:
            raise ValueError(f"d is a probability, got {self.d}")
        if self.grid not in ("uniform", "karras"):
            raise ValueError(f"the student's grid ends at t = 0: use 'uniform' or 'karras', got {self.grid!r}")


def student_grid(sde: VPSDE, steps: int, grid: str = "uniform") -> Tensor:
    """The decreasing grid ``(steps + 1,)`` float64 from T to 0 on which students run."""
    return time_grid(sde, steps, kind=grid, t_min=0.0)


# ------------------------------------------------------------------------------- batched steps
class _Process:
    """Samples of the masked multi-time process and per-sample DDIM steps (rows have their own times)."""

    def __init__(self, data: Tensor, sde: VPSDE, layout: LatentLayout, d: float, generator: torch.Generator):
        self.data, self.sde, self.layout, self.d, self.generator = data, sde, layout, d, generator

    def draw(self, batch: int, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(x_t, z, given, given_dim_mask)`` for ``batch`` training latents at times ``t (B,)`` float64."""
        device = self.data.device
        idx = torch.randint(self.data.shape[0], (batch,), generator=self.generator, device=device)
        z = self.data[idx]
        given = sample_given_mask(batch, self.layout.num_modalities, self.d, generator=self.generator,
                                  device=device)
        given_dim_mask = self.layout.modality_mask(given)
        noise = torch.randn(z.shape, generator=self.generator, device=device, dtype=z.dtype)
        x = torch.where(given_dim_mask, z, self.sde.perturb(z, t, noise))
        return x, z, given, given_dim_mask

    def ddim(self, eps_model: EpsModel, x: Tensor, t: Tensor, t_next: Tensor, given: Tensor,
             given_dim_mask: Tensor, z: Tensor) -> Tensor:
        """One deterministic DDIM step per row from ``t`` to ``t_next`` (float64 ``(B,)``), given dims reset.

        The probability-flow step of :func:`~mmlatent.diffusion.steps.pf_step`, ``alpha' (x / alpha
        + (s' - s) eps_hat)``, with per-row coefficients folded in float64 as
        ``x' = (alpha'/alpha) x + (sigma' - alpha' sigma/alpha) eps_hat`` (the identity when t' = t):
        two float32 operations instead of four, and the arithmetic the golden numbers pin (the
        pf_step form moves the distillation losses by ~3e-6 relative).
        """
        eps_hat = eps_model(x, multitime_vector(t.to(x.dtype), given))
        alpha, sigma = self.sde.alpha(t), self.sde.sigma(t)
        alpha_next, sigma_next = self.sde.alpha(t_next), self.sde.sigma(t_next)
        gain = (alpha_next / alpha).to(x.dtype)[:, None]
        coef = (sigma_next - alpha_next * sigma / alpha).to(x.dtype)[:, None]
        return torch.where(given_dim_mask, z, gain * x + coef * eps_hat)


def _landing_error(x: Tensor, target: Tensor, unknown: Tensor) -> Tensor:
    """Squared error of the state a step lands on, summed over the unknown dims, batch mean."""
    return ((x - target).square() * unknown).sum(-1).mean()


def _optimizer_step(optimizer: torch.optim.Optimizer, loss: Tensor, where: str) -> float:
    """One Adam step on ``loss`` (stops with FloatingPointError when it is not finite); its value."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"distillation loss is {float(loss)} {where}; lower --lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def _tail_mean(losses: list[float]) -> float:
    """Mean of the last tenth of the losses (at least one)."""
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail)


def _linear_decay(optimizer: torch.optim.Optimizer, lr: float, step: int, total: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * (1.0 - step / total)


def _frozen(module: nn.Module) -> nn.Module:
    teacher = copy.deepcopy(module).eval()
    teacher.requires_grad_(False)
    return teacher


# ------------------------------------------------------------------------------- progressive
def distill_progressive(teacher: EpsModel, student: nn.Module, data: Tensor, sde: VPSDE,
                        layout: LatentLayout, config: DistillConfig, progress: bool = False,
                        log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Progressive distillation of ``teacher``'s DDIM (``config.teacher_steps`` steps) into ``student``.

    Args:
        teacher: ``eps(x (B, D), tau (B, M))`` (the EMA ScoreNet, or any callable such as
            :meth:`GaussianLatents.eps_model`); never modified.
        student: the network trained in place (usually a copy of the teacher).
        data: ``(N, D)`` standardised training latents, on the training device.
        config: the settings (``steps``, ``teacher_steps``, ``iterations`` per round, ...).

    Returns one record per round: ``{"teacher_steps", "student_steps", "loss"}`` (mean loss over the
    round's last 10% of iterations).
    """
    config.check()
    if config.method != "progressive":
        raise ValueError("distill_progressive needs config.method == 'progressive'")
    device = data.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    process = _Process(data, sde, layout, config.d, generator)
    rounds = int(round(math.log2(config.teacher_steps // config.steps)))
    history: list[dict[str, Any]] = []
    bar = progress_bar(total=rounds * config.iterations, disable=not progress, desc="distill", leave=False)
    n_teacher = config.teacher_steps
    current_teacher: EpsModel = teacher
    for r in range(rounds):
        n_student = n_teacher // 2
        ts = student_grid(sde, n_teacher, config.grid).to(device)
        bar.set_description(f"distill {n_teacher}->{n_student} steps", refresh=False)
        student.train()
        optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)
        losses: list[float] = []
        for it in range(config.iterations):
            _linear_decay(optimizer, config.lr, it, config.iterations)
            i = torch.randint(n_student, (config.batch_size,), generator=generator, device=device)
            t, t_mid, t_next = ts[2 * i], ts[2 * i + 1], ts[2 * i + 2]
            x, z, given, given_dim_mask = process.draw(config.batch_size, t)
            with torch.no_grad():
                x_mid = process.ddim(current_teacher, x, t, t_mid, given, given_dim_mask, z)
                target = process.ddim(current_teacher, x_mid, t_mid, t_next, given, given_dim_mask, z)
            x_next = process.ddim(student, x, t, t_next, given, given_dim_mask, z)
            losses.append(_optimizer_step(optimizer, _landing_error(x_next, target, ~given_dim_mask), f"in round {r + 1}"))
            bar.update(1)
            if it % 50 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.3g}", refresh=False)
        record = {"teacher_steps": n_teacher, "student_steps": n_student, "loss": _tail_mean(losses)}
        history.append(record)
        if log is not None:
            log(f"round {r + 1}/{rounds}: {n_teacher} -> {n_student} steps, loss {record['loss']:.4g}")
        student.eval()
        current_teacher = _frozen(student)
        n_teacher = n_student
    bar.close()
    student.eval()
    return history


# ------------------------------------------------------------------------------- consistency
def distill_consistency(teacher: EpsModel, student: nn.Module, data: Tensor, sde: VPSDE,
                        layout: LatentLayout, config: DistillConfig, progress: bool = False,
                        log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Multistep consistency distillation of ``teacher``'s DDIM into a K-step ``student``.

    The fine grid (``config.teacher_steps`` steps) is cut into K segments by the student's grid. For
    a fine step t_n -> t_{n+1} inside the segment that ends at t_end: the student's DDIM jump
    t_n -> t_end (with gradients) is trained to match the student's (stop-gradient) jump t_{n+1} -> t_end
    from the teacher's DDIM step x_{t_{n+1}} (the boundary: when t_{n+1} = t_end the target is the
    teacher's step itself). ``config.iterations`` in total. Arguments as :func:`distill_progressive`.
    """
    config.check()
    if config.method != "consistency":
        raise ValueError("distill_consistency needs config.method == 'consistency'")
    device = data.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    process = _Process(data, sde, layout, config.d, generator)
    ts = student_grid(sde, config.teacher_steps, config.grid).to(device)
    per_segment = config.teacher_steps // config.steps
    optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)
    losses: list[float] = []
    bar = progress_bar(range(config.iterations), disable=not progress, desc="distill consistency", leave=False)
    student.train()
    for it in bar:
        _linear_decay(optimizer, config.lr, it, config.iterations)
        n = torch.randint(config.teacher_steps, (config.batch_size,), generator=generator, device=device)
        end = (n // per_segment + 1) * per_segment
        t, t_next, t_end = ts[n], ts[n + 1], ts[end]
        x, z, given, given_dim_mask = process.draw(config.batch_size, t)
        with torch.no_grad():
            x_next = process.ddim(teacher, x, t, t_next, given, given_dim_mask, z)
            target = process.ddim(student, x_next, t_next, t_end, given, given_dim_mask, z)
        jump = process.ddim(student, x, t, t_end, given, given_dim_mask, z)
        losses.append(_optimizer_step(optimizer, _landing_error(jump, target, ~given_dim_mask), f"at iteration {it}"))
        if it % 50 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3g}", refresh=False)
    student.eval()
    record = {"teacher_steps": config.teacher_steps, "student_steps": config.steps, "loss": _tail_mean(losses)}
    if log is not None:
        log(f"consistency: {config.teacher_steps} -> {config.steps} steps, loss {record['loss']:.4g}")
    return [record]


DISTILLERS = {"progressive": distill_progressive, "consistency": distill_consistency}


# ------------------------------------------------------------------------------------ fidelity
@torch.no_grad()
def fidelity(teacher: EpsModel, student: EpsModel, data: Tensor, sde: VPSDE, layout: LatentLayout,
             config: DistillConfig, n: int = 512, seed: int = 1234) -> dict[str, float]:
    """How closely the student's K-step map follows the teacher's fine DDIM map (same prior noise).

    Conditioning sets drawn from nu(d), known latents from ``data``. Returns the RMS distance per
    unknown dim from the teacher's ``teacher_steps``-step DDIM sample of the student's K-step
    sample (``student_rms``) and of the teacher's own K-step DDIM sample (``teacher_same_steps_rms``).
    """
    gen = torch.Generator(device=data.device).manual_seed(seed)
    n = min(n, data.shape[0]) if data.shape[0] else n
    idx = torch.randint(data.shape[0], (n,), generator=gen, device=data.device)
    given = sample_given_mask(n, layout.num_modalities, config.d, generator=gen, device=data.device)
    known = data[idx]
    unknown = ~layout.modality_mask(given)

    def run(model: EpsModel, steps: int) -> Tensor:
        return generate_latents(model, sde, layout, n, known=known, given=given, sampler=STUDENT_SAMPLER,
                                steps=steps, grid=config.grid, t_min=0.0, eta=0.0,
                                generator=torch.Generator(device=data.device).manual_seed(seed)).latents

    reference = run(teacher, config.teacher_steps)
    count = max(1, int(unknown.sum()))

    def rms(x: Tensor) -> float:
        return math.sqrt(float(((x - reference).square() * unknown).sum()) / count)

    return {"student_rms": rms(run(student, config.steps)),
            "teacher_same_steps_rms": rms(run(teacher, config.steps))}


# -------------------------------------------------------------------------------- run command
def distill_run(run_dir: str | Path, config: DistillConfig | None = None, name: str | None = None,
                device: str = "cpu", progress: bool = True, overwrite: bool = False, eta: float = 0.0,
                log: Callable[[str], None] | None = print, guided: bool = False) -> dict[str, Any]:
    """Distil the EMA score network of the run at ``run_dir``; saves and returns the student's record.

    ``eta``: the DDIM eta the student samples with by default (stored in its record).
    ``guided``: distil the recipe sampler's guidance (:class:`GuidedTeacher` with the weights and
    guidance options of the recipe's ``sampling`` section) instead of the plain network; the student
    then samples guided at K NFE, without guidance branches of its own.

    ``config.d`` is replaced by the run's recipe value. Raises FileNotFoundError (no run),
    CheckpointError (missing or corrupt run files, no cached latents) or ValueError (bad settings).
    """
    config = DistillConfig() if config is None else config
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    run = RunDir(run_dir)
    if not run.root.is_dir():
        raise FileNotFoundError(f"no run directory at {run.root}")
    _, recipe = load_run_recipe(run.root)
    if recipe.model.family != DEFAULT_FAMILY:
        raise ValueError(f"{run.root} is a run of model family {recipe.model.family!r}: only MLD runs "
                         "have a score network to distil")
    name = check_student_name(name or f"{config.method}-{config.steps}")
    if (students_dir(run.root) / f"{name}.json").exists() and not overwrite:
        raise ValueError(f"student {name!r} already exists in {students_dir(run.root)}: "
                         "pass --overwrite to replace it or --out to name another")
    if not run.latents("train").is_file():
        raise CheckpointError(f"the run has no cached training latents ({run.latents('train')}); "
                              "finish training it first (mmlatent train ... --resume)")
    if not run.score_net.is_file():
        raise CheckpointError(f"the run has no trained score network ({run.score_net}); "
                              "finish training it first (mmlatent train ... --resume)")
    pipe = MLDPipeline.load(run.root, device=device)
    config.d = float(pipe.recipe.diffusion.d)
    config.check(MAX_STUDENT_STEPS)
    stats = LatentStats.load(run.latent_stats)
    cached = load_latents(run.latents("train"))
    missing = [n for n in pipe.names if n not in cached]
    if missing:
        raise CheckpointError(f"the latent cache {run.latents('train')} lacks modalities {missing}")
    data = stats.concat(cached, pipe.names)
    if "present" in cached:  # incomplete training data: the teacher's starting points are complete items
        data = data[cached["present"].all(1)]
    data = data.to(device)
    if data.shape[0] == 0:
        raise CheckpointError(f"the latent cache {run.latents('train')} has no complete item")
    network = pipe.score_net.eval()
    student = copy.deepcopy(network).requires_grad_(True)
    teacher: EpsModel = network
    guidance = None
    if guided:
        plan = pipe.plan()
        if not plan.guidance:
            raise ValueError("the recipe's sampler has no guidance to distil (sampling.guidance is empty)")
        teacher = GuidedTeacher(network, pipe.sde, pipe.layout, dict(plan.guidance), dict(plan.options),
                                generator=torch.Generator(device=device).manual_seed(config.seed + 1))
        guidance = teacher.record()
    started = time.perf_counter()
    history = DISTILLERS[config.method](teacher, student, data, pipe.sde, pipe.layout, config,
                                        progress=progress, log=log)
    seconds = time.perf_counter() - started
    check = fidelity(teacher, student, data, pipe.sde, pipe.layout, config)
    info = {
        "name": name,
        "sampler": f"student:{name}",
        "method": config.method,
        "steps": config.steps,
        "nfe": config.steps,
        "student_sampler": STUDENT_SAMPLER,
        "eta": float(eta),
        "grid": config.grid,
        "t_min": 0.0,
        "teacher_steps": config.teacher_steps,
        "settings": asdict(config),
        "rounds": history,
        "fidelity": check,
        "latent_dim": pipe.layout.total_dim,
        "modalities": pipe.names,
        "config": student.config(),
        "guidance": guidance,
        "seconds": round(seconds, 1),
        "device": str(device),
    }
    save_student(run.root, name, student, info)
    return info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmlatent distill",
        description="Distil a run's EMA score network into a student that samples in <= 8 NFE, keeping "
                    "any-subset conditioning. Saves RUN/students/NAME.safetensors (+ .json); sample with "
                    "--sampler student:NAME.")
    parser.add_argument("run", help="run directory written by mmlatent train")
    parser.add_argument("--steps-student", type=int, default=4, metavar="K",
                        help=f"student steps = NFE per sample (1..{MAX_STUDENT_STEPS}; default 4)")
    parser.add_argument("--teacher-steps", type=int, default=64, metavar="N",
                        help="the teacher's fine DDIM grid (K * 2^R for progressive; default 64)")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help=f"optimiser steps per halving round (progressive; default {DistillConfig.iterations}) "
                             "or in total (consistency; default the same budget: that many per halving "
                             "that progressive would do, e.g. 6000 for 64 -> 4)")
    parser.add_argument("--method", choices=METHODS, default="progressive")
    parser.add_argument("--out", default=None, metavar="NAME", help="student name (default METHOD-K)")
    parser.add_argument("--batch-size", type=int, default=DistillConfig.batch_size)
    parser.add_argument("--lr", type=float, default=DistillConfig.lr)
    parser.add_argument("--eta", type=float, default=0.0,
                        help="DDIM eta the student samples with by default: 0 (default) follows the distilled "
                             "deterministic map; 1 re-noises like DDPM (more coherent, higher Frechet "
                             "distances at 8 steps on the quickstart)")
    parser.add_argument("--guided", action="store_true",
                        help="distil the recipe sampler's guidance (its weights, combine_guidance, joint_guidance, "
                             "guidance_interval) into the student: guided samples at K NFE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing student of that name")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``mmlatent distill RUN ...``; returns the exit code (2 on a user error, 130/143 when stopped)."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: _distill_command(args), debug=args.debug)


def _distill_command(args: argparse.Namespace) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    iterations = args.iterations
    if iterations is None:
        iterations = DistillConfig.iterations
        if args.method == "consistency" and args.steps_student >= 1 and args.teacher_steps > args.steps_student:
            iterations *= max(1, round(math.log2(args.teacher_steps / args.steps_student)))
    config = DistillConfig(method=args.method, steps=args.steps_student, teacher_steps=args.teacher_steps,
                           iterations=iterations, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    try:
        config.check(MAX_STUDENT_STEPS)
        check_run_path(args.run, must_exist=True)
        if not is_run_directory(args.run):
            raise ValueError(f"{args.run} is not an mmlatent run directory")
        # one writer per run; a signal stops at once (a student is only written when finished)
        with RunLock(args.run, "distill"), StopSignals():
            info = distill_run(args.run, config, name=args.out, device=device, progress=not args.no_progress,
                               overwrite=args.overwrite, eta=args.eta, guided=args.guided)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        raise UserError(str(error)) from error
    folder = students_dir(args.run)
    check = info["fidelity"]
    print(f"student {info['name']!r}: {info['method']}, {info['steps']} steps ({info['nfe']} NFE per sample), "
          f"{'guided, ' if info['guidance'] else ''}{info['seconds']} s")
    print(f"  RMS distance to the teacher's {info['teacher_steps']}-step DDIM sample: student "
          f"{check['student_rms']:.4f}, teacher at {info['steps']} steps {check['teacher_same_steps_rms']:.4f}")
    print(f"  wrote {folder / (info['name'] + '.safetensors')} and {folder / (info['name'] + '.json')}")
    print(f"  use: mmlatent sample {args.run} --sampler student:{info['name']} --out DIR   |   "
          f"mmlatent evaluate {args.run} --sampler student:{info['name']}")
    return 0
