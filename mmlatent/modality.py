"""The modality contract: what a plugin registers for one kind of data.

A plugin registers :class:`ModalitySpec` objects (one per modality *kind*, e.g. ``image``) and
:class:`DatasetSpec` objects (one per dataset). The core never imports a concrete modality; it
only talks to the classes below.

Data flows one way::

    dataset item {name: raw value, "label": int}
      -> Modality.preprocess (one item -> tensor)  -> Modality.collate (list -> batch)
      -> Autoencoder.encode  (B, *item_shape) -> (B, latent_dim)
      ... diffusion over the concatenated, standardised latents ...
      -> Autoencoder.decode  (B, latent_dim) -> decoder output
      -> Autoencoder.to_data (decoder output -> data-space batch, same layout as preprocess output)
      -> Modality.render / Modality.to_values (for people)

Data-space batches that users give (``MLDPipeline.generate(given=...)``, ``.encode``, files read
by :meth:`Modality.read_file` for ``mmlatent sample --given``) go through
:meth:`Modality.prepare_batch` first: it checks them and converts what converts safely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mmlatent.specs import DatasetSpec, ModalitySpec, NoOptions  # the registrations (torch-free), re-exported

__all__ = ["Autoencoder", "DatasetSpec", "Modality", "ModalitySpec", "NoOptions"]



class Autoencoder(nn.Module):
    """Deterministic autoencoder of one modality (trained alone, in stage 1).

    Subclasses implement :meth:`encode` and :meth:`decode`; override :meth:`reconstruction_loss`
    for anything but a squared error, and :meth:`to_data` when the decoder output is not already
    in data space (logits of tokens, unclamped pixels, ...).
    """

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)

    def encode(self, x: Tensor) -> Tensor:
        """Data-space batch ``(B, *item_shape)`` -> latents ``(B, latent_dim)``."""
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` -> decoder output (data space, or e.g. logits)."""
        raise NotImplementedError

    def to_data(self, decoded: Tensor) -> Tensor:
        """Decoder output -> data-space batch with the layout ``Modality.collate`` produces."""
        return decoded

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        """Scalar loss: per-item squared error summed over features, averaged over the batch."""
        return (decoded - x).pow(2).flatten(1).sum(1).mean()

    def forward(self, x: Tensor) -> Tensor:
        """Data-space batch -> decoder output (encode then decode)."""
        return self.decode(self.encode(x))

    def training_loss(self, x: Tensor) -> Tensor:
        """The stage-1 objective on a (possibly augmented) data-space batch."""
        return self.reconstruction_loss(x, self(x))

    @property
    def has_parameters(self) -> bool:
        """False for fixed maps (identity): stage 1 is then skipped."""
        return any(p.requires_grad for p in self.parameters())


