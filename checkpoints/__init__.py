"""The released models, installed with the package as `radiogan_models` (see wgan.released)."""
