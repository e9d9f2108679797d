"""Golden numbers of the diffusion engine: fixed seeds and a fixed small network give the same
latents, losses, distilled students and SDE values before and after a refactor (DESIGN.md section 6).

What is pinned (``golden_numbers.safetensors`` next to this file, float32/float64 as produced,
counts as int64; no pickle):

- ``sampler/<name>/<setting>/{latents,nfe,calls,clipped}``: :func:`generate_latents` with EVERY
  registered sampler (enumerated from ``SAMPLERS``) in the common settings (joint, conditional on
  one or two modalities, guidance per modality, ``combine_guidance``, ``guidance_interval``,
  ``joint_guidance``, per-row conditioning, ``denoise_final``, ``clip_denoised``, the time grids,
  ``joint_steps``, float64) and in the sampler's own non-default options (``SAMPLER_SETTINGS``),
  with the fixed ScoreNet inside :class:`AnchoredEps` (so that clipping does not flatten the
  samples) and, in three ``bare_net_*`` settings, the bare ScoreNet;
- ``loss/...``: :func:`masked_multitime_loss` over every combination of ``d``, ``per_batch``,
  ``absent_prob``, ``t_sampling``, ``weighting`` and ``eps``, plus fixed given/t/noise/absent
  inputs, the per-sample terms of a few settings and the parameter gradients of two;
- ``distill/<method>/<setting>/...``: one short run (2-3 optimiser steps, or 2 rounds of 2) of every
  distillation method in ``mmlatent.distill.DISTILLERS``: the student's parameters afterwards, the
  loss history, every call of the teacher (inputs and outputs: the teacher targets), the
  ``fidelity`` figures and a sample of the student;
- ``sde/...``: the VP-SDE's functions on fixed inputs (two parameter sets, several time shapes);
- ``schedule/...``: time grids, the RePaint walk, conditioning-mask draws and multi-time vectors.

Every quantity is recomputed from scratch by :func:`compute_golden` (one function per group) and
compared with the stored file bit for bit (``torch.equal``; a NaN must stay a NaN at the same
place). Only the keys matched by a pattern in ``TOLERANCES`` are compared with an absolute
tolerance (none today). A failure names each changed quantity (sampler and setting, loss options,
...), the largest absolute difference, where it is and both values.

Regenerating (rewrites the stored file from the current code)::

    .venv/bin/python tests/diffusion/test_golden_numbers.py --regenerate

Do this ONLY when a change of the numbers is intended, and explain in the same commit why the
numbers moved (which quantities, and that the new values are right, e.g. checked against the
closed-form Gaussian tests). A pure refactor must pass without regenerating; if it reorders
floating-point operations on purpose (each failure line says when its difference is below 1e-6), add
the affected key patterns to ``TOLERANCES`` with the reason instead of regenerating. A new sampler
or distillation method makes this test fail until its settings and golden numbers are added here.
Without ``--regenerate`` the script prints every difference (exit code 1 when there is one).

Bit-identity holds on one torch build and one CPU kind with one torch thread (the test runs on
one thread; ``--regenerate`` too); the file's metadata records the torch version and CPU capability
it was made with, and a failure message mentions it when they differ from the running ones.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import itertools
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mmlatent.diffusion import (
    SAMPLERS,
    VPSDE,
    LatentLayout,
    ScoreNet,
    generate_latents,
    given_mask_probability,
    masked_multitime_loss,
    masked_multitime_loss_terms,
    multitime_vector,
    repaint_nfe,
    repaint_schedule,
    sample_given_mask,
    time_grid,
)
from mmlatent.distill import DISTILLERS, DistillConfig, Student, fidelity

GOLDEN = Path(__file__).resolve().with_name("golden_numbers.safetensors")

#: Key patterns (fnmatch) compared with ``abs(fresh - stored) <= atol`` instead of bit for bit,
#: each with its reason. Empty: today every quantity is reproduced exactly. Add an entry (e.g.
#: ``"sampler/euler/*/latents": 1e-6``) only for a change shown to be rounding-level.
TOLERANCES: dict[str, float] = {}
ATOL = 1e-6  # the tolerance to use in TOLERANCES for a rounding-level reordering

# ----------------------------------------------------------------------------- fixed problem
LAYOUT = LatentLayout([2, 3, 2], names=["a", "b", "c"])  # 3 modalities: 2 can be given, 1 generated
SDE = VPSDE()
N = 4  # samples per sampler run
STEPS = 4  # grid steps per sampler run (unless a setting says otherwise)
NET_SEED, DATA_SEED, SAMPLE_SEED, LOSS_SEED = 0, 11, 1234, 5
MIXED_ROWS = torch.tensor(  # per-row conditioning: joint, a given, b+c given, a+b given
    [[False, False, False], [True, False, False], [False, True, True], [True, True, False]]
)


def make_net(dtype: torch.dtype = torch.float32) -> ScoreNet:
    """The fixed ScoreNet (D = 7, M = 3, width 32, 1 block, time embedding 16), eval mode.

    Every parameter is drawn explicitly from one seeded generator, in sorted name order (not left to
    torch's default initialisers), INCLUDING the zero-initialised output layer: otherwise every
    eps would be 0 and the samplers' outputs trivial. Weights ~ N(0, 1/fan_in), biases
    ~ N(0, 0.1^2), LayerNorm scales ~ 1 + N(0, 0.1^2).
    """
    net = ScoreNet(LAYOUT.total_dim, LAYOUT.num_modalities, width=32, blocks=1, time_embed=16)
    gen = torch.Generator().manual_seed(NET_SEED)
    with torch.no_grad():
        for name, p in sorted(net.named_parameters()):
            z = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("bias"):
                value = 0.1 * z
            elif p.ndim == 1:  # LayerNorm scale
                value = 1.0 + 0.1 * z
            else:
                value = z / math.sqrt(p.shape[1])
            p.copy_(value)
    return net.to(dtype).eval()


class AnchoredEps(nn.Module):
    """The model the samplers are pinned with: ``eps(x, tau) = sigma x + alpha * scale * net(x, tau)``
    with alpha, sigma at each dim's own time (tau expanded over the layout) and ``net`` the fixed
    ScoreNet.

    ``sigma x`` is the exact noise prediction of N(0, I) data; the ScoreNet's output, scaled by
    alpha, perturbs it. The predicted clean latent ``x0 = (x - sigma eps) / alpha = alpha x -
    sigma scale net`` then stays O(1) at every time. With a bare random network x0 is ~150 times
    its output at t = T, the samplers' default clipping (|x0| <= 5) clamps nearly every entry and
    nearly every sample ends at +-5, which would hide changes of the earlier steps (the bare
    network is pinned too, in the ``bare_net_*`` settings, for the clipping path).
    """

    def __init__(self, net: ScoreNet, scale: float = 0.5):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: Tensor, tau: Tensor) -> Tensor:
        t = LAYOUT.expand(tau.to(x.dtype))
        return SDE.sigma(t) * x + SDE.alpha(t) * self.scale * self.net(x, tau)


def fixed_tensors() -> dict[str, Tensor]:
    """Fixed inputs: known latents, loss batch, distillation data, SDE inputs (one generator)."""
    gen = torch.Generator().manual_seed(DATA_SEED)
    d = LAYOUT.total_dim
    return {
        "known": 1.2 * torch.randn(N, d, generator=gen),
        "loss_z": torch.randn(8, d, generator=gen),
        "loss_t": torch.rand(8, generator=gen) * 0.98 + 0.01,
        "loss_noise": torch.randn(8, d, generator=gen),
        "distill_data": torch.randn(16, d, generator=gen) * 0.8 + 0.1,
        "sde_x": torch.randn(8, d, generator=gen),
        "sde_eps": torch.randn(8, d, generator=gen),
        "sde_t_matrix": torch.rand(8, d, generator=gen),
        "sde_x3d": torch.randn(8, d, 2, generator=gen),
    }


def _put(out: dict[str, Tensor], key: str, value: Any) -> None:
    """Store ``value`` under ``key``: tensors as they are (detached, contiguous copies), Python
    ints as int64, floats as float64, bools as bool, lists of numbers as 1-d tensors."""
    if key in out:
        raise KeyError(f"duplicate golden key {key}")
    if isinstance(value, Tensor):
        tensor = value.detach().cpu().clone().contiguous()
    elif isinstance(value, bool):
        tensor = torch.tensor(value)
    elif isinstance(value, int):
        tensor = torch.tensor(value, dtype=torch.int64)
    elif isinstance(value, float):
        tensor = torch.tensor(value, dtype=torch.float64)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        tensor = torch.tensor(value, dtype=torch.int64)
    elif isinstance(value, (list, tuple)):
        tensor = torch.tensor([float(v) for v in value], dtype=torch.float64)
    else:
        raise TypeError(f"{key}: cannot store {type(value).__name__}")
    out[key] = tensor


# ----------------------------------------------------------------------------- 1. samplers
#: Settings every sampler runs in, with the AnchoredEps model unless ``model="bare"`` (the bare
#: ScoreNet). ``given``: modality letters ("" = joint) or "rows" (MIXED_ROWS); ``known="row"`` passes
#: one (D,) latent broadcast to all samples; ``dtype`` float64 uses a float64 copy of the model;
#: every other key goes to generate_latents as it is.
COMMON_SETTINGS: dict[str, dict[str, Any]] = {
    "joint": {},
    "given_a": {"given": "a"},
    "given_bc": {"given": "bc"},
    "guided": {"given": "ab", "guidance": {0: 1.5, 1: 0.5, 2: 3.0}},  # c is not given: no branch
    "guided_by_name": {"given": "c", "guidance": {"c": -0.75}},
    "combine_guidance": {"given": "ab", "guidance": {"a": 0.5, "b": -1.5}, "combine_guidance": True},
    "guidance_interval": {"given": "ab", "guidance": {"a": 1.0, "b": 2.0}, "guidance_interval": (0.3, 0.8)},
    "joint_guidance": {"joint_guidance": {"a": 1.0, "c": 0.5}},
    "mixed_rows": {"given": "rows", "guidance": {"a": 1.0, "c": 0.5}, "joint_guidance": {"b": 0.7}},
    "mixed_rows_combined": {"given": "rows", "guidance": {"a": 1.0, "b": 2.0, "c": 0.5},
                            "combine_guidance": True, "guidance_interval": (0.0, 0.6)},
    "denoise_final": {"given": "c", "denoise_final": True},
    "denoise_final_t_min": {"given": "c", "denoise_final": True, "t_min": 0.05},
    "tight_clip": {"given": "a", "clip_denoised": 0.5},
    "grid_logsnr": {"grid": "logsnr", "t_min": 2e-3},
    "grid_karras": {"given": "b", "grid": "karras", "rho": 5.0},
    "joint_steps": {"joint_steps": 3},
    "float64": {"given": "a", "dtype": torch.float64},
    "known_broadcast": {"given": "b", "known": "row"},
    # the bare ScoreNet (see AnchoredEps): clipping active at most evaluations
    "bare_net_joint": {"model": "bare"},
    "bare_net_mixed_rows": {"model": "bare", "given": "rows", "guidance": {"a": 1.0, "c": 0.5},
                            "joint_guidance": {"b": 0.7}},
    "bare_net_no_clip": {"model": "bare", "given": "a", "clip_denoised": None},
}

#: Per sampler: ``"base"`` options added to every setting of that sampler (a short RePaint walk),
#: and its own settings (non-default option values), on top of COMMON_SETTINGS.
SAMPLER_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "euler_maruyama": {
        "t_min": {"given": "a", "t_min": 0.01},
        "steps5": {"steps": 5},
    },
    "repaint": {
        "base": {"jump_length": 2, "resamplings": 2},
        "renoise_exact": {"renoise": "exact"},
        "reverse_ddpm": {"reverse_step": "ddpm", "given": "a"},
        "reverse_ddpm_large": {"reverse_step": "ddpm", "variance": "large", "given": "a"},
        "exact_ddpm": {"renoise": "exact", "reverse_step": "ddpm", "given": "bc"},
        "long_walk": {"steps": 5, "jump_length": 2, "resamplings": 3},
        "default_walk": {"jump_length": 10, "resamplings": 10},  # no jump fits into 4 steps
    },
    "repaint_ddpm": {
        "variance_large": {"variance": "large", "given": "a"},
        "jumps": {"jump_length": 1, "resamplings": 3},
    },
    "euler": {
        "t_min0": {"t_min": 0.0},
    },
    "heun": {
        "t_min0": {"t_min": 0.0, "given": "a"},  # last step Euler: 2N - 1 NFE
    },
    "ddim": {
        "eta0": {"eta": 0.0, "given": "a"},
        "eta1": {"eta": 1.0},
        "eta1_given": {"eta": 1.0, "given": "bc"},
        "eta_half": {"eta": 0.5, "given": "a"},
        "eta1_t_min0": {"eta": 1.0, "t_min": 0.0},
    },
    "dpm_solver++": {
        "no_lower_order_final": {"lower_order_final": False},
        "grid_uniform": {"grid": "uniform", "given": "a"},
        "steps5": {"steps": 5, "lower_order_final": False, "given": "bc"},
    },
    "ddpm": {
        "variance_large": {"variance": "large"},
        "variance_large_given": {"variance": "large", "given": "bc"},
        "t_min0": {"t_min": 0.0, "given": "a"},
    },
    "pc": {
        "predictor_em": {"predictor": "euler_maruyama"},
        "correctors2_snr": {"corrector_steps": 2, "snr": 0.3, "given": "a"},
        "no_corrector": {"corrector_steps": 0},
        "variance_large": {"variance": "large", "given": "bc"},
        "t_min0": {"t_min": 0.0},
    },
    "churn": {
        "no_churn": {"s_churn": 0.0},
        "strong_churn": {"s_churn": 4.0},  # gamma capped at sqrt(2) - 1
        "s_noise": {"s_noise": 0.5, "given": "a"},
        "window": {"s_churn": 2.0, "s_tmin": 1.0, "s_tmax": 20.0},  # churns at t = 0.75 and 0.5 only
        "order1": {"order": 1, "given": "bc"},
        "t_min0": {"t_min": 0.0},
    },
}


def sampler_settings(sampler: str) -> dict[str, dict[str, Any]]:
    """Every setting ``sampler`` is pinned in: the common ones and its own, with its base options."""
    own = dict(SAMPLER_SETTINGS.get(sampler, {}))
    base = own.pop("base", {})
    clash = set(own) & set(COMMON_SETTINGS)
    if clash:
        raise ValueError(f"sampler {sampler!r}: settings {sorted(clash)} shadow common ones")
    return {name: {**base, **options} for name, options in {**COMMON_SETTINGS, **own}.items()}


def compute_sampler(sampler: str) -> dict[str, Tensor]:
    """Golden numbers of one registered sampler, through :func:`generate_latents` only."""
    out: dict[str, Tensor] = {}
    models = {
        ("anchored", torch.float32): AnchoredEps(make_net()).eval(),
        ("anchored", torch.float64): AnchoredEps(make_net(torch.float64)).eval(),
        ("bare", torch.float32): make_net(),
        ("bare", torch.float64): make_net(torch.float64),
    }
    known_all = fixed_tensors()["known"]
    for setting, options in sampler_settings(sampler).items():
        options = dict(options)
        spec = options.pop("given", "")
        known_spec = options.pop("known", "all")
        dtype = options.pop("dtype", torch.float32)
        steps = options.pop("steps", STEPS)
        model = models[options.pop("model", "anchored"), dtype]
        if spec == "rows":
            given = MIXED_ROWS
        elif spec:
            given = LAYOUT.mask_from_names(list(spec))[0]
        else:
            given = None
        known = None
        if given is not None:
            known = known_all[0] if known_spec == "row" else known_all
        result = generate_latents(
            model, SDE, LAYOUT, N, known=known, given=given, sampler=sampler, steps=steps,
            generator=torch.Generator().manual_seed(SAMPLE_SEED), dtype=dtype, **options,
        )
        prefix = f"sampler/{sampler}/{setting}"
        _put(out, f"{prefix}/latents", result.latents)
        _put(out, f"{prefix}/nfe", int(result.nfe))
        _put(out, f"{prefix}/calls", int(result.calls))
        _put(out, f"{prefix}/clipped", int(result.clipped))
    return out


# ----------------------------------------------------------------------------- 2. loss
LOSS_GRID = {
    "d": (0.0, 0.5, 1.0),
    "per_batch": (False, True),
    "absent_prob": (0.0, 0.3),
    "t_sampling": ("uniform", "logsnr"),
    "weighting": ("none", "likelihood", "min_snr"),
    "eps": (1e-3, 0.05),
}


def _loss_key(options: Mapping[str, Any]) -> str:
    return "loss/" + "/".join(f"{k}={v}" for k, v in options.items())


def compute_loss() -> dict[str, Tensor]:
    """masked_multitime_loss over LOSS_GRID (fresh generator per value), fixed inputs, terms, grads."""
    out: dict[str, Tensor] = {}
    net, net64 = make_net(), make_net(torch.float64)
    fixed = fixed_tensors()
    z, t, noise = fixed["loss_z"], fixed["loss_t"], fixed["loss_noise"]
    with torch.no_grad():
        for values in itertools.product(*LOSS_GRID.values()):
            options = dict(zip(LOSS_GRID, values))
            gen = torch.Generator().manual_seed(LOSS_SEED)
            kwargs = {("t_eps" if k == "eps" else k): v for k, v in options.items()}  # key name kept: stored
            _put(out, _loss_key(options), masked_multitime_loss(net, z, SDE, LAYOUT, generator=gen, **kwargs))

    given = torch.tensor([[False, False, False], [True, False, False], [False, True, False], [False, False, True],
                          [True, True, False], [False, True, True], [True, False, True], [False, False, False]])
    absent = torch.tensor([[False, True, False], [False, False, True], [True, False, False], [False, False, False],
                           [False, False, True], [True, False, False], [False, True, False], [True, True, False]])
    extra: dict[str, dict[str, Any]] = {  # inputs fixed by the caller, absent modalities, float64
        "fixed_given_t_noise": {"given": given, "t": t, "noise": noise},
        "fixed_given_t_noise_likelihood_logsnr": {"given": given, "t": t, "noise": noise,
                                                   "weighting": "likelihood", "t_sampling": "logsnr"},
        "given_broadcast": {"given": torch.tensor([True, False, False]), "weighting": "min_snr"},
        "absent_fixed": {"absent": absent, "d": 0.7},
        "absent_fixed_and_prob": {"absent": absent, "absent_prob": 0.5, "d": 0.7, "per_batch": True},
        "absent_with_given": {"given": given, "absent": absent, "t": t},
        "float64": {"d": 0.5, "absent_prob": 0.3, "weighting": "likelihood", "float64": True},
    }
    terms_settings = ("fixed_given_t_noise_likelihood_logsnr", "absent_fixed_and_prob", "float64")
    grad_settings = ("absent_fixed_and_prob", "fixed_given_t_noise_likelihood_logsnr")
    for name, options in extra.items():
        options = dict(options)
        model, batch = (net64, z.double()) if options.pop("float64", False) else (net, z)
        if "t" in options and batch.dtype == torch.float64:
            options["t"], options["noise"] = options["t"].double(), options["noise"].double()
        gen = torch.Generator().manual_seed(LOSS_SEED)
        model.zero_grad(set_to_none=True)
        terms = masked_multitime_loss_terms(model, batch, SDE, LAYOUT, generator=gen, **options)
        gen = torch.Generator().manual_seed(LOSS_SEED)
        with torch.no_grad():
            _put(out, f"loss/{name}", masked_multitime_loss(model, batch, SDE, LAYOUT, generator=gen, **options))
        if name in terms_settings:
            for field in ("loss", "per_sample", "given", "t", "omega", "tau", "absent", "weight"):
                value = getattr(terms, field)
                if value is not None:
                    _put(out, f"loss_terms/{name}/{field}", value)
        if name in grad_settings:
            terms.loss.backward()
            for pname, p in sorted(model.named_parameters()):
                _put(out, f"loss_grad/{name}/{pname}", p.grad)
            model.zero_grad(set_to_none=True)
    return out


# ----------------------------------------------------------------------------- 3. distillation
#: Tiny settings per distillation method (``mmlatent.distill.DISTILLERS``).
DISTILL_SETTINGS: dict[str, dict[str, DistillConfig]] = {
    "progressive": {  # 2 halving rounds of 2 iterations each
        "uniform": DistillConfig(method="progressive", steps=2, teacher_steps=8, iterations=2, batch_size=8,
                                 lr=1e-3, d=0.5, grid="uniform", seed=3),
        "karras_d1": DistillConfig(method="progressive", steps=1, teacher_steps=4, iterations=2, batch_size=8,
                                   lr=1e-3, d=1.0, grid="karras", seed=4),
    },
    "consistency": {
        "uniform": DistillConfig(method="consistency", steps=2, teacher_steps=8, iterations=3, batch_size=8,
                                 lr=1e-3, d=0.5, grid="uniform", seed=3),
        "karras_d0": DistillConfig(method="consistency", steps=2, teacher_steps=6, iterations=2, batch_size=8,
                                   lr=1e-3, d=0.0, grid="karras", seed=4),
    },
}


class _RecordingTeacher:
    """The teacher as a plain eps callable that records every call: ``(x, tau) -> eps``."""

    def __init__(self, net: ScoreNet):
        self.net, self.x, self.tau, self.eps = net, [], [], []

    def __call__(self, x: Tensor, tau: Tensor) -> Tensor:
        eps = self.net(x, tau)
        self.x.append(x.detach().clone())
        self.tau.append(tau.detach().clone())
        self.eps.append(eps.detach().clone())
        return eps


def compute_distill(method: str) -> dict[str, Tensor]:
    """One short run of ``DISTILLERS[method]`` per setting (the function ``distill_run`` calls; the
    run-directory wrapper itself needs a trained run), then the student's numbers."""
    out: dict[str, Tensor] = {}
    fixed = fixed_tensors()
    data, known = fixed["distill_data"], fixed["known"]
    for setting, config in DISTILL_SETTINGS.get(method, {}).items():
        config = copy.deepcopy(config)
        net = make_net()
        teacher = _RecordingTeacher(net)
        student = copy.deepcopy(net).requires_grad_(True)  # as distill_run: a copy of the teacher
        history = DISTILLERS[method](teacher, student, data, SDE, LAYOUT, config, progress=False, log=None)
        prefix = f"distill/{method}/{setting}"
        _put(out, f"{prefix}/losses", [record["loss"] for record in history])
        _put(out, f"{prefix}/student_steps", [int(record["student_steps"]) for record in history])
        _put(out, f"{prefix}/teacher_x", torch.cat(teacher.x))
        _put(out, f"{prefix}/teacher_tau", torch.cat(teacher.tau))
        _put(out, f"{prefix}/teacher_eps", torch.cat(teacher.eps))
        for name, value in sorted(student.state_dict().items()):
            _put(out, f"{prefix}/student/{name}", value)
        with torch.no_grad():
            probe_x = fixed["sde_x"]
            probe_tau = torch.linspace(0.0, 1.0, probe_x.shape[0])[:, None].expand(-1, LAYOUT.num_modalities)
            _put(out, f"{prefix}/student_probe", student(probe_x, probe_tau.contiguous()))
        check = fidelity(net, student, data, SDE, LAYOUT, config, n=8, seed=77)
        _put(out, f"{prefix}/fidelity", [check["student_rms"], check["teacher_same_steps_rms"]])
        record = {"steps": config.steps, "grid": config.grid, "eta": 0.0}
        given_a = LAYOUT.mask_from_names(["a"])[0]
        for name, given, options in (("joint", None, {}), ("given_a", given_a, {}),
                                     ("given_a_no_clip", given_a, {"clip_denoised": None})):
            result = Student(f"{method}-{setting}", student, record).generate(
                SDE, LAYOUT, N, known=known if given is not None else None, given=given,
                generator=torch.Generator().manual_seed(SAMPLE_SEED), **options)
            _put(out, f"{prefix}/sample_{name}/latents", result.latents)
            _put(out, f"{prefix}/sample_{name}/nfe", int(result.nfe))
    return out


# ----------------------------------------------------------------------------- 4. SDE
def compute_sde() -> dict[str, Tensor]:
    """VPSDE's functions on fixed inputs: two parameter sets, float/0-d/(B,)/(B, D) times, f32/f64."""
    out: dict[str, Tensor] = {}
    fixed = fixed_tensors()
    x, eps, t_matrix, x3d = fixed["sde_x"], fixed["sde_eps"], fixed["sde_t_matrix"], fixed["sde_x3d"]
    t32 = torch.tensor([0.0, 1e-5, 1e-3, 0.1, 0.37, 0.5, 0.9, 1.0])
    times: dict[str, Any] = {
        "float": 0.37, "float0": 0.0, "tensor0d": torch.tensor(0.37), "vec32": t32, "vec64": t32.double(),
        "int": torch.tensor([0, 1]), "matrix": t_matrix,
    }
    sdes = {"default": VPSDE(), "custom": VPSDE(beta_min=0.05, beta_max=12.0, T=0.9)}
    for sname, sde in sdes.items():
        p = f"sde/{sname}"
        for tname, t in times.items():
            for fn in ("beta", "log_alpha", "alpha", "sigma", "log_snr", "diffusion"):
                _put(out, f"{p}/{fn}/{tname}", getattr(sde, fn)(t))
        for tname in ("vec32", "vec64", "matrix"):
            t = times[tname][1:] if tname != "matrix" else times[tname]  # t > 0: finite log-SNR
            _put(out, f"{p}/t_from_log_alpha/{tname}", sde.t_from_log_alpha(sde.log_alpha(t)))
            _put(out, f"{p}/t_from_log_snr/{tname}", sde.t_from_log_snr(sde.log_snr(t)))
            _put(out, f"{p}/t_from_sigma_ratio/{tname}", sde.t_from_sigma_ratio(sde.sigma(t) / sde.alpha(t)))
        _put(out, f"{p}/t_from_log_snr/float", sde.t_from_log_snr(-2.5))
        _put(out, f"{p}/t_from_log_alpha/float", sde.t_from_log_alpha(-0.7))
        _put(out, f"{p}/t_from_sigma_ratio/float", sde.t_from_sigma_ratio(3.0))
        states = {  # (state name, x, eps, t name, t)
            "x32_vec": (x, eps, t32), "x32_float": (x, eps, 0.37), "x32_tensor0d": (x, eps, torch.tensor(0.37)),
            "x32_matrix": (x, eps, t_matrix), "x64_vec64": (x.double(), eps.double(), t32.double()),
            "x64_vec32": (x.double(), eps.double(), t32), "x3d_vec": (x3d, x3d.flip(-1), t32),
        }
        for name, (xs, es, t) in states.items():
            mean, std = sde.marginal_prob(xs, t)
            _put(out, f"{p}/marginal_prob/{name}/mean", mean)
            _put(out, f"{p}/marginal_prob/{name}/std", std)
            _put(out, f"{p}/perturb/{name}", sde.perturb(xs, t, es))
            _put(out, f"{p}/drift/{name}", sde.drift(xs, t))
            drift, diffusion = sde.sde(xs, t)
            _put(out, f"{p}/sde/{name}/drift", drift)
            _put(out, f"{p}/sde/{name}/diffusion", diffusion)
            t_pos = t.clamp_min(1e-5) if isinstance(t, Tensor) else t  # -eps / 0 at t = 0 is not pinned
            _put(out, f"{p}/score_from_eps/{name}", sde.score_from_eps(es, t_pos))
            _put(out, f"{p}/denoise/{name}", sde.denoise(xs, es, t))
        pairs = {"vec32": (0.5 * t32, t32), "vec64": (0.5 * t32.double(), t32.double()), "float": (0.2, 0.6),
                 "same": (t32, t32), "broadcast": (0.1 * t32[:4, None], t32[None, 4:])}  # s <= t
        for name, (s, t) in pairs.items():
            a, std = sde.transition(s, t)
            _put(out, f"{p}/transition/{name}/a", a)
            _put(out, f"{p}/transition/{name}/std", std)
        _put(out, f"{p}/prior_sampling/f32", sde.prior_sampling((3, 7), generator=torch.Generator().manual_seed(9)))
        _put(out, f"{p}/prior_sampling/f64", sde.prior_sampling(torch.Size([2, 5]), dtype=torch.float64,
                                                                generator=torch.Generator().manual_seed(9)))
        _put(out, f"{p}/prior_logp/x32", sde.prior_logp(x))
        _put(out, f"{p}/prior_logp/x3d", sde.prior_logp(x3d))
        _put(out, f"{p}/prior_logp/x64", sde.prior_logp(x.double()))
    return out


# ----------------------------------------------------------------------------- 5. schedules, masks
def compute_schedule() -> dict[str, Tensor]:
    """Time grids, the RePaint walk, conditioning-mask draws and multi-time vectors."""
    out: dict[str, Tensor] = {}
    for sname, sde in {"default": VPSDE(), "custom": VPSDE(beta_min=0.05, beta_max=12.0, T=0.9)}.items():
        for kind in ("uniform", "logsnr", "karras"):
            _put(out, f"schedule/time_grid/{sname}/{kind}/5", time_grid(sde, 5, kind=kind))
            _put(out, f"schedule/time_grid/{sname}/{kind}/7_tmin_tmax", time_grid(sde, 7, kind=kind, t_min=0.02,
                                                                                  t_max=0.8, rho=3.0))
        _put(out, f"schedule/time_grid/{sname}/uniform/4_tmin0", time_grid(sde, 4, t_min=0.0))
        _put(out, f"schedule/time_grid/{sname}/karras/4_tmin0", time_grid(sde, 4, kind="karras", t_min=0.0))
    for steps, jump, resamplings in ((4, 2, 2), (5, 2, 3), (12, 3, 2), (250, 10, 10)):
        name = f"{steps}_{jump}_{resamplings}"
        _put(out, f"schedule/repaint_schedule/{name}", repaint_schedule(steps, jump, resamplings))
        _put(out, f"schedule/repaint_nfe/{name}", repaint_nfe(steps, jump, resamplings))
    for name, (batch, m, d, per_batch) in {"b8_m3": (8, 3, 0.5, False), "b8_m3_per_batch": (8, 3, 0.5, True),
                                           "b6_m10": (6, 10, 0.7, False), "b5_m1": (5, 1, 0.5, False),
                                           "b5_m2_d1": (5, 2, 1.0, False)}.items():
        given = sample_given_mask(batch, m, d, generator=torch.Generator().manual_seed(LOSS_SEED), per_batch=per_batch)
        _put(out, f"schedule/sample_given_mask/{name}", given)
        _put(out, f"schedule/given_mask_probability/{name}", given_mask_probability(given, d))
    _put(out, "schedule/multitime_vector/scalar", multitime_vector(torch.tensor(0.4), MIXED_ROWS))
    _put(out, "schedule/multitime_vector/float", multitime_vector(0.4, MIXED_ROWS))
    _put(out, "schedule/multitime_vector/vec64",
         multitime_vector(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), MIXED_ROWS))
    return out


