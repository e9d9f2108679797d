"""Audio datasets: ``spoken_digits`` (synthesised offline with espeak-ng) and ``fsdd`` (Free Spoken Digit Dataset)."""
