"""Recipes: the YAML files that say which modalities, dataset and hyper-parameters a run uses.

``load_recipe(path, overrides)`` reads YAML with ``yaml.safe_load``, applies ``--set dotted.key=value``
overrides, validates the structure with the pydantic models below (``extra="forbid"`` everywhere),
then validates what only the installed plugins know (modality kinds and their options, the dataset
and its options). The file is checked before it is built: at most ``MAX_RECIPE_BYTES`` of UTF-8 text,
nested at most ``MAX_DEPTH`` levels, at most ``MAX_VALUES`` values once YAML aliases are expanded (so
neither a huge file nor a "billion laughs" can hang the reader). Every problem found is collected
into one :class:`RecipeError`, rendered as::

    recipes/cub.yaml: 2 errors
      diffusion.train.lr: Input should be greater than 0 (got -1)
      modalities.audio.kind: no installed plugin provides 'audio' (installed: image, text, vector)
"""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mmlatent.diffusion.options import check_sampler_options
from mmlatent.families import DEFAULT_FAMILY
from mmlatent.plugins import PluginLookupError, get_registry
from mmlatent.recipe_library import resolve_recipe, unknown_recipe_hint
from mmlatent.tracking import TRACKERS

__all__ = [
    "AutoencoderTrain",
    "DataConfig",
    "DiffusionConfig",
    "DiffusionTrain",
    "EvaluationConfig",
    "MissingConfig",
    "ModalityConfig",
    "Recipe",
    "RecipeError",
    "SamplingConfig",
    "ScoreNetConfig",
    "SDEConfig",
    "TrainConfig",
    "apply_overrides",
    "load_recipe",
    "validate_command",
]

MAX_RECIPE_BYTES = 1 << 20  # 1 MiB; a real recipe is a few KB
MAX_OVERRIDE_CHARS = 10_000  # length of one ``--set`` value
MAX_DEPTH = 50  # nesting levels of mappings and lists; a real recipe has fewer than 10
MAX_VALUES = 10_000  # YAML values (scalars, mappings, lists), aliases expanded; a real recipe has a few hundred
MAX_NAME_CHARS = 100
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MissingConfig(_Strict):
    """``data.missing:`` make the dataset incomplete for experiments (see :mod:`mmlatent.missing`).

    Each modality of each item of the chosen splits is missing with its own probability: ``rate``
    (missing completely at random) or, for the items of a label listed in ``by_label``, that
    label's rate (missing not at random). Items that would lose every modality are drawn again.
    """

    rate: dict[str, float] = Field(default_factory=dict, description="probability in [0, 1) that a modality "
                                                                     "is missing, by modality name")
    by_label: dict[str, dict[int, float]] = Field(default_factory=dict, description="probability in [0, 1) "
                                                  "that a modality is missing, by modality name then label "
                                                  "(labels not listed use `rate`)")
    splits: list[Literal["train", "val"]] = Field(default_factory=lambda: ["train"], min_length=1,
                                                  description="splits made incomplete (the test split stays "
                                                              "complete for evaluation)")
    seed: int = Field(default=0, description="seed of the draw (same seed, same missing values)")
    complete_only: bool = Field(default=False, description="keep only the items that kept every modality "
                                                           "(complete-case training, to compare with)")

    @model_validator(mode="after")
    def _rates(self) -> MissingConfig:
        rates = [("rate." + name, value) for name, value in self.rate.items()]
        rates += [(f"by_label.{name}.{label}", value) for name, table in self.by_label.items()
                  for label, value in table.items()]
        for where, value in rates:
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{where}: a missing rate is a probability in [0, 1), got {value}")
        if not rates:
            raise ValueError("give `rate` or `by_label` for at least one modality")
        return self


