"""Where the released models live (one place for every default path to them)."""

from pathlib import Path

CHECKPOINTS = Path("checkpoints")  # relative to the working directory: the repository root
GENERATOR = CHECKPOINTS / "generator.pt"  # the released generator of cv fold 0
EXTRACTOR = CHECKPOINTS / "extractor.pt"  # the frozen classifier whose features the quality scores use
REGISTRY = CHECKPOINTS / "registry.json"  # every release, and each cv fold's generator
CORNER_CASES = CHECKPOINTS / "corner_cases.json"  # the difficult test sources augment-cml tracks
