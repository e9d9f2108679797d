"""Entry point of the ``mmlatent-text`` plugin: registers the ``text`` modality kind."""

from __future__ import annotations

import mmlatent

from mmlatent_text.options import TextOptions


@mmlatent.hookimpl
def register_modalities(register):
    register(
        mmlatent.ModalitySpec(
            kind="text",
            modality="mmlatent_text.modality:TextModality",
            options=TextOptions,
            description="short captions: fitted word vocabulary, 1-D convolutional autoencoder",
        )
    )