# ----------------------------------------------------------------------------- all of it
def registered_samplers() -> list[str]:
    return sorted(SAMPLERS)


def compute_golden() -> dict[str, Tensor]:
    """Every golden quantity, computed from scratch with the current code."""
    out: dict[str, Tensor] = {}
    for sampler in registered_samplers():
        out.update(compute_sampler(sampler))
    out.update(compute_loss())
    for method in sorted(DISTILLERS):
        out.update(compute_distill(method))
    out.update(compute_sde())
    out.update(compute_schedule())
    return out


def environment() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu_capability": str(torch.backends.cpu.get_cpu_capability())}


def _tolerance(key: str) -> float:
    return max((atol for pattern, atol in TOLERANCES.items() if fnmatch.fnmatchcase(key, pattern)), default=0.0)


def _difference(key: str, fresh: Tensor, stored: Tensor) -> str | None:
    """None when ``fresh`` matches ``stored`` (bit for bit, or within the key's tolerance), else
    a line naming the key, the largest absolute difference, where it is and both values."""
    if fresh.dtype != stored.dtype or fresh.shape != stored.shape:
        return (f"{key}: now {fresh.dtype} {tuple(fresh.shape)}, golden {stored.dtype} {tuple(stored.shape)}")
    atol = _tolerance(key)
    if not fresh.is_floating_point():
        if torch.equal(fresh, stored):
            return None
        diff = (fresh.long() - stored.long()).abs()
        where = tuple(torch.nonzero(diff == diff.max())[0].tolist())
        return (f"{key}: max abs diff {int(diff.max())} at {where}: now {fresh[where].tolist()}, "
                f"golden {stored[where].tolist()}")
    nan_f, nan_s = torch.isnan(fresh), torch.isnan(stored)
    same = torch.equal(nan_f, nan_s) and torch.equal(torch.where(nan_f, 0, fresh), torch.where(nan_s, 0, stored))
    if same:
        return None
    f64, s64 = fresh.double(), stored.double()
    diff = torch.where(f64 == s64, torch.zeros((), dtype=torch.float64), (f64 - s64).abs())
    diff = torch.where(nan_f ^ nan_s, torch.full((), math.inf, dtype=torch.float64), diff.nan_to_num(0.0, math.inf))
    worst = float(diff.max())
    if atol > 0 and worst <= atol and torch.equal(nan_f, nan_s):
        return None
    where = tuple(torch.nonzero(diff == diff.max())[0].tolist())
    note = f" (tolerance {atol:g})" if atol else (" (within 1e-6: rounding-level?)" if worst <= ATOL else "")
    return (f"{key}: max abs diff {worst:.3g}{note} at {where}: now {f64[where].item()!r}, "
            f"golden {s64[where].item()!r}")


