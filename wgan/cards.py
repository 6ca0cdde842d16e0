"""One markdown table of several release cards (e.g. the five per-fold generators):

    radiogan-release cards checkpoints/generator.json checkpoints/generator-cv*.json

Per card: the fold, iterations, per-class KID at matched size beside its floor (mean over draws of
unseen real images of the same size), the FID ratio at that size and the copying test's verdict
(cards scored before matched sizes existed show '-': rescore them, `radiogan-release rescore`), recall,
class fidelity, the activated-pixel and summed-intensity Wasserstein distances as multiples of
their floors and, when the card has it, the test accuracy of a classifier trained on generated
images only (beside the same classifier trained on the real training split).
"""

from __future__ import annotations

from .data import CLASS_NAMES


def floor_multiples(card: dict, score: str, names) -> str:
    """`score`'s Wasserstein distance per class as a multiple of its real-vs-real floor."""
    astro, floor = card.get("astro"), card.get("astro_floor")
    if not astro or not floor:
        return "-"
    return " / ".join(f"{astro[c][score]['wasserstein'] / floor[c][score]['wasserstein']:.1f}" for c in names)


def row(card: dict) -> str:
    scores, names = card["scores"], card.get("class_names", CLASS_NAMES)
    matched, copying = card.get("matched"), card.get("copying")
    kid = " / ".join(f"{matched[c]['generated']['kid']['mean']:.3f} ({matched[c]['floor']['kid']['mean']:.3f})"
                     for c in names) if matched else "-"
    fid = " / ".join(f"{matched[c]['fid_ratio']:.2f}" for c in names) if matched else "-"
    at = f"{sum(matched[c]['verdict'] == 'at the floor' for c in names)} of {len(names)}" if matched else "-"
    copies = (", ".join(c for c in names if copying[c]["suspected"]) or "none") if copying else "-"
    recall = " / ".join(f"{scores[c]['recall']:.2f}" for c in names)
    fidelity = card.get("class_fidelity") or {}
    fid_share = " / ".join(f"{fidelity['scores'][c]:.2f}" for c in names) if fidelity else "-"
    tstr = card.get("train_on_generated")
    usefulness = f"{tstr['synthetic']['accuracy']:.3f} ({tstr['real']['accuracy']:.3f})" if tstr else "-"
    fold = card["data"]["fold"] if card["data"]["split"] == "cv" else card["data"]["split"]
    activated, summed = (floor_multiples(card, score, names) for score in ("activated_pixels", "intensity_sum"))
    return (f"| {fold} | {card['generator_iterations']} | {kid} | {fid} | {at} | {copies} | {recall} | {fid_share} "
            f"| {activated} | {summed} | {usefulness} |")


def table(cards: list[dict]) -> str:
    names = " / ".join(cards[0].get("class_names", CLASS_NAMES))
    head = (f"| fold | iterations | KID {names} at matched size (floor) | FID / floor {names} | classes at the floor "
            f"| copying suspected | recall {names} | class fidelity {names} "
            "| activated-pixel W1, x floor | summed-intensity W1, x floor | train-on-generated accuracy (real) |")
    return "\n".join([head, "|---" * 11 + "|", *map(row, cards)]) + "\n"
