"""mmlatent-example: modality kind ``category`` and dataset ``remainders``."""