def compare(fresh: Mapping[str, Tensor], stored: Mapping[str, Tensor], prefix: str) -> list[str]:
    """Every difference between ``fresh`` and the stored keys under ``prefix``, one line each."""
    stored_keys = {k for k in stored if k.startswith(prefix)}
    fresh_keys = {k for k in fresh if k.startswith(prefix)}
    problems = [f"{k}: golden but no longer computed" for k in sorted(stored_keys - fresh_keys)]
    problems += [f"{k}: computed but has no golden value (regenerate if it is new)"
                 for k in sorted(fresh_keys - stored_keys)]
    for key in sorted(fresh_keys & stored_keys):
        line = _difference(key, fresh[key], stored[key])
        if line is not None:
            problems.append(line)
    return problems


# ----------------------------------------------------------------------------- the tests
def _stored_keys() -> list[str]:
    if not GOLDEN.is_file():
        return []
    with safe_open(str(GOLDEN), framework="pt") as f:
        return list(f.keys())


def _stored_groups(group: str) -> set[str]:
    return {k.split("/")[1] for k in _stored_keys() if k.startswith(f"{group}/")}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread (bit-identity of CPU kernels), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, Tensor], dict[str, str]]:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: run `python tests/diffusion/test_golden_numbers.py --regenerate`")
    with safe_open(str(GOLDEN), framework="pt") as f:
        metadata = f.metadata() or {}
    return load_file(str(GOLDEN)), metadata


