"""Training curves: loss records per stage, kept as JSON and drawn as PNG plots."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from mmlatent.checkpoint import save_json

__all__ = ["TrainingHistory"]


class TrainingHistory:
    """``records[stage] = [(step, loss), ...]``; stages are e.g. ``autoencoder:gray``, ``score_net``."""

    def __init__(self, records: dict[str, list[list[float]]] | None = None) -> None:
        self.records: dict[str, list[list[float]]] = defaultdict(list, records or {})

    def log(self, stage: str, step: int, loss: float) -> None:
        self.records[stage].append([int(step), float(loss)])

    def truncate(self, stage: str, step: int) -> None:
        """Drop records of ``stage`` after ``step`` (a resumed run redoes those steps)."""
        self.records[stage] = [r for r in self.records[stage] if r[0] <= step]

    def save(self, path: str | Path) -> None:
        save_json(path, dict(self.records))

    @classmethod
    def load(cls, path: str | Path) -> TrainingHistory:
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            return cls(json.loads(path.read_text()))
        except ValueError:
            return cls()

    def plot(self, folder: str | Path) -> list[Path]:
        """One PNG per stage (loss against step, log scale when positive) under ``folder``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for stage, rows in self.records.items():
            if not rows:
                continue
            steps = [r[0] for r in rows]
            losses = [r[1] for r in rows]
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.plot(steps, losses, lw=1)
            if min(losses) > 0:
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.set_title(stage)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            out = folder / f"{stage.replace(':', '_')}.png"
            fig.savefig(out, dpi=100)
            plt.close(fig)
            written.append(out)
        return written
