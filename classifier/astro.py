"""The published astrophysical checks of generated images, plus source morphology.

Per image (on the FIRST 0..255 scale): pixel intensities, the number of activated pixels
(>= 1, i.e. above the noise floor), the summed intensity, and from scikit-image the number of
connected components above the floor and the area, major-axis length and elongation of the
largest. Real and generated distributions are compared by the 1-D Wasserstein distance and the
relative mean absolute error of their normalised histograms.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

ACTIVATED = 1  # pixels at or above this level (0..255) count as source, below it as floor


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics of uint8 images [N, H, W]; 'intensity' holds every pixel."""
    from skimage.measure import label, regionprops

    images = np.asarray(images)
    source = images >= ACTIVATED
    components, area, major, elongation = [], [], [], []
    for mask in source:
        regions = regionprops(label(mask, connectivity=2))
        components.append(len(regions))
        largest = max(regions, key=lambda r: r.area, default=None)
        area.append(largest.area if largest else 0)
        major.append(largest.axis_major_length if largest else 0.0)
        elongation.append(1 - largest.axis_minor_length / largest.axis_major_length
                          if largest and largest.axis_major_length > 0 else 0.0)
    return {
        "intensity": images.reshape(-1).astype(np.float64),
        "activated_pixels": source.reshape(len(images), -1).sum(1).astype(np.float64),
        "intensity_sum": images.reshape(len(images), -1).sum(1).astype(np.float64),
        "components": np.asarray(components, dtype=np.float64),
        "largest_area": np.asarray(area, dtype=np.float64),
        "major_axis": np.asarray(major, dtype=np.float64),
        "elongation": np.asarray(elongation, dtype=np.float64),
    }


def relative_mae(real: np.ndarray, fake: np.ndarray, bins: int = 32) -> float:
    """sum |h_real - h_fake| / sum h_real over shared bins of the normalised histograms."""
    low, high = min(real.min(), fake.min()), max(real.max(), fake.max())
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    h_real = np.histogram(real, edges)[0] / len(real)
    h_fake = np.histogram(fake, edges)[0] / len(fake)
    return float(np.abs(h_real - h_fake).sum() / h_real.sum())


def compare_statistics(real: dict[str, np.ndarray], fake: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{statistic: {'wasserstein': ..., 'relative_mae': ...}} for every statistic."""
    return {
        name: {"wasserstein": float(wasserstein_distance(real[name], fake[name])),
               "relative_mae": relative_mae(real[name], fake[name])}
        for name in real
    }
