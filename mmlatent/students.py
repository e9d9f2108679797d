"""Few-step students of a run, sampled like any sampler: ``sampler="student:<name>"``.

``mmlatent distill RUN`` (:mod:`mmlatent.distill`) trains a student and saves it here as
``RUN/students/<name>.safetensors`` (weights, with the network config in the metadata) and
``<name>.json`` (its record: steps, grid, eta, fidelity, ...). This module loads them back and
samples with them (:func:`student_sampler`), so that the pipeline needs nothing of the training
code; each file is checked against the run's manifest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlatent.checkpoint import (
    CheckpointError,
    load_json,
    load_tensors,
    save_json,
    save_tensors,
)
from mmlatent.diffusion import VPSDE, LatentLayout, ScoreNet, generate_latents
from mmlatent.manifest import record_files, verify_files

__all__ = ["STUDENT_PREFIX", "STUDENT_SAMPLER", "Student", "check_student_name", "list_students", "load_student",
           "save_student", "student_sampler", "students_dir"]

STUDENT_PREFIX = "student:"  # sampler names "student:<name>" run RUN/students/<name>
STUDENT_SAMPLER = "ddim"  # the student runs deterministic DDIM on its own grid (ends at t = 0)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Student:
    """A distilled student: its network and its record (``RUN/students/<name>.json``)."""

    name: str
    net: nn.Module
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.info["steps"])

    @property
    def grid(self) -> str:
        return str(self.info.get("grid", "uniform"))

    def generate(self, sde: VPSDE, layout: LatentLayout, n: int, known: Tensor | None = None,
                 given: Tensor | None = None, sampler: str | None = None, steps: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False, **options: Any):
        """:func:`~mmlatent.diffusion.generate_latents` with the student on its own grid (K NFE).

        Takes the arguments of ``generate_latents`` after ``eps_model``; ``sampler`` is ignored (the
        student runs DDIM with the record's ``eta``, 0 unless set with ``mmlatent distill --eta``;
        an ``eta`` option overrides it), ``steps`` must be None or K.
        """
        if steps is not None and int(steps) != self.steps:
            raise ValueError(f"student {self.name!r} was distilled for {self.steps} steps, not {steps}; "
                             f"leave the steps unset (or distil another one with --steps-student {steps})")
        if options.pop("guidance", None):
            raise ValueError(f"student {self.name!r} samples without guidance branches (it was distilled "
                             + ("with the recipe's guidance built in)" if self.info.get("guidance") else "unguided)"))
        options.pop("denoise_final", None)  # the grid ends at t = 0: the last step lands on the sample
        options.setdefault("eta", float(self.info.get("eta", 0.0)))
        # The engine's clipping of the clean-signal estimate stays on (its default): a big student
        # step extrapolates badly from the prior's far tail (0.8% of the samples of the closed-form
        # Gaussian test went off to |x| ~ 50 without it); on the quickstart run it changed nothing.
        return generate_latents(self.net, sde, layout, n, known=known, given=given, sampler=STUDENT_SAMPLER,
                                steps=self.steps, generator=generator, progress=progress,
                                grid=self.grid, t_min=0.0, **options)


def students_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "students"


def list_students(run_dir: str | Path) -> list[str]:
    """Names of the students saved in ``RUN/students``."""
    folder = students_dir(run_dir)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def check_student_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError(f"invalid student name {name!r}: use letters, digits, '_', '-' and '.'")
    return name


def save_student(run_dir: str | Path, name: str, net: ScoreNet, info: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``RUN/students/<name>.safetensors`` then ``<name>.json`` (each atomically)."""
    folder = students_dir(run_dir)
    weights, record = folder / f"{check_student_name(name)}.safetensors", folder / f"{name}.json"
    save_tensors(weights, net.state_dict(), {"config": json.dumps(net.config()), "student": json.dumps(info)})
    save_json(record, info)
    if (Path(run_dir) / "manifest.json").is_file():
        record_files(run_dir, [weights, record])
    return weights, record


def load_student(run_dir: str | Path, name: str, device: str | torch.device = "cpu") -> Student:
    """Load ``RUN/students/<name>`` (raises ValueError naming the available students when missing)."""
    folder = students_dir(run_dir)
    record = folder / f"{check_student_name(name)}.json"
    if not record.is_file():
        available = ", ".join(list_students(run_dir)) or "none"
        raise ValueError(f"no student {name!r} in {folder} (available: {available}); "
                         f"make one with `mmlatent distill {run_dir} --out {name}`")
    verify_files(run_dir, [record, folder / f"{name}.safetensors"])
    info = load_json(record, f"student {name!r} record")
    tensors = load_tensors(folder / f"{name}.safetensors", f"student {name!r} weights")
    try:
        net = ScoreNet(**info["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"student {name!r} record is not a student's ({error})") from None
    try:
        net.load_state_dict(tensors)
    except RuntimeError as error:
        raise CheckpointError(f"student {name!r} weights do not match its record: "
                              f"{str(error).splitlines()[0]}") from None
    net.eval().requires_grad_(False)
    return Student(name, net.to(device), info)


def student_sampler(pipe: Any, sampler: str, steps: int | None) -> tuple[Callable[..., Any], int]:
    """For ``MLDPipeline.generate(sampler="student:<name>")``: the sampling function and its steps.

    Returns ``(fn, K)`` where ``fn(sde, layout, n, known=, given=, sampler=, steps=, generator=,
    progress=, **options)`` generates with the student (loaded once per pipeline and cached).
    """
    name = sampler.split(":", 1)[1]
    if pipe.run_dir is None:
        raise ValueError("students live in a run directory; this pipeline was not loaded from one")
    cache = pipe.__dict__.setdefault("_students", {})
    if name not in cache:
        student = load_student(pipe.run_dir, name, device=pipe.device)
        if student.info.get("latent_dim") not in (None, pipe.layout.total_dim):
            raise CheckpointError(f"student {name!r} was distilled for another latent layout")
        cache[name] = student
    student = cache[name]
    if steps is not None and int(steps) != student.steps:
        raise ValueError(f"student {name!r} was distilled for {student.steps} steps, not {steps}")
    return student.generate, student.steps
