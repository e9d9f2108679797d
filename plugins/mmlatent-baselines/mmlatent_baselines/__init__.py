"""mmlatent-baselines: the multimodal VAE baselines (MVAE, MMVAE, MoPoE, Nexus, MVTCAE) as mmlatent
model families, built on MultiVae with the modality plugins' own networks.

A recipe picks one with ``model: {family: mopoe, options: {...}}`` (options:
:mod:`mmlatent_baselines.options`); it then trains, samples and evaluates through the same
commands as MLD. The plugin entry point is :mod:`mmlatent_baselines.plugin`. Importing this
package imports neither MultiVae nor the trainer.
"""

from mmlatent_baselines.options import (
    FAMILY_OPTIONS,
    BaselineOptions,
    MMVAEOptions,
    MoPoEOptions,
    MVAEOptions,
    MVTCAEOptions,
    NexusOptions,
)

__version__ = "0.1.0"

__all__ = ["FAMILY_OPTIONS", "BaselineOptions", "MMVAEOptions", "MVAEOptions", "MVTCAEOptions", "MoPoEOptions",
           "NexusOptions", "__version__"]