def _check(fresh: Mapping[str, Tensor], golden: tuple[dict[str, Tensor], dict[str, str]], prefix: str,
           what: str) -> None:
    stored, metadata = golden
    problems = compare(fresh, stored, prefix)
    if not problems:
        return
    count = len({k for k in fresh if k.startswith(prefix)} | {k for k in stored if k.startswith(prefix)})
    shown = problems[:40] + ([f"... and {len(problems) - 40} more"] if len(problems) > 40 else [])
    env_now = environment()
    env_then = {k: metadata.get(k, "?") for k in env_now}
    env_note = "" if env_now == env_then else (
        f"\nNOTE: the golden file was made with {env_then}, this is {env_now}: bit-identity needs the same.")
    pytest.fail(
        f"{len(problems)} of {count} golden numbers of {what} changed:\n  " + "\n  ".join(shown)
        + env_note + "\nIf the change is intended, explain it and regenerate: "
        "python tests/diffusion/test_golden_numbers.py --regenerate (see the module docstring).",
        pytrace=False,
    )


def test_every_registered_sampler_has_golden_numbers():
    stored = _stored_groups("sampler")
    missing = sorted(set(registered_samplers()) - stored)
    gone = sorted(stored - set(registered_samplers()))
    assert not missing, (
        f"registered sampler(s) {missing} have no golden numbers: give them settings in SAMPLER_SETTINGS "
        f"of {Path(__file__).name} (the common settings apply anyway) and regenerate with --regenerate")
    assert not gone, f"sampler(s) {gone} have golden numbers but are no longer registered in SAMPLERS"


