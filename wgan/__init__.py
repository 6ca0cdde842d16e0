"""Class-conditional WGAN-GP for FIRST radio galaxy images."""

__version__ = "0.1.0"
