"""Score a generator export against real data, per class, beside the real-vs-real floor."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from wgan.atomic import write_text
from wgan.compat import GeneratorMismatch, check_fits
from wgan.data import load_dataset, to_uint8
from wgan.sampling import LoadedGenerator, generate, plan

from .export import LoadedClassifier
from .health import refuse_collapsed
from .quality import above_floor, class_fidelity, featurize, per_class


@dataclass
class GeneratorEvaluation:
    n_per_class: int = 400
    seed: int = 0
    kid_subset: int = 100
    tstr_epochs: int = 0  # > 0: also train-on-synthetic/test-on-real with the baseline CNN


def check_extractor(extractor: LoadedClassifier, class_names: list[str]) -> None:
    """Refuse an extractor of other classes: its class-fidelity shares and per-class features
    would be read against the wrong labels; and one that did not learn (one class for almost
    every image): its features would make any generator look close or far without meaning."""
    refuse_collapsed(extractor.health_report(), f"the extractor ({extractor.name}, {extractor.file_hash[:12]})",
                     "a feature extractor")
    if list(extractor.class_names) != list(class_names):
        raise GeneratorMismatch(f"the extractor knows classes {list(extractor.class_names)}, the data has "
                                f"{list(class_names)}: pass --extractor, a classifier-train model.pt of the same data")


def sample_images(model: torch.nn.Module, n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class uint8 images of every class, seeds seed, seed + 1, ..."""
    classes = list(range(model.cfg.num_classes))
    labels, seeds = plan(n_per_class * len(classes), classes, seed)
    images = [to_uint8(batch) for batch, _, _ in generate(model, labels, seeds)]
    return torch.cat(images), labels


def evaluate_generator(gen: LoadedGenerator, extractor: LoadedClassifier,
                       settings: GeneratorEvaluation) -> tuple[dict, dict]:
    """Scores of the generator's samples against its real training split, and the floor
    (the same scores of the real test split against the training split); also returns the
    images compared ({'real': (images, labels), 'generated': ...}) for plotting."""
    data, names = gen.config.data, list(gen.class_names)
    check_extractor(extractor, names)
    check_fits(gen, data, names, classifier_resolution=extractor.resolution)
    train = load_dataset(data)
    test = load_dataset(replace(data, subset="test"))
    reference = featurize(extractor, train.images, train.labels, cache_tag=train.fingerprint)
    real_test = featurize(extractor, test.images, test.labels, cache_tag=test.fingerprint)
    images, labels = sample_images(gen.model, settings.n_per_class, settings.seed)
    generated = featurize(extractor, images, labels)
    kwargs = {"kid_subset": settings.kid_subset}
    scores = per_class(reference, generated, names, **kwargs)
    floor = per_class(reference, real_test, names, **kwargs)
    if settings.tstr_epochs:
        from wgan.data import generated_set

        from .engine import TrainSettings
        from .tstr import train_on_synthetic_test_on_real

        valid = load_dataset(replace(data, subset="valid"))
        synthetic = generated_set(images, labels, gen.file_hash, gen.pixel_scale_arcsec, tuple(names))
        device = next(extractor.model.parameters()).device
        tstr = train_on_synthetic_test_on_real(synthetic, train, valid, test, TrainSettings(epochs=settings.tstr_epochs,
                                               class_weighted=True, seed=settings.seed), device)
    result = {
        "generator": {"file_hash": gen.file_hash, "kimg": gen.kimg},
        "class_names": names,
        "extractor": {"model": extractor.name, "file_hash": extractor.file_hash, "resolution": extractor.resolution},
        "reference": {"data": asdict(data), "fingerprint": train.fingerprint},
        "floor_set": {"fingerprint": test.fingerprint, "meaning": "real test split vs real training split"},
        "settings": asdict(settings),
        "scores": scores,
        "floor": floor,
        "above_floor": above_floor(scores, floor),
        # the floor: the same share for the real test images (the extractor's per-class recall)
        "class_fidelity": {"scores": class_fidelity(extractor, generated, names),
                           "floor": class_fidelity(extractor, real_test, names)},
    }
    if settings.tstr_epochs:
        result["tstr"] = tstr
    compared = {"real": (reference.images, reference.labels), "generated": (generated.images, generated.labels)}
    return result, compared


def format_table(result: dict) -> str:
    """A per-class text table: each score with its real-vs-real floor in brackets."""
    # KID in the same unit as scores.json, the release cards and the README (no rescaling)
    rows = [f"{'class':8s} {'FID':>16s} {'KID':>16s} {'precision':>15s} {'recall':>15s}"]
    for group, s in result["scores"].items():
        f = result["floor"][group]
        rows.append(f"{group:8s} {s['fid']:8.2f} ({f['fid']:5.2f}) {s['kid']:8.3f} ({f['kid']:6.3f}) "
                    f"{s['precision']:7.3f} ({f['precision']:.3f}) {s['recall']:7.3f} ({f['recall']:.3f})")
    fidelity, names = result["class_fidelity"], result["class_names"]
    rows.append("class fidelity (share classified as their own class by the extractor): " + ", ".join(
        f"{c} {fidelity['scores'][c]:.2f} ({fidelity['floor'][c]:.2f})" for c in names))
    rows.append("(in brackets: the floor, the same score of the real test split against the real training split)")
    if "tstr" in result:
        syn, real = result["tstr"]["synthetic"], result["tstr"]["real"]
        rows.append("train on synthetic / train on real, test F1 on real: " + ", ".join(
            f"{c} {syn['f1'][c]:.3f}/{real['f1'][c]:.3f}" for c in names)
            + f"; accuracy {syn['accuracy']:.3f}/{real['accuracy']:.3f}")
    return "\n".join(rows)


def write_outputs(result: dict, images: dict, out: Path) -> None:
    """scores.json and quality.png (per-class histogram overlays and generated samples)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "scores.json", json.dumps(result, indent=2))
    plot_overlays(images, result["class_names"], out / "quality.png")


def plot_overlays(images: dict, class_names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wgan.atomic import atomic_path

    from .astro import image_statistics

    stats = ("activated_pixels", "intensity_sum", "major_axis")
    fig, axes = plt.subplots(len(class_names), len(stats) + 1, figsize=(4 * (len(stats) + 1), 3.2 * len(class_names)))
    for c, name in enumerate(class_names):
        per_set = {kind: image_statistics(imgs[labels == c]) for kind, (imgs, labels) in images.items()}
        for j, stat in enumerate(stats):
            ax = axes[c, j]
            values = np.concatenate([per_set[k][stat] for k in per_set])
            bins = np.linspace(values.min(), values.max() + 1e-9, 30)
            for kind in ("real", "generated"):
                ax.hist(per_set[kind][stat], bins=bins, density=True, histtype="step", label=kind)
            ax.set_title(f"{name}: {stat}")
            ax.legend(fontsize=7)
        gen_images, gen_labels = images["generated"]
        sample = gen_images[gen_labels == c][:16]
        tiles = np.zeros((4 * sample.shape[1], 4 * sample.shape[2]), dtype=np.uint8) if len(sample) else np.zeros((1, 1))
        for i, img in enumerate(sample):
            r, q = divmod(i, 4)
            tiles[r * img.shape[0] : (r + 1) * img.shape[0], q * img.shape[1] : (q + 1) * img.shape[1]] = img
        axes[c, -1].imshow(tiles, cmap="inferno")
        axes[c, -1].set_title(f"{name}: generated")
        axes[c, -1].axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