class Modality:
    """One modality of a recipe: preprocessing, autoencoder factory, classifier, rendering.

    Plugin authors subclass this for each modality kind. The core creates one instance per
    modality of a recipe: ``ModalityCls(name, options, latent_dim)`` with the validated options.

    Fitted preprocessing (e.g. a text vocabulary): set ``needs_fit = True`` and implement
    :meth:`fit`, :meth:`state_dict` and :meth:`load_state_dict`. The core calls ``fit`` once on
    the raw training values before anything else, stores ``state_dict()`` (JSON-serialisable)
    in the run directory, and calls ``load_state_dict`` when a run is loaded again.
    """

    needs_fit: ClassVar[bool] = False
    #: File suffixes that :meth:`read_file` understands (for CLI help and error messages).
    file_suffixes: ClassVar[tuple[str, ...]] = (".npy", ".safetensors")

    def __init__(self, name: str, options: BaseModel, latent_dim: int) -> None:
        self.name = name
        self.options = options
        self.latent_dim = int(latent_dim)

    # ----------------------------------------------------------------------------- fitted state
    def fit(self, values: Iterable[Any]) -> None:
        """Fit preprocessing on the raw values of the training split (called once)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (empty when nothing is fitted)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # ------------------------------------------------------------------------------------- data
    def preprocess(self, value: Any) -> Tensor:
        """One raw dataset value -> one item tensor of shape ``item_shape`` (no batch axis)."""
        raise NotImplementedError

    def collate(self, items: Sequence[Tensor]) -> Tensor:
        """Item tensors -> batch ``(B, *item_shape)``."""
        return torch.stack(list(items))

    def augment(self, x: Tensor) -> Tensor:
        """Training-time augmentation of a batch for the autoencoder (stage 1 only)."""
        return x

    @property
    def item_shape(self) -> tuple[int, ...] | None:
        """Shape of one preprocessed item, or None when it is not fixed."""
        return None

    # ------------------------------------------------------------------------------------ model
    def build_autoencoder(self) -> Autoencoder:
        """A fresh autoencoder for these options and ``self.latent_dim``."""
        raise NotImplementedError

    def build_classifier(self, num_classes: int) -> nn.Module | None:
        """A fresh classifier ``(B, *item_shape) -> (B, num_classes)`` logits for coherence, or None."""
        return None

    # ----------------------------------------------------------------------------------- people
    def build_embedding(self, path: Path) -> nn.Module | None:
        """An embedding network for a Frechet distance in its features (as FID is for images; e.g. a
        Frechet audio distance), with weights from the local file ``path`` (never downloaded): a
        module with ``features(x (N, *item_shape)) -> (N, F)``. None: this kind has none (recipe key
        ``evaluation.embeddings``)."""
        return None

    def to_values(self, batch: Tensor) -> list[Any]:
        """Data-space batch -> list of Python values a person reads (strings for text, ...)."""
        return list(batch.detach().cpu())

    def render(self, batch: Tensor, path: Path) -> list[Path]:
        """Write a data-space batch for people; ``path`` is a stem without suffix.

        Returns the written files (e.g. ``path.with_suffix('.png')`` for an image grid).
        Default: a ``.safetensors`` file with the raw tensor.
        """
        out = Path(path).with_suffix(".safetensors")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({self.name: batch.detach().cpu().contiguous()}, str(out))
        return [out]

    # ------------------------------------------------------------------------------ user input
    def prepare_batch(self, batch: Any) -> Tensor:
        """Check and convert a data-space batch a user gives: ``(N, *item_shape)`` -> ``(N, *item_shape)``.

        The pipeline calls it on every given batch (``MLDPipeline.generate(given=...)``,
        ``.encode``, and so ``mmlatent sample --given``) before the autoencoder sees it. It returns
        the batch in the dtype the autoencoder takes (the batch itself when nothing needs
        converting) and must accept what ``collate`` and ``Autoencoder.to_data`` produce. Anything
        else raises ``ValueError`` with a message that names the modality and says what was
        expected (shape, dtype, value range).

        Default: a tensor with a batch axis, of shape ``(N, *item_shape)`` when ``item_shape`` is
        fixed; floating-point batches (float64, float16, bfloat16) become float32 and must be
        finite; integer and bool batches pass unchanged. Override it (calling ``super()`` first)
        to convert or range-check your data space, e.g. uint8 images -> float in [0, 1], token ids
        within the vocabulary.
        """
        shape = "(N, ...)" if self.item_shape is None else f"({', '.join(['N', *map(str, self.item_shape)])})"
        if not torch.is_tensor(batch):
            raise ValueError(
                f"modality {self.name!r}: expected a torch tensor of shape {shape}, got {type(batch).__name__}"
            )
        if batch.dim() == 0 or (self.item_shape is not None and tuple(batch.shape[1:]) != tuple(self.item_shape)):
            raise ValueError(
                f"modality {self.name!r}: expected shape {shape}, got {tuple(batch.shape)} ({batch.dtype})"
            )
        if batch.is_complex():
            raise ValueError(f"modality {self.name!r}: expected real values, got {batch.dtype}")
        if batch.is_floating_point():
            batch = batch.to(torch.float32)
            bad = int((~torch.isfinite(batch)).sum())
            if bad:
                raise ValueError(f"modality {self.name!r}: the batch holds {bad} NaN or infinite value(s)")
        return batch

    def read_array(self, path: Path) -> Tensor:
        """The array of a ``.npy`` file, or the tensor named like the modality (else the first) of a
        ``.safetensors`` file, as it is stored. A missing file raises ``FileNotFoundError``; an
        empty, truncated or foreign file ``ValueError`` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"modality {self.name!r}: no such file {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix not in (".npy", ".safetensors"):
            raise ValueError(f"modality {self.name!r}: cannot read {path.name!r} as an array "
                             "(expected .npy or .safetensors)")
        what = f"modality {self.name!r}: cannot read {path.name!r} as a {suffix} file"
        if path.stat().st_size == 0:
            raise ValueError(f"{what}: the file is empty")
        if suffix == ".npy":
            with open(path, "rb") as handle:
                if handle.read(6) != b"\x93NUMPY":
                    raise ValueError(f"{what}: not a NumPy array file")
            try:
                return torch.from_numpy(np.load(path, allow_pickle=False))
            except (OSError, ValueError, EOFError, TypeError) as error:
                raise ValueError(f"{what}: {error}") from None
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise ValueError(f"{what}: truncated or not a safetensors file ({error})") from None
        if not tensors:
            raise ValueError(f"{what}: it holds no tensor")
        return tensors.get(self.name, next(iter(tensors.values())))

    def read_file(self, path: Path) -> Tensor:
        """Read a file given on the command line -> data-space batch ``(N, *item_shape)``.

        Default: :meth:`read_array` (``.npy``, ``.safetensors``); one item without the batch axis
        gets one; floating-point arrays become float32. The pipeline passes the result through
        :meth:`prepare_batch`.
        """
        path = Path(path)
        if path.suffix.lower() not in (".npy", ".safetensors"):
            raise ValueError(
                f"modality {self.name!r}: cannot read {path.name!r} "
                f"(expected one of {', '.join(self.file_suffixes)})"
            )
        batch = self.read_array(path)
        if self.item_shape is not None and tuple(batch.shape[1:]) != tuple(self.item_shape):
            if tuple(batch.shape) == tuple(self.item_shape):
                batch = batch.unsqueeze(0)
        return batch.float() if batch.is_floating_point() else batch