class DataConfig(_Strict):
    """``data:`` which dataset (a registered name), its options, and the default batch size."""

    dataset: str = Field(min_length=1, description="name of a dataset registered by an installed plugin "
                                                   "(`mmlatent plugins` lists them)")
    options: dict[str, Any] = Field(default_factory=dict, description="the dataset's options, validated by its "
                                                                    "plugin (see the plugin's README)")
    batch_size: int = Field(default=128, gt=0, description="batch size of both stages unless "
                                                           "`modalities.<name>.train.batch_size` or "
                                                           "`diffusion.train.batch_size` is set")
    num_workers: int = Field(default=0, ge=0, description="DataLoader worker processes for reading the dataset")
    missing: MissingConfig | None = Field(default=None, description="make modalities missing for experiments "
                                                                    "(training on incomplete samples)")


class AutoencoderTrain(_Strict):
    """``modalities.<name>.train:`` stage-1 training of that modality's autoencoder."""

    epochs: int | None = Field(default=None, gt=0, description="passes over the training split; give "
                                                              "`epochs` or `steps`, not both (neither: 20 epochs)")
    steps: int | None = Field(default=None, gt=0, description="optimiser steps, instead of `epochs`")
    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate")
    batch_size: int | None = Field(default=None, gt=0, description="global batch size; null: `data.batch_size`")
    weight_decay: float = Field(default=0.0, ge=0, description="Adam weight decay")

    @model_validator(mode="after")
    def _one_length(self) -> AutoencoderTrain:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give either epochs or steps, not both")
        if self.epochs is None and self.steps is None:
            self.epochs = 20
        return self


class ModalityConfig(_Strict):
    """``modalities.<name>:`` one modality: plugin kind, latent size, plugin options, stage-1 training."""

    kind: str = Field(min_length=1, description="modality kind registered by an installed plugin "
                                                "(e.g. `image`, `text`, `vector`)")
    latent_dim: int = Field(gt=0, description="size of this modality's latent (the autoencoder's bottleneck)")
    field: str | None = Field(default=None, description="dataset field; defaults to the modality name")
    options: dict[str, Any] = Field(default_factory=dict, description="the kind's options, validated by its "
                                                                    "plugin (see the plugin's README)")
    train: AutoencoderTrain = Field(default_factory=AutoencoderTrain,
                                    description="stage-1 training of this modality's autoencoder")


class SDEConfig(_Strict):
    """``diffusion.sde:`` the VP-SDE, beta(t) = beta_min + t (beta_max - beta_min) on [0, T]."""

    beta_min: float = Field(default=0.1, gt=0, description="beta(0)")
    beta_max: float = Field(default=20.0, gt=0, description="beta(1); must be greater than `beta_min`")
    T: float = Field(default=1.0, gt=0, description="end time of the diffusion")

    @model_validator(mode="after")
    def _ordered(self) -> SDEConfig:
        if self.beta_max <= self.beta_min:
            raise ValueError(f"beta_max ({self.beta_max}) must be greater than beta_min ({self.beta_min})")
        return self


class ScoreNetConfig(_Strict):
    """``diffusion.score_net:`` residual MLP sizes."""

    width: int = Field(default=512, gt=0, description="hidden width of the residual MLP blocks")
    blocks: int = Field(default=2, gt=0, description="number of residual blocks")
    time_embed: int = Field(default=256, gt=0, description="size of the embedding of the multi-time vector tau")
    prediction: Literal["eps", "v"] = Field(default="eps", description=(
        "what the network outputs: `eps` (the noise, the paper's) or `v` = alpha eps - sigma z (converted to the "
        "noise inside the network, so samplers are unchanged); use `v` with `diffusion.train.loss_weighting: v`"))


