"""Mixing generated images into classifier training and measuring the effect per class."""
