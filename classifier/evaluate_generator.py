"""Score a generator export against real data, per class, beside the real-vs-real floor."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from wgan.atomic import write_text
from wgan.compat import GeneratorMismatch, check_fits
from wgan.data import DataConfig, load_dataset, to_uint8
from wgan.data.preprocess import area_downsample
from wgan.sampling import LoadedGenerator, generate, plan

from .copying import copying_test, plot_closest
from .copying import summary as copy_summary
from .export import LoadedClassifier
from .features import extract_features
from .health import refuse_collapsed
from .matched import FLOOR_SPREAD, MatchedSettings, count_at_floor, matched
from .quality import Evaluated, above_floor, class_fidelity, featurize, per_class


@dataclass
class GeneratorEvaluation:
    n_per_class: int = 400
    seed: int = 0
    kid_subset: int = 100
    tstr_epochs: int = 0  # > 0: also train-on-synthetic/test-on-real with the baseline CNN
    floor_size: int = 100  # matched scores: images per class in each compared set
    floor_draws: int = 10  # matched scores: draws of each set (the floor's spread)


def check_extractor(extractor: LoadedClassifier, class_names: list[str]) -> None:
    """Refuse an extractor of other classes: its class-fidelity shares and per-class features
    would be read against the wrong labels; and one that did not learn (one class for almost
    every image): its features would make any generator look close or far without meaning."""
    refuse_collapsed(extractor.health_report(), f"the extractor ({extractor.name}, {extractor.file_hash[:12]})",
                     "a feature extractor")
    if list(extractor.class_names) != list(class_names):
        raise GeneratorMismatch(f"the extractor knows classes {list(extractor.class_names)}, the data has "
                                f"{list(class_names)}: pass --extractor, a classifier-train model.pt of the same data")


def sample_images(model: torch.nn.Module, n_per_class: int, seed: int,
                  resolution: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class uint8 images of every class, seeds seed, seed + 1, ...; area-downsampled to
    `resolution` when it is coarser than the generator's (see scoring_data)."""
    classes = list(range(model.cfg.num_classes))
    labels, seeds = plan(n_per_class * len(classes), classes, seed)
    factor = model.cfg.resolution // (resolution or model.cfg.resolution)
    images = [area_downsample(to_uint8(batch), factor) for batch, _, _ in generate(model, labels, seeds)]
    return torch.cat(images), labels


def scoring_data(data: DataConfig, generator_resolution: int, extractor_resolution: int) -> DataConfig:
    """The real images a generator is scored against: its own training data, at the extractor's
    resolution. A generator finer than the extractor (the 128 px `paper` preset beside the 64 px
    released extractor) is scored after its images are area-downsampled as the data are, so it
    is compared in the same feature space, at the same size, as the 64 px generators."""
    if generator_resolution == extractor_resolution:
        return data
    if generator_resolution < extractor_resolution or generator_resolution % extractor_resolution:
        raise GeneratorMismatch(
            f"the extractor works at {extractor_resolution} px, the generator makes {generator_resolution} px images: "
            "pass --extractor, one at the generator's resolution or at a whole fraction of it")
    return replace(data, resolution=extractor_resolution)


def evaluate_generator(gen: LoadedGenerator, extractor: LoadedClassifier, settings: GeneratorEvaluation,
                       progress: bool | str = False) -> tuple[dict, dict]:
    """Scores of the generator's samples against its real training split, and the floor
    (the same scores of the real test split against the training split); also returns the
    images compared ({'real': (images, labels), 'generated': ...}) for plotting. `progress`
    reports the train-on-generated classifiers' epochs, the part that takes minutes."""
    names = list(gen.class_names)
    check_extractor(extractor, names)
    check_fits(gen, gen.config.data, names)
    data = scoring_data(gen.config.data, gen.resolution, extractor.resolution)
    train = load_dataset(data)
    test = load_dataset(replace(data, subset="test"))
    valid = load_dataset(replace(data, subset="valid"))
    reference = featurize(extractor, train.images, train.labels, cache_tag=train.fingerprint)
    real_test = featurize(extractor, test.images, test.labels, cache_tag=test.fingerprint)
    real_valid = featurize(extractor, valid.images, valid.labels, cache_tag=valid.fingerprint)
    unseen = Evaluated(*(np.concatenate([getattr(real_valid, k), getattr(real_test, k)])
                         for k in ("images", "labels", "features")))  # never seen by this fold's generator
    images, labels = sample_images(gen.model, settings.n_per_class, settings.seed, extractor.resolution)
    generated = featurize(extractor, images, labels)
    kwargs = {"kid_subset": settings.kid_subset}
    scores = per_class(reference, generated, names, **kwargs)
    floor = per_class(reference, real_test, names, **kwargs)
    at_size = matched(reference, generated, unseen, names, MatchedSettings(
        settings.floor_size, settings.floor_draws, settings.kid_subset, settings.seed))
    copies = copying_test(reference.images, reference.labels, generated.images, generated.labels, unseen.images,
                          unseen.labels, names, lambda x: extract_features(extractor.model, torch.from_numpy(
                              np.ascontiguousarray(x))), settings.seed)
    if settings.tstr_epochs:
        from wgan.data import generated_set

        from .engine import TrainSettings
        from .tstr import train_on_synthetic_test_on_real

        synthetic = generated_set(images, labels, gen.file_hash, gen.pixel_scale_arcsec, tuple(names))
        device = next(extractor.model.parameters()).device
        tstr = train_on_synthetic_test_on_real(synthetic, train, valid, test, TrainSettings(epochs=settings.tstr_epochs,
                                               class_weighted=True, seed=settings.seed), device, progress)
    result = {
        "generator": {"file_hash": gen.file_hash, "release": gen.release, "kimg": gen.kimg,
                      "resolution": gen.resolution, "scored_at": extractor.resolution},
        "class_names": names,
        "extractor": {"model": extractor.name, "file_hash": extractor.file_hash, "resolution": extractor.resolution},
        "reference": {"data": asdict(data), "fingerprint": train.fingerprint},
        "floor_set": {"fingerprint": test.fingerprint, "meaning": "real test split vs real training split"},
        "settings": asdict(settings),
        # the headline: generated and unseen real images at the same size, the floor over several draws
        "matched": at_size,
        "copying": copy_summary(copies),
        # at unmatched sizes (n_per_class generated against the test split's images): kept for
        # continuity; FID and precision/recall favour the larger set, so read `matched`
        "scores": scores,
        "floor": floor,
        "above_floor": above_floor(scores, floor),
        # the floor: the same share for the real test images (the extractor's per-class recall)
        "class_fidelity": {"scores": class_fidelity(extractor, generated, names),
                           "floor": class_fidelity(extractor, real_test, names)},
    }
    if settings.tstr_epochs:
        result["tstr"] = tstr
    compared = {"real": (reference.images, reference.labels), "generated": (generated.images, generated.labels),
                "copying": copies}
    return result, compared