class DiffusionTrain(_Strict):
    """``diffusion.train:`` stage-2 training of the score network on the cached latents."""

    epochs: int | None = Field(default=None, gt=0, description="passes over the cached training latents; give "
                                                              "`epochs` or `steps`, not both (neither: 50 epochs)")
    steps: int | None = Field(default=None, gt=0, description="optimiser steps, instead of `epochs`")
    lr: float = Field(default=1e-4, gt=0, description="Adam learning rate")
    batch_size: int | None = Field(default=None, gt=0, description="global batch size (divisible by the number "
                                                                   "of processes); null: `data.batch_size`")
    ema: float = Field(default=0.999, ge=0, lt=1, description="decay of the EMA of the weights (the EMA "
                                                              "network is saved and used for sampling)")
    weight_decay: float = Field(default=0.0, ge=0, description="Adam weight decay")
    eps: float = Field(default=1e-3, gt=0, lt=1, description="smallest diffusion time t ~ U(eps, T)")
    grad_clip: float | None = Field(default=1.0, gt=0, description="clip the gradient norm to this value; "
                                                                  "null: no clipping")
    warmup_steps: int = Field(default=0, ge=0, description="linear learning-rate warm-up over this many steps")
    # --- training choices of the diffusion loss (mmlatent/diffusion/loss.py)
    t_sampling: Literal["uniform", "logsnr"] = Field(
        default="uniform", description="how training times are drawn: `uniform` t ~ U(eps, T), or `logsnr` "
                                       "(uniform in log-SNR = density proportional to the likelihood weighting; "
                                       "the loss is reweighted so the objective set by `loss_weighting` is "
                                       "unchanged)")
    loss_weighting: Literal["none", "likelihood", "min_snr", "v"] = Field(
        default="none", description="weight w(t) of the noise-prediction loss: `none` (the paper's), "
                                    "`likelihood` (beta/sigma^2, maximum likelihood; exact importance sampling "
                                    "with `t_sampling: logsnr`), `min_snr` (min(1, 5/SNR)), `v` (1/alpha^2: "
                                    "the v-prediction loss, which weighs the noisy times where the given "
                                    "modalities decide the class)")
    checkpoint_every: int = Field(default=1000, gt=0, description="write a resume checkpoint every this many "
                                                                 "steps (also used by stage 1)")
    log_every: int = Field(default=50, gt=0, description="record the loss in history.json and the curves every "
                                                         "this many steps (both stages)")
    complete_fraction: float | None = Field(default=None, gt=0, le=1, description="with missing values: the "
                                            "fraction of each batch drawn from the items that have every modality "
                                            "(the only ones that teach the whole joint); null: items as they come")

    @model_validator(mode="after")
    def _one_length(self) -> DiffusionTrain:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give either epochs or steps, not both")
        if self.epochs is None and self.steps is None:
            self.epochs = 50
        return self


class DiffusionConfig(_Strict):
    """``diffusion:`` the masked multi-time diffusion model over the concatenated latents."""

    sde: SDEConfig = Field(default_factory=SDEConfig, description="the VP-SDE")
    d: float = Field(default=0.5, ge=0, le=1, description="probability of a conditional training step")
    subset_sampling: Literal["per_sample", "per_batch"] = Field(
        default="per_sample", description="draw the conditioning subset per sample (lower variance) or once "
                                          "per batch")
    absent_prob: float = Field(default=0.0, ge=0, lt=1, description="probability that a conditioning modality "
                                                                   "of a training sample is made absent (time T, "
                                                                   "pure noise, no loss): teaches the branch that "
                                                                   "`sampling.guidance` uses (0.2 on the digits "
                                                                   "run: guided w = 1 conditional coherence +15 "
                                                                   "points, unguided within noise)")
    score_net: ScoreNetConfig = Field(default_factory=ScoreNetConfig, description="score network sizes")
    train: DiffusionTrain = Field(default_factory=DiffusionTrain, description="stage-2 training")


