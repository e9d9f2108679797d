"""Latent layout, conditioning-subset sampling and the multi-time vector.

The concatenated latent of M modalities has D = d_1 + ... + d_M dimensions. A *conditioning
mask* ``given`` is a bool tensor ``(B, M)``: ``given[b, i]`` is True when modality i is in the
conditioning set A2 of sample b (kept clean, time 0), False when it is diffused (set A1).

- :class:`LatentLayout` maps per-modality quantities ``(B, M)`` to per-dimension ones ``(B, D)``.
- :func:`sample_given_mask` draws masks from nu(d) (Algorithm 1 of the paper): with probability
  ``d`` a conditional step whose A2 is uniform among the 2^M - 2 non-empty proper subsets, else a
  joint step (A2 empty). It never enumerates the power set; the cost per sample is O(M).
- :func:`multitime_vector` builds tau ``(B, M)``: tau_i = t for diffused modalities, 0 for given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["LatentLayout", "sample_given_mask", "multitime_vector", "given_mask_probability"]


class LatentLayout:
    """How the concatenated latent ``(B, D)`` is cut into modalities.

    Args:
        dims: latent size of each modality, in concatenation order (all >= 1).
        names: optional modality names (unique), in the same order.

    Attributes:
        dims: tuple of the per-modality sizes ``(d_1, ..., d_M)``.
        names: tuple of names (``("0", "1", ...)`` when not given).
        total_dim: D.
        num_modalities: M.
        slices: one ``slice`` per modality into the last dim of a ``(B, D)`` latent.
        modality_index: long tensor ``(D,)``, the modality of each latent dimension.
    """

    def __init__(self, dims: Sequence[int], names: Sequence[str] | None = None):
        dims = tuple(int(d) for d in dims)
        if not dims:
            raise ValueError("a latent layout needs at least one modality")
        if any(d < 1 for d in dims):
            raise ValueError(f"every modality needs a latent size >= 1, got {dims}")
        if names is None:
            names = tuple(str(i) for i in range(len(dims)))
        names = tuple(str(n) for n in names)
        if len(names) != len(dims):
            raise ValueError(f"{len(names)} names for {len(dims)} modalities")
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        self.dims = dims
        self.names = names
        self.total_dim = sum(dims)
        self.num_modalities = len(dims)
        offsets = [0]
        for d in dims:
            offsets.append(offsets[-1] + d)
        self.offsets = tuple(offsets)
        self.slices = tuple(slice(a, b) for a, b in zip(offsets[:-1], offsets[1:]))
        self.modality_index = torch.repeat_interleave(
            torch.arange(self.num_modalities), torch.tensor(dims)
        )
        self._dims_tensor = torch.tensor(dims, dtype=torch.float32)
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        pairs = ", ".join(f"{n}={d}" for n, d in zip(self.names, self.dims))
        return f"LatentLayout({pairs})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LatentLayout) and self.dims == other.dims and self.names == other.names
        )

    def __hash__(self) -> int:
        return hash((self.dims, self.names))

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._cache:
            self._cache[device] = (
                self.modality_index.to(device),
                self._dims_tensor.to(device),
            )
        return self._cache[device]

    def index(self, name: str) -> int:
        """Position of the modality called ``name`` (ValueError listing the names otherwise)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown modality {name!r}; modalities: {list(self.names)}") from None

    def expand(self, per_modality: Tensor) -> Tensor:
        """Repeat each modality's entry over its latent dims: ``(..., M) -> (..., D)``."""
        if per_modality.shape[-1] != self.num_modalities:
            raise ValueError(
                f"expected a last dim of {self.num_modalities} (one entry per modality), "
                f"got shape {tuple(per_modality.shape)}"
            )
        index, _ = self._on(per_modality.device)
        return per_modality.index_select(-1, index)

    def modality_mask(self, given: Tensor) -> Tensor:
        """Per-dimension mask ``(B, D)`` bool from a per-modality mask ``given (B, M)`` bool."""
        return self.expand(given.bool())

    def given_dims(self, given: Tensor) -> Tensor:
        """Number of latent dims in the set ``given (B, M)`` (i.e. dim(A2)): float ``(B,)``."""
        _, dims = self._on(given.device)
        return given.to(dims.dtype) @ dims

    def split(self, x: Tensor) -> list[Tensor]:
        """Cut ``x (..., D)`` into the per-modality tensors ``[(..., d_1), ..., (..., d_M)]``."""
        if x.shape[-1] != self.total_dim:
            raise ValueError(f"expected a last dim of {self.total_dim}, got {tuple(x.shape)}")
        return list(x.split(self.dims, dim=-1))

    def join(self, parts: Sequence[Tensor]) -> Tensor:
        """Concatenate per-modality tensors ``[(..., d_i)]`` into ``(..., D)`` (sizes checked)."""
        if len(parts) != self.num_modalities:
            raise ValueError(f"expected {self.num_modalities} parts, got {len(parts)}")
        for name, d, p in zip(self.names, self.dims, parts):
            if p.shape[-1] != d:
                raise ValueError(f"modality {name!r}: expected last dim {d}, got {tuple(p.shape)}")
        return torch.cat(list(parts), dim=-1)

    def mask_from_names(self, names: Sequence[str], batch_size: int = 1) -> Tensor:
        """Bool mask ``(batch_size, M)``, True for the named modalities."""
        mask = torch.zeros(batch_size, self.num_modalities, dtype=torch.bool)
        for name in names:
            mask[:, self.index(name)] = True
        return mask


