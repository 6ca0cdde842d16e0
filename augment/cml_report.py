"""report.md of `augment-cml`: the verdict first, then every section with deltas to the best."""

from __future__ import annotations

from .report import shown_path


def _delta(new: float, old: float | None) -> str:
    return "" if old is None else f" ({new - old:+.3f})"


def _gain(g: dict) -> str:
    if g["n"] < 2:
        return f"{g['mean']:+.3f}"
    return f"{g['mean']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]"


def markdown(report: dict, best_core: dict | None) -> str:
    core, b = report["core"], best_core
    failed = [g for g in report["gates"] if not g["passed"]]
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [f"# Generator check: {verdict}", ""]
    if report["best"] is None:
        lines += ["No current best in the registry: nothing to compare with; every gate passes.", ""]
    else:
        lines += [f"Compared with the current best `{report['best']}`.", ""]
    if report.get("fold_release"):
        lines += [f"Not compared with `{report['fold_release']}`, the release of this generator's own fold: it has "
                  "no augment-cml metrics (run augment-cml on it to make it the bar).", ""]
    lines += [f"- **{g['name']}** regressed: {g['detail']}" for g in failed] + ([""] if failed else [])
    gen = report["generator"]
    lines += [f"Generator `{shown_path(gen['file'])}` (sha256 {gen['sha256'][:16]}, {gen['kimg']:.0f} kimg), extractor "
              f"{report['extractor']['model']} ({report['extractor']['file_hash']}). Settings: {report['settings']}.", "",
              "## Quality per class (generated vs real training images; floor = real test vs real training)", "",
              "| class | KID | KID floor | FID | FID floor | precision | recall |", "|---|---|---|---|---|---|---|"]
    names = list(core["quality"])
    for c in names:
        q, f = core["quality"][c], core["floor"][c]
        old = b["quality"][c] if b else {}
        lines.append(f"| {c} | {q['kid']:.3f} ± {q['kid_std']:.3f}{_delta(q['kid'], old.get('kid'))} | {f['kid']:.3f} | "
                     f"{q['fid']:.1f}{_delta(q['fid'], old.get('fid'))} | {f['fid']:.1f} | {q['precision']:.3f} | {q['recall']:.3f} |")
    lines += ["", "## Augmentation: test F1 gain over real-only, paired over folds x seeds (95 % interval over runs and test images)", "",
              "| | gain | best's gain |", "|---|---|---|"]
    for key in (*names, "accuracy"):
        lines.append(f"| {key} | {_gain(core['gain'][key])} | {_gain(b['gain'][key]) if b else '-'} |")
    lines += ["", f"Runs that failed to learn (kept in the means): {report['failures']}.", "",
              "## Behavioural tests (CNN trained with the generator, fold 0)", "",
              "| test | value | threshold | result | per class |", "|---|---|---|---|---|"]
    for t in core["behaviour"]:
        per_class = "; ".join(f"{c}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()) for c, m in t["per_class"].items())
        lines.append(f"| {t['name']} | {t['value']:.3f} | {t['threshold']} | {'pass' if t['passed'] else 'FAIL'} | {per_class} |")
    right = sum(core["corners"].values())
    corner_gate = next((g for g in report["gates"] if g["name"] == "corner cases"), None)
    lines += ["", "## Corner cases", "",
              f"{right} of {len(core['corners'])} cases of `{shown_path(report['corner_case_list']['file'])}` "
              f"(version {report['corner_case_list']['version']}) predicted correctly"
              + (f"; {corner_gate['detail']}." if corner_gate else "."), "",
              "## Figures", "",
              *[f"![{c} samples](samples_{c}.png)" for c in names], "",
              "Grad-CAM of the CNN (real-only vs with generated images) on fixed test images:", "", "![Grad-CAM](gradcam.png)", "",
              "ViT attention (rollout of the class token) on the same images" + _vit_note(report.get("vit")) + ":", "",
              "![attention](attention.png)", "",
              "Extractor features, real vs generated, per class (PCA and t-SNE):", "", "![embedding](embedding.png)", ""]
    return "\n".join(lines)


def _vit_note(vit: dict | None) -> str:
    """How far to trust the attention maps: the ViT's own test accuracy (reports written before
    it was recorded say nothing)."""
    if not vit:
        return ""
    epochs = f"{vit['epochs']} epoch{'s' if vit['epochs'] != 1 else ''}"
    return (f", from a `{vit['model']}` trained {epochs} with the generated images (test accuracy "
            f"{vit['test_accuracy']:.3f}; near 0.25, chance for 4 classes, the maps say nothing)")