class SamplingConfig(_Strict):
    """``sampling:`` the default sampler of the run (``mmlatent sample``/``evaluate`` can override)."""

    sampler: str = Field(default="heun", description="a sampler name: euler_maruyama, repaint, repaint_ddpm, "
                                                     "euler, heun, ddim, dpm_solver++, ddpm, pc, churn "
                                                     "(mmlatent/diffusion/sampling.py)")
    steps: int | None = Field(default=10, gt=0, description="time-grid steps; null: the sampler's default")
    options: dict[str, Any] = Field(default_factory=dict, description="the sampler's keyword options, e.g. "
                                                                    "`{eta: 1.0}` for ddim; `jump_length`, "
                                                                    "`resamplings`, `renoise` for repaint; "
                                                                    "`snr` for pc; `s_churn` for churn; for "
                                                                    "every sampler `grid` (uniform, logsnr, "
                                                                    "karras), `t_min` and `clip_denoised` "
                                                                    "(bound on the predicted clean latent, "
                                                                    "default 5.0; null: none), "
                                                                    "`combine_guidance` (one unconditional "
                                                                    "branch for all given modalities: 2 NFE "
                                                                    "per step), `guidance_interval` "
                                                                    "([t_low, t_high]: guide only there), "
                                                                    "`joint_guidance` ({modality: w}: joint "
                                                                    "generation guided by a co-generated "
                                                                    "modality) and `joint_steps` (steps of "
                                                                    "joint generation); docs/sampling.md")
    guidance: dict[str, float] = Field(default_factory=dict, description="guidance weight w per given modality "
                                                                       "name: eps + w (eps - eps with that "
                                                                       "modality absent), one more NFE per "
                                                                       "guided modality and evaluation; train "
                                                                       "with `diffusion.absent_prob` > 0")
    denoise_final: bool = Field(default=False, description="finish with one denoising step at the last grid "
                                                           "time (one more NFE)")

    @model_validator(mode="after")
    def _known_sampler(self) -> SamplingConfig:
        if not self.sampler.startswith("student:"):  # a distilled student of the run (mmlatent distill)
            check_sampler_options(self.sampler, self.options)
        return self


class EvaluationConfig(_Strict):
    """``evaluation:`` what runs after training (when the dataset has labels)."""

    enabled: bool = Field(default=True, description="evaluate at the end of `mmlatent train` (when the "
                                                    "dataset has labels)")
    limit: int | None = Field(default=None, gt=0, description="at most this many test items per condition")
    classifier_epochs: int = Field(default=5, gt=0, description="training epochs of the coherence classifiers")
    classifier_reconstructions: list[str] = Field(
        default_factory=list, description="modalities whose coherence classifier trains on the training items and "
                                          "on their autoencoder reconstructions too (same labels), a judge that "
                                          "reads decoded data like real data (MLD runs; docs/audio.md)")
    inception_weights: Path | None = Field(default=None, description="local Inception weights file for FID "
                                                                     "(never downloaded); null: no FID")
    clip_model: Path | None = Field(default=None, description="local CLIP model directory for CLIP-S "
                                                              "(never downloaded); null: no CLIP-S")
    samples: int = Field(default=64, gt=0, description="samples per rendered grid")
    embeddings: dict[str, Path] = Field(default_factory=dict, description="local weights of an embedding "
                                        "network per modality name, built by the modality's plugin (e.g. "
                                        "Frechet audio distance for audio); a Frechet distance in its features, "
                                        "never downloaded")


class TrainConfig(_Strict):
    """``train:`` how `mmlatent train` reports the training (what it trains is set by the other sections)."""

    log_with: list[Literal[TRACKERS]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="experiment trackers (HuggingFace Accelerate's) that get every stage's "
                                          "loss and learning rate every `diffusion.train.log_every` steps (a VAE "
                                          "family: `model.options.log_every`) and the sample grids: `tensorboard` "
                                          "(files under `<run>/logs/`: `tensorboard --logdir <run>/logs`), `wandb`, "
                                          "`mlflow`; each needs its package (`pip install 'mmlatent[tensorboard]'`, "
                                          "`pip install wandb`)")


class ModelConfig(_Strict):
    """``model:`` which model family trains on the recipe's modalities (default: MLD)."""

    family: str = Field(default=DEFAULT_FAMILY, min_length=1,
                        description="a model family registered by an installed plugin: `mld` (the default, "
                                    "configured by `diffusion` and `sampling`), or e.g. the VAE baselines of "
                                    "mmlatent-baselines (`mvae`, `mmvae`, `mopoe`, `nexus`, `mvtcae`)")
    options: dict[str, Any] = Field(default_factory=dict, description="the family's options, validated by its "
                                                                    "plugin (empty for `mld`)")

    @property
    def is_default(self) -> bool:
        return self.family == DEFAULT_FAMILY and not self.options