def test_every_distillation_method_has_golden_numbers():
    stored = _stored_groups("distill")
    without_settings = sorted(set(DISTILLERS) - set(DISTILL_SETTINGS))
    assert not without_settings, f"distillation method(s) {without_settings} have no DISTILL_SETTINGS entry"
    missing = sorted(set(DISTILLERS) - stored)
    gone = sorted(stored - set(DISTILLERS))
    assert not missing, f"distillation method(s) {missing} have no golden numbers: regenerate with --regenerate"
    assert not gone, f"distillation method(s) {gone} have golden numbers but are no longer in DISTILLERS"


@pytest.mark.parametrize("sampler", sorted(set(SAMPLERS) | _stored_groups("sampler")))
def test_sampler_golden_numbers(sampler, golden):
    if sampler not in SAMPLERS:
        pytest.fail(f"sampler {sampler!r} has golden numbers but is not registered", pytrace=False)
    _check(compute_sampler(sampler), golden, f"sampler/{sampler}/", f"sampler {sampler!r}")


def test_loss_golden_numbers(golden):
    fresh = compute_loss()
    for prefix in ("loss/", "loss_terms/", "loss_grad/"):
        _check(fresh, golden, prefix, f"masked_multitime_loss ({prefix[:-1]})")


@pytest.mark.parametrize("method", sorted(set(DISTILLERS) | _stored_groups("distill")))
def test_distillation_golden_numbers(method, golden):
    if method not in DISTILLERS:
        pytest.fail(f"distillation method {method!r} has golden numbers but is not in DISTILLERS", pytrace=False)
    _check(compute_distill(method), golden, f"distill/{method}/", f"distillation {method!r}")


