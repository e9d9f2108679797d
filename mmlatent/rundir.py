"""The run directory: where every artifact of a run lives (one place that knows the file names).

See DESIGN.md section 4 and docs/architecture.md ("Run directory").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunDir"]


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    def modality_state(self, name: str) -> Path:
        return self.root / "modalities" / f"{name}.json"

    def autoencoder(self, name: str) -> Path:
        return self.root / "autoencoders" / f"{name}.safetensors"

    def latents(self, split: str) -> Path:
        return self.root / "latents" / f"{split}.safetensors"

    @property
    def latent_stats(self) -> Path:
        return self.root / "latent_stats.safetensors"

    @property
    def score_net(self) -> Path:
        return self.root / "score_net.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, stage: str) -> Path:
        return self.checkpoints / f"{stage.replace(':', '-')}.safetensors"

    @property
    def curves(self) -> Path:
        return self.root / "curves"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def classifier(self, name: str) -> Path:
        return self.root / "classifiers" / f"{name}.safetensors"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"