class Recipe(_Strict):
    """A whole recipe (the top level of the YAML file)."""

    name: str = Field(description=f"run name; the default run directory is runs/<name>: starts with a letter "
                                  f"or digit, then letters, digits, `_`, `.`, `-`; at most {MAX_NAME_CHARS} "
                                  f"characters")
    seed: int = Field(default=0, description="seed of every stage (same seed, same machine: same numbers)")
    data: DataConfig = Field(description="the dataset")
    modalities: dict[str, ModalityConfig] = Field(min_length=1, description="the modalities by name, in the "
                                                                            "order of the concatenated latent")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig, description="the diffusion model")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="the default sampler")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="the evaluation")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the model family (default: MLD)")
    train: TrainConfig = Field(default_factory=TrainConfig, description="how training is reported "
                                                                        "(experiment tracking)")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        """The name is a folder name: no ``.``, ``..``, hidden or over-long names, no separators."""
        if len(name) > MAX_NAME_CHARS or not _RUN_NAME.fullmatch(name):
            raise ValueError(f"a run name must start with a letter or digit, use only letters, digits, '_', '.', "
                             f"'-' and have at most {MAX_NAME_CHARS} characters (it names the folder runs/<name>)")
        return name

    def field_of(self, name: str) -> str:
        """The dataset field that feeds modality ``name``."""
        return self.modalities[name].field or name

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (without a default ``model`` section: a run of a recipe
        written before model families existed resolves to the same text)."""
        exclude: dict[str, Any] = {}
        if self.model.is_default:
            exclude["model"] = True
        if self.data.missing is None:  # recipes written before data.missing resolve to the same text
            exclude["data"] = {"missing"}
        evaluation_unset = {key for key in ("embeddings", "classifier_reconstructions")
                            if not getattr(self.evaluation, key)}  # the same for these evaluation keys
        if evaluation_unset:
            exclude["evaluation"] = evaluation_unset
        if self.diffusion.train.complete_fraction is None:  # and diffusion.train.complete_fraction
            exclude["diffusion"] = {"train": {"complete_fraction"}}
        if not self.train.log_with:  # and a train section that logs with no tracker
            exclude["train"] = True
        return yaml.safe_dump(self.model_dump(mode="json", exclude=exclude or None), sort_keys=False)


# --------------------------------------------------------------------------------------- errors
class RecipeError(Exception):
    """All problems found in one recipe; ``render()`` gives the user-facing text."""

    exit_code = 2  # mmlatent.errors: the rendered lines, no traceback

    def __init__(self, source: str, errors: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.errors)
        lines = [f"{self.source}: {count} error{'s' if count != 1 else ''}"]
        lines += [f"  {path}: {message}" if path else f"  {message}" for path, message in self.errors]
        return "\n".join(lines)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    text = text.removesuffix("...").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pydantic_errors(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        path = f"{prefix}.{path}" if prefix and path else (prefix or path)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] not in ("missing",) and "input" in item and not isinstance(item["input"], dict):
            message += f" (got {_short(item['input'])})"
        found.append((path, message))
    return found


# -------------------------------------------------------------------------------------- reading
class _ShapeError(Exception):
    """YAML nested too deeply or holding too many values; the message starts with what was read."""


_BYTE_ORDER_MARKS = [(codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                     (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")]
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in YAML text: binary data


def _decode(data: bytes) -> str:
    """The text of a recipe file, or ValueError saying why its bytes are not UTF-8 YAML text."""
    for mark, encoding in _BYTE_ORDER_MARKS:  # UTF-32 first: its little-endian mark starts like UTF-16's
        if data.startswith(mark):
            raise ValueError(f"the recipe is not UTF-8 text (it starts with a {encoding} byte-order mark); "
                             f"save it as UTF-8")
    try:
        text, bad = data.decode("utf-8"), len(data)
    except UnicodeDecodeError as error:
        text, bad = None, error.start
    control = _CONTROL_BYTE.search(data)
    if control:  # binary: name the first byte that cannot be in UTF-8 YAML text
        bad = min(bad, control.start())
        raise ValueError(f"the recipe contains binary data (byte 0x{data[bad]:02x} at offset {bad}); "
                         f"a recipe is a YAML text file")
    if text is None:
        raise ValueError(f"the recipe is not UTF-8 text (byte 0x{data[bad]:02x} at offset {bad}); save it as UTF-8")
    return text


def _read_text(path: Path) -> str:
    """A recipe file's text; its size is checked before it is read. Raises ValueError with the problem."""
    too_big = f"more than the limit of {MAX_RECIPE_BYTES:,} bytes (a real recipe is a few KB)"
    try:
        if path.is_dir():
            raise ValueError("this is a directory, not a recipe file")
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise ValueError(f"the recipe is {size:,} bytes, {too_big}")
        with path.open("rb") as file:
            data = file.read(MAX_RECIPE_BYTES + 1)  # bounded too when the size was unknown (a pipe, a device)
    except OSError as error:
        raise ValueError(f"cannot read the recipe: {error.strerror or error}") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise ValueError(f"the recipe is {too_big}")
    return _decode(data)


