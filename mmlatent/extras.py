"""Optional dependencies: a feature whose package is not installed says what to install (exit 2).

::

    require("transformers", feature="CLIP-S (evaluation.clip_model)", install="pip install 'mmlatent[clip]'")

is called where a feature starts (before a run directory is written, when a recipe asks for it),
checks with :func:`importlib.util.find_spec` (nothing is imported) and raises
:class:`MissingDependencyError`, which the command line reports as one message with exit code 2.
Plugins use it for their own optional packages.
"""

from __future__ import annotations

import importlib.util

from mmlatent.errors import UserError

__all__ = ["EXTRAS", "MissingDependencyError", "require", "require_extra"]

#: The core's extras: name -> (the module it provides, the feature that needs it).
EXTRAS = {
    "clip": ("transformers", "CLIP-S (evaluation.clip_model)"),
    "fid": ("torchvision", "FID (evaluation.inception_weights)"),
    "tensorboard": ("tensorboard", "TensorBoard logging (train.log_with: [tensorboard])"),
}


class MissingDependencyError(UserError):
    """A feature's optional package is not installed; the message names what to install."""


def is_installed(module: str) -> bool:
    """Whether ``module`` (``"sklearn"``, ``"scipy.io"``) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken module spec
        return False


def require(module: str, *, feature: str, install: str) -> None:
    """Raise :class:`MissingDependencyError` ("``feature`` needs ``module``, not installed: ``install``")
    when ``module`` cannot be imported."""
    if not is_installed(module):
        raise MissingDependencyError(f"{feature} needs the package {module.split('.')[0]!r}, which is not "
                                     f"installed: {install}")


def require_extra(extra: str) -> None:
    """:func:`require` for one of the core's :data:`EXTRAS` (``pip install 'mmlatent[extra]'``)."""
    module, feature = EXTRAS[extra]
    require(module, feature=feature, install=f"pip install 'mmlatent[{extra}]'")