def test_sde_golden_numbers(golden):
    _check(compute_sde(), golden, "sde/", "the VP-SDE")


def test_schedule_golden_numbers(golden):
    _check(compute_schedule(), golden, "schedule/", "time grids, RePaint walk and masks")


def test_stored_file_has_no_unknown_groups(golden):
    groups = {k.split("/")[0] for k in golden[0]}
    assert groups <= {"sampler", "loss", "loss_terms", "loss_grad", "distill", "sde", "schedule"}, groups


# ----------------------------------------------------------------------------- script
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regenerate", action="store_true",
                        help=f"rewrite {GOLDEN.name} from the current code (only for an intended, explained "
                             "change of numbers); without it: print every difference")
    args = parser.parse_args(argv)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fresh = compute_golden()
    finally:
        torch.set_num_threads(before)
    if args.regenerate:
        metadata = {**environment(), "made_by": "tests/diffusion/test_golden_numbers.py --regenerate"}
        tmp = GOLDEN.with_suffix(".tmp")
        save_file(fresh, str(tmp), metadata=metadata)
        os.replace(tmp, GOLDEN)
        print(f"wrote {len(fresh)} golden tensors to {GOLDEN}")
        return 0
    if not GOLDEN.is_file():
        print(f"{GOLDEN} is missing; run with --regenerate")
        return 1
    stored = load_file(str(GOLDEN))
    problems = compare(fresh, stored, "")
    for line in problems:
        print(line)
    print(f"{len(problems)} of {len(set(fresh) | set(stored))} golden numbers differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