def _check_shape(text: str, what: str) -> None:
    """Raise _ShapeError if ``text`` nests deeper than MAX_DEPTH or holds more than MAX_VALUES values.

    Reads YAML events (the parser keeps its own stack: no recursion) and stops at the first excess.
    An alias counts as a copy of the node its anchor names, so a "billion laughs" stops early too.
    """
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels of nesting) of the node it names
    open_nodes: list[list] = []  # per open mapping or list: [anchor, values before it, deepest level inside]
    values = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, before, deepest = open_nodes.pop()
            if anchor:
                anchored[anchor] = (values - before, deepest - len(open_nodes))
            if open_nodes:
                open_nodes[-1][2] = max(open_nodes[-1][2], deepest)
            continue
        if not isinstance(event, yaml.NodeEvent):  # stream and document events
            continue
        is_alias = isinstance(event, yaml.AliasEvent)  # an unknown alias is left to safe_load's error
        count, levels = anchored.get(event.anchor, (1, 0)) if is_alias else (1, 0)
        values += count
        level = len(open_nodes) + levels  # open mappings and lists around this value, and inside it
        if isinstance(event, yaml.CollectionStartEvent):
            level += 1
            open_nodes.append([event.anchor, values - 1, level])
        elif event.anchor and not is_alias:
            anchored[event.anchor] = (1, 0)
        if open_nodes:
            open_nodes[-1][2] = max(open_nodes[-1][2], level)
        if level > MAX_DEPTH:
            raise _ShapeError(f"{what} is nested more than {MAX_DEPTH} levels deep (the limit; a real recipe "
                              f"has fewer than 10)")
        if values > MAX_VALUES:
            raise _ShapeError(f"{what} holds more than {MAX_VALUES:,} values (the limit, counting every use of "
                              f"a YAML alias; a real recipe has a few hundred)")


def _safe_load(text: str, what: str) -> Any:
    """``yaml.safe_load`` after :func:`_check_shape`; raises _ShapeError, yaml.YAMLError or ValueError."""
    _check_shape(text, what)
    try:
        return yaml.safe_load(text)
    except RecursionError:  # not expected after the check; never a traceback all the same
        raise _ShapeError(f"{what} is nested too deeply (the limit is {MAX_DEPTH} levels)") from None