def format_table(result: dict) -> str:
    """A per-class text table: the matched-size scores against the floor's spread (the headline),
    the copying test, then the scores at unmatched sizes with their single-draw floor."""
    names = result["class_names"]
    rows = []
    if "matched" in result:
        m = result["matched"]
        size = next(iter(m.values()))
        rows.append(f"at matched size ({size['size']} images a class, {size['draws']} draws; floor: unseen real "
                    "images, mean ± std over draws):")
        rows.append(f"{'class':8s} {'KID':>17s} {'KID floor':>17s} {'FID / floor':>12s} {'recall':>13s}  verdict")
        for c in names:
            g, f = m[c]["generated"], m[c]["floor"]
            rows.append(f"{c:8s} {g['kid']['mean']:8.4f} ± {g['kid']['std']:.4f} {f['kid']['mean']:8.4f} ± "
                        f"{f['kid']['std']:.4f} {m[c]['fid_ratio']:11.2f}x {g['recall']['mean']:5.3f} ({f['recall']['mean']:.3f})  "
                        f"{m[c]['verdict']}")
        at, total = count_at_floor(m)
        rows.append(f"{at} of {total} classes at the floor (mean KID within {FLOOR_SPREAD:g} std of the floor's; "
                    "std over draws, both sets combined)")
    if "copying" in result:
        rows.append("copying test (nearest training image, generated vs unseen real; suspected: p < 0.01 and "
                    "near copies >= 10 %):")
        for c in names:
            r = result["copying"][c]
            parts = [f"{space} median ratio {r[space]['median_ratio']:.2f}, p {r[space]['mann_whitney_p']:.3f}, "
                     f"near copies {r[space]['near_copy_share']:.0%}, C_T {r[space]['c_t']:+.1f}"
                     for space in ("features", "pixels")]
            rows.append(f"  {c:8s} {'; '.join(parts)}: {'SUSPECTED' if r['suspected'] else 'no sign of copying'}")
    rows.append(f"at unmatched sizes ({result['settings']['n_per_class']} generated a class; floor: the test split "
                "once; FID and precision/recall favour the larger set):")
    # KID in the same unit as scores.json, the release cards and the README (no rescaling)
    rows.append(f"{'class':8s} {'FID':>16s} {'KID':>16s} {'precision':>15s} {'recall':>15s}")
    for group, s in result["scores"].items():
        f = result["floor"][group]
        rows.append(f"{group:8s} {s['fid']:8.2f} ({f['fid']:5.2f}) {s['kid']:8.3f} ({f['kid']:6.3f}) "
                    f"{s['precision']:7.3f} ({f['precision']:.3f}) {s['recall']:7.3f} ({f['recall']:.3f})")
    fidelity = result["class_fidelity"]
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
    """scores.json, quality.png (per-class histogram overlays and generated samples) and
    copying.png (the generated images closest to a training image, beside it)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "scores.json", json.dumps(result, indent=2))
    plot_overlays(images, result["class_names"], out / "quality.png")
    if "copying" in images:
        plot_closest(images["copying"], out / "copying.png")


def plot_overlays(images: dict, class_names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wgan.atomic import atomic_path

    from .astro import image_statistics

    stats = ("activated_pixels", "intensity_sum", "major_axis")
    fig, axes = plt.subplots(len(class_names), len(stats) + 1, figsize=(4 * (len(stats) + 1), 3.2 * len(class_names)))
    for c, name in enumerate(class_names):
        per_set = {kind: image_statistics(images[kind][0][images[kind][1] == c]) for kind in ("real", "generated")}
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