def _uniform_proper_subsets(
    rows: int, m: int, generator: torch.Generator | None, device: torch.device, present: Tensor | None = None
) -> Tensor:
    """``rows`` independent uniform non-empty proper subsets of {0..m-1}: bool ``(rows, m)``.

    Rejection sampling of uniform bit vectors (uniform over all 2^m subsets) that drops the empty
    and the full set: exact, and the acceptance probability 1 - 2^(1-m) >= 1/2 keeps the expected
    cost O(m) per row for every m >= 2. Candidates are drawn ``k`` at a time per row, with ``k``
    chosen so that all k fail with probability < 1e-4; the rare leftovers are redrawn.

    ``present`` (bool ``(rows, m)``, each row with at least 2 True): subsets of each row's present
    modalities instead (non-empty, not all of them), uniform among those.
    """
    reject = 2.0 ** (1 - m)
    k = 1 if reject < 1e-4 else math.ceil(math.log(1e-4) / math.log(reject))
    out = torch.empty(rows, m, dtype=torch.bool, device=device)
    todo = torch.arange(rows, device=device)
    while todo.numel():
        bits = torch.rand(todo.numel(), k, m, generator=generator, device=device) < 0.5
        if present is None:
            full = m
        else:
            bits &= present[todo, None, :]
            full = present[todo].sum(-1, keepdim=True)  # (n, 1)
        count = bits.sum(-1)
        ok = (count > 0) & (count < full)  # (n, k)
        first = ok.to(torch.uint8).argmax(-1)  # first accepted candidate (0 if none)
        picked = bits[torch.arange(todo.numel(), device=device), first]
        accepted = ok.any(-1)
        out[todo[accepted]] = picked[accepted]
        todo = todo[~accepted]
    return out


def sample_given_mask(
    batch_size: int,
    num_modalities: int,
    d: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    per_batch: bool = False,
    present: Tensor | None = None,
) -> Tensor:
    """Draw conditioning sets A2 from nu(d): bool ``(batch_size, num_modalities)``.

    Each row is, independently, with probability ``d`` a uniform non-empty proper subset of the
    modalities (a conditional step) and with probability ``1 - d`` all False (a joint step). With
    a single modality no proper non-empty subset exists and every row is joint.

    Args:
        batch_size: B.
        num_modalities: M.
        d: probability of a conditional step, in [0, 1].
        generator: torch generator for reproducibility (its device is used for drawing).
        device: device of the result (default: the generator's, else CPU).
        per_batch: draw one decision and one subset for the whole batch (all rows equal).
        present: optional bool ``(batch_size, num_modalities)``, the modalities each sample has
            (incomplete data): A2 is then drawn among the present ones (a sample with fewer than two
            present modalities always takes a joint step). Not with ``per_batch``.

    Cost: O(M) expected per row; M = 64 costs the same per modality as M = 2.
    """
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"d is a probability, got {d}")
    if batch_size < 0 or num_modalities < 1:
        raise ValueError(f"need batch_size >= 0 and num_modalities >= 1, got {batch_size}, {num_modalities}")
    out_device = torch.device(device) if device is not None else None
    draw_device = generator.device if generator is not None else (out_device or torch.device("cpu"))
    rows = 1 if per_batch else batch_size
    if present is not None:
        if per_batch:
            raise ValueError("present masks need per-sample conditioning sets (per_batch=False)")
        present = present.to(device=draw_device, dtype=torch.bool).expand(batch_size, num_modalities)
    if num_modalities < 2 or d == 0.0 or rows == 0:
        given = torch.zeros(rows, num_modalities, dtype=torch.bool, device=draw_device)
    elif present is None:
        conditional = torch.rand(rows, generator=generator, device=draw_device) < d
        given = _uniform_proper_subsets(rows, num_modalities, generator, draw_device)
        given &= conditional[:, None]
    else:
        conditional = (torch.rand(rows, generator=generator, device=draw_device) < d) & (present.sum(-1) >= 2)
        given = torch.zeros(rows, num_modalities, dtype=torch.bool, device=draw_device)
        chosen = conditional.nonzero().squeeze(1)
        if chosen.numel():
            given[chosen] = _uniform_proper_subsets(chosen.numel(), num_modalities, generator, draw_device,
                                                    present[chosen])
    if per_batch:
        given = given.expand(batch_size, num_modalities).clone()
    return given.to(out_device) if out_device is not None else given


def given_mask_probability(given: Tensor, d: float) -> Tensor:
    """Probability of each mask row ``given (B, M)`` under nu(d): float64 ``(B,)``.

    ``1 - d`` for the all-False row, ``d / (2^M - 2)`` for a non-empty proper subset, 0 for the
    full set. For tests and diagnostics.
    """
    m = given.shape[-1]
    count = given.sum(-1)
    p_subset = d / (2.0**m - 2.0) if m >= 2 else 0.0
    out = torch.full(count.shape, p_subset, dtype=torch.float64, device=given.device)
    out[count == 0] = 1.0 - d if m >= 2 else 1.0
    out[count == m] = 0.0
    return out


def multitime_vector(t: Tensor | float, given: Tensor) -> Tensor:
    """The multi-time vector tau ``(B, M)``: ``t`` for diffused modalities, 0 for given ones.

    Args:
        t: the diffusion time, a float, a 0-d tensor or ``(B,)``.
        given: bool ``(B, M)``, True for modalities in the conditioning set A2.
    """
    if not isinstance(t, Tensor):
        t = torch.tensor(float(t), device=given.device)
    t = t.to(given.device)
    if t.ndim == 1:
        t = t[:, None]
    dtype = t.dtype if t.is_floating_point() else torch.float32
    return torch.where(given, torch.zeros((), dtype=dtype, device=given.device), t.to(dtype))
