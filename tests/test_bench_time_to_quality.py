"""The time-to-quality benchmark's training loop and merge, at a tiny budget (a benchmark that no
test runs breaks silently when the code under it changes)."""

import importlib.util
import json
import sys
from argparse import Namespace
from pathlib import Path

from tests.helpers import tiny_config
from wgan.data import DataConfig
from wgan.sampling import load_generator

ROOT = Path(__file__).resolve().parents[1]


def bench_module():
    spec = importlib.util.spec_from_file_location("time_to_quality", ROOT / "bench" / "time_to_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_training_exports_a_loadable_generator_at_every_mark(tmp_path):
    bench = bench_module()
    cfg = tiny_config()
    cfg.data = DataConfig(split="cv", fold=0, subset="train", resolution=16)
    marks = bench.train_for(cfg, minutes=0.02, every=0.01, out=tmp_path)
    assert len(marks) == 2 and marks[0]["iters"] < marks[1]["iters"] and marks[0]["cpu_minutes"] >= 0.01
    for mark in marks:
        assert load_generator(tmp_path / mark["snapshot"]).class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert (tmp_path / "grid-final.png").is_file()


def test_merge_keeps_the_rows_of_an_earlier_result_with_their_machine(tmp_path, monkeypatch):
    bench = bench_module()
    monkeypatch.setattr(bench, "plot", lambda recipes, path: None)
    monkeypatch.setattr(bench, "machine", lambda: {"cpu": "this one"})
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"machine": {"cpu": "that one"}, "budget_cpu_minutes": 20, "recipes": [
        {"recipe": "a", "marks": []}, {"recipe": "b", "marks": []}]}))
    (tmp_path / "out" / "b").mkdir(parents=True)
    (tmp_path / "out" / "b" / "scores.json").write_text(json.dumps({"recipe": "b", "machine": {"cpu": "this one"},
                                                                    "marks": []}))
    bench.merge(Namespace(out=tmp_path / "out", include=[earlier], minutes=10))
    merged = json.loads((tmp_path / "out" / "time_to_quality.json").read_text())
    assert [(r["recipe"], r["machine"]["cpu"], r["budget_cpu_minutes"]) for r in merged["recipes"]] == [
        ("a", "that one", 20), ("b", "this one", 10)]


def test_every_recipe_of_a_large_merge_gets_its_own_line_style():
    """With the default colour cycle the 11th recipe looked like the first in the figure."""
    styles = [tuple(sorted(bench_module().line_style(i).items())) for i in range(60)]
    assert len(set(styles)) == 60