# ------------------------------------------------------------------------------------ overrides
def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Apply ``dotted.key=value`` overrides to a raw recipe mapping (values parsed as YAML; text if not YAML).

    A numeric part indexes a list (``data.options.sources.1.options.root=...``)."""
    errors = []
    for text in overrides:
        if "=" not in text:
            errors.append(("--set", f"expected dotted.key=value, got {text!r}"))
            continue
        key, value_text = text.split("=", 1)
        parts = [p for p in key.strip().split(".")]
        if not all(parts):
            errors.append(("--set", f"bad key {key!r}"))
            continue
        if len(value_text) > MAX_OVERRIDE_CHARS:
            errors.append((key, f"the --set value is {len(value_text):,} characters long, more than the limit of "
                                f"{MAX_OVERRIDE_CHARS:,}"))
            continue
        try:
            value = _safe_load(value_text, "the --set value") if value_text.strip() else ""
        except _ShapeError as error:
            errors.append((key, str(error)))
            continue
        except (yaml.YAMLError, ValueError):  # not YAML (or a date YAML cannot build): the text itself
            value = value_text
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):  # an item of a list by its index: data.options.sources.1.options...
                if not (part.isdigit() and int(part) < len(node)):
                    errors.append((key, f"{part!r} is not an index of a list of {len(node)} item(s)"))
                    break
                part = int(part)
                child = node[part]
            elif isinstance(node, dict):
                child = node.get(part)
            else:
                errors.append((key, f"cannot set a key inside {_short(node)}"))
                break
            if last:
                node[part] = value
            elif child is None:
                node[part] = {}
                node = node[part]
            else:
                node = child
    return raw, errors


# -------------------------------------------------------------------------------------- loading
def _semantic_errors(recipe: Recipe) -> list[tuple[str, str]]:
    """Problems that involve several sections (reported with the path to change)."""
    errors = []
    if len(recipe.modalities) == 1 and recipe.diffusion.d > 0:
        errors.append(("diffusion.d", f"must be 0 with a single modality: nothing to condition on "
                                      f"(got {recipe.diffusion.d})"))
    def unknown_modalities(section: str, names: Iterable[str]) -> None:
        errors.extend((f"{section}.{name}", f"no modality {name!r} in this recipe "
                                            f"(modalities: {', '.join(recipe.modalities)})")
                      for name in names if name not in recipe.modalities)

    missing = recipe.data.missing
    if missing is not None:
        unknown_modalities("data.missing.rate", missing.rate)
        unknown_modalities("data.missing.by_label", missing.by_label)
        if len(recipe.modalities) < 2:
            errors.append(("data.missing", "needs at least two modalities: an item must keep one"))
    unknown_modalities("evaluation.embeddings", recipe.evaluation.embeddings)
    unknown_modalities("evaluation.classifier_reconstructions", recipe.evaluation.classifier_reconstructions)
    if recipe.evaluation.classifier_reconstructions and recipe.model.family != DEFAULT_FAMILY:
        errors.append(("evaluation.classifier_reconstructions", f"needs MLD's autoencoders; model family "
                                                                f"{recipe.model.family!r} has none"))
    for name in recipe.modalities:
        if name in ("label", "present") or any(mark in name for mark in ("+", "->", ":", "=", ",")):
            errors.append((f"modalities.{name}", "this modality name is reserved or contains one of "
                                                 "'+', '->', ':', '=', ','"))
    return errors


def _plugin_errors(recipe: Recipe) -> list[tuple[str, str]]:
    """Validate kinds, datasets and their options against the installed plugins (in place)."""
    registry = get_registry()
    errors: list[tuple[str, str]] = []
    for name, modality in recipe.modalities.items():
        try:
            spec = registry.modality(modality.kind)
        except PluginLookupError as error:
            errors.append((f"modalities.{name}.kind", str(error)))
            continue
        try:
            modality.options = spec.options.model_validate(modality.options).model_dump(mode="json")
        except ValidationError as error:
            errors += _pydantic_errors(error, f"modalities.{name}.options")
    try:
        family = registry.model(recipe.model.family)
        options = family.validate_options(recipe.model.options)
        recipe.model.options = options.model_dump(mode="json")
        if family.check is not None:
            family.check(recipe, options)
    except PluginLookupError as error:
        errors.append(("model.family", str(error)))
    except ValidationError as error:
        errors += _pydantic_errors(error, "model.options")
    except ValueError as error:  # the family's check of its options against the rest of the recipe
        errors.append(("model", str(error)))
    try:
        dataset = registry.dataset(recipe.data.dataset)
    except PluginLookupError as error:
        errors.append(("data.dataset", str(error)))
        return errors
    try:
        options = dataset.options.model_validate(recipe.data.options)
    except ValidationError as error:
        return errors + _pydantic_errors(error, "data.options")
    recipe.data.options = options.model_dump(mode="json")
    try:
        fields = list(dataset.fields(options))
    except Exception:  # data not on this machine yet: the fields are checked when training starts
        return errors
    for name in recipe.modalities:
        field = recipe.field_of(name)
        if field not in fields:
            path = f"modalities.{name}.field" if recipe.modalities[name].field else f"modalities.{name}"
            errors.append((path, f"dataset {recipe.data.dataset!r} has no field {field!r} "
                                 f"(fields: {', '.join(fields)})"))
    return errors


def parse_recipe(raw: Any, source: str = "<recipe>", overrides: Iterable[str] = (),
                 check_plugins: bool = True) -> Recipe:
    """Validate a raw mapping (already parsed YAML) into a :class:`Recipe`, or raise RecipeError."""
    if not isinstance(raw, dict):
        got = "nothing: the file is empty or only comments" if raw is None else _short(raw)
        raise RecipeError(source, [("", f"a recipe must be a YAML mapping at the top level (got {got})")])
    raw, errors = apply_overrides(raw, overrides)
    if errors:
        raise RecipeError(source, errors)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as error:
        raise RecipeError(source, _pydantic_errors(error)) from None
    errors = _semantic_errors(recipe)
    if check_plugins:
        errors += _plugin_errors(recipe)
    if errors:
        raise RecipeError(source, errors)
    return recipe


def load_recipe(path: str | Path, overrides: Iterable[str] = (), check_plugins: bool = True) -> Recipe:
    """Read, override and validate a recipe file (or a shipped recipe by name: ``quickstart``); raise
    :class:`RecipeError` listing every problem."""
    file = resolve_recipe(path)  # a file, or the name of a recipe shipped with mmlatent
    source = str(path) if file == Path(path) else f"{path} ({file})"
    if not file.exists() and not file.is_symlink() and file.suffix not in (".yaml", ".yml"):  # not a file, no name
        raise RecipeError(source, [("", unknown_recipe_hint(path))])
    try:
        text = _read_text(file)
    except ValueError as error:
        raise RecipeError(source, [("", str(error))]) from None
    try:
        raw = _safe_load(text, "the recipe")
    except _ShapeError as error:
        raise RecipeError(source, [("", str(error))]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = ", ".join(filter(None, [getattr(error, "context", None), getattr(error, "problem", None)]))
        problem = " ".join((problem or str(error)).split())
        raise RecipeError(source, [("", f"invalid YAML: {where}{problem}")]) from None
    except ValueError as error:  # a value YAML reads but Python cannot build: a date 2020-13-45, a huge integer
        raise RecipeError(source, [("", f"invalid YAML: {error}")]) from None
    return parse_recipe(raw, source, overrides, check_plugins)


def validate_command(path: str, overrides: Sequence[str] = ()) -> int:
    """``mmlatent validate RECIPE``: 0 and a summary when valid, 2 and the errors otherwise."""
    try:
        recipe = load_recipe(path, overrides)
    except RecipeError as error:
        print(error.render(), file=sys.stderr)
        return 2
    summary = ", ".join(f"{name} ({m.kind}, {m.latent_dim})" for name, m in recipe.modalities.items())
    print(f"{path}: OK: {recipe.name}: dataset {recipe.data.dataset}; modalities {summary}")
    return 0
