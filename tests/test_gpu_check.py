"""bench/gpu_check.py, the prepared check of the CUDA path: what can be checked without a GPU and
without its long steps (its steps at toy sizes: python bench/gpu_check.py --device cpu --smoke)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench/gpu_check.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_unknown_steps_and_devices_are_refused_in_one_line(tmp_path):
    for args, message in ((["--steps", "sample,nope"], "unknown step(s) nope"),
                          (["--device", "cuda:9"], "no device 'cuda:9' here")):
        result = check(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_step_is_recorded_and_run_again_a_finished_one_is_skipped(tmp_path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    # sample reads the generator the train-resume step writes; without it the step fails
    for attempt in (1, 2):  # a failed step runs again
        result = check("--device", "cpu", "--smoke", "--steps", "sample", "--out", str(out), "--runs", str(runs))
        assert result.returncode == 1 and "sample: FAILED" in result.stdout, result.stderr
        assert (out / "log.txt").read_text().count("wgan-sample --checkpoint") == attempt
    failed = json.loads((out / "sample.json").read_text())
    assert failed["ok"] is False and "exit" in failed["error"]
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["machine"]["device"] == "cpu" and [s["step"] for s in summary["steps"]] == ["sample"]

    (out / "sample.json").write_text(json.dumps({"step": "sample", "ok": True, "seconds": 1.0, "result": {}}))
    result = check("--device", "cpu", "--smoke", "--steps", "sample", "--out", str(out), "--runs", str(runs))
    assert result.returncode == 0 and "sample: done earlier" in result.stdout
