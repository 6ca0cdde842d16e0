"""Draw images from a generator export, one seed per image (output independent of batch size)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint, released
from .config import TrainConfig
from .data.cache import file_digest
from .networks import Generator, PerClassGenerator


@dataclass
class LoadedGenerator:
    model: Generator | PerClassGenerator  # in eval mode: BatchNorm on running statistics, images are per-sample
    class_names: list[str]
    pixel_scale_arcsec: float
    file_hash: str
    kimg: float
    config: TrainConfig  # the training run's config: network, data (split, fold, crop), schedule
    release: str | None = None  # its pinned release name (first-cv<k>@<hash>), when it is a per-fold release

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> LoadedGenerator:
    """Rebuild the generator of an export (weights_only load; clear errors for bad files)."""
    payload = checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
    digest = file_digest(path)
    try:
        cfg = TrainConfig.from_json(payload["config"])
        if "members" in payload:  # a per-class composite (wgan-select)
            model = PerClassGenerator(cfg.network)
            for member, state in zip(model.members, payload["members"], strict=True):
                member.load_state_dict(state)
        else:
            model = Generator(cfg.network)
            model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise checkpoint.CheckpointError(f"{path}: generator export does not match this network code ({error})") from None
    return LoadedGenerator(
        model=model.to(device).eval().requires_grad_(False),
        class_names=list(payload["class_names"]),
        pixel_scale_arcsec=float(payload["pixel_scale_arcsec"]),
        file_hash=digest[:16],
        kimg=float(payload["kimg"]),
        config=cfg,
        release=released.release_name(digest),
    )


def image_noise(seed: int, z_dim: int) -> torch.Tensor:
    """The noise vector of one image: a function of its seed alone."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed))


def plan(n: int, classes: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and seeds of n images spread over `classes` as equally as possible.

    Image i gets seed `seed + i`; classes come in blocks, the first n % len(classes)
    classes taking one image more.
    """
    per_class = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    labels = torch.cat([torch.full((k,), c, dtype=torch.int64) for c, k in zip(classes, per_class)])
    return labels, torch.arange(seed, seed + n, dtype=torch.int64)


@torch.no_grad()
def generate(model: Generator, labels: torch.Tensor, seeds: torch.Tensor,
             batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (images [B, H, W] float in [-1, 1] on the CPU, labels, seeds) batch by batch.

    `model` must be in eval mode (BatchNorm on running statistics), as exports and EMA copies are.
    """
    device = next(model.parameters()).device
    for start in range(0, labels.numel(), batch_size):
        y, s = labels[start : start + batch_size], seeds[start : start + batch_size]
        z = torch.stack([image_noise(int(seed), model.cfg.z_dim) for seed in s])
        images = model(z.to(device), y.to(device)).float().cpu()[:, 0]
        yield images, y, s


GRID_IMAGES = 64


def write_samples(gen: LoadedGenerator, n: int, classes: list[int], seed: int, out: Path, fmt: str,
                  grid: bool = False, batch_size: int = 256, progress: bool = True) -> Path:
    """Stream n images to `out` in format `fmt` (memory stays flat in n); returns the output path."""
    from torchvision.utils import make_grid

    from .atomic import WriteError, reason
    from .data import to_uint8
    from .grids import save_png
    from .progress import progress_bar
    from .writers import PER_IMAGE, WRITERS, output_folder, output_path

    target = output_path(out, fmt)
    labels, seeds = plan(n, classes, seed)
    # a file records "" as the release of a generator that is not a pinned release (HDF5 and FITS hold no None)
    meta = {"generator_hash": gen.file_hash, "generator_release": gen.release or "",
            "pixel_scale_arcsec": gen.pixel_scale_arcsec}
    kept: dict[int, list[torch.Tensor]] = {c: [] for c in classes}
    folder = output_folder(out, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with WRITERS[fmt](target, n, gen.resolution, gen.class_names, meta) as writer, \
                progress_bar(total=n, unit="img", desc="wgan-sample", progress=progress) as bar:
            for images, y, s in generate(gen.model, labels, seeds, batch_size):
                writer.write(to_uint8(images).numpy(), images, y, s)
                if grid:
                    for c in classes:
                        room = GRID_IMAGES - sum(len(t) for t in kept[c])
                        chosen = images[y == c][:room]
                        if len(chosen):
                            kept[c].append(chosen)
                bar.update(len(y))
    except OSError as error:  # e.g. a disk that filled up from elsewhere after the free-space check
        kept_note = "the images written before are complete" if fmt in PER_IMAGE else "no file was written"
        raise WriteError(f"{target}: writing stopped ({reason(error)}); {kept_note}") from None
    if grid:
        for c in (c for c in classes if kept[c]):  # a class may get no image when n < classes
            picture = make_grid(torch.cat(kept[c])[:, None], nrow=8, padding=2, pad_value=1.0)[0]
            save_png(to_uint8(picture).numpy(), folder / f"grid_{gen.class_names[c]}.png")
    return target
