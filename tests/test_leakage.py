"""Which evaluation images a study's generators saw, combined over a fold's replicas."""

import pytest

from augment import leakage
from wgan.data import DataConfig, load_dataset


def test_a_folds_overlap_over_its_generator_replicas_is_the_largest_any_replica_has():
    """Each cell of the confirmatory study uses one of three generators of its fold; the report's
    overlap counts may understate none of them."""

    data = {"source": "first", "split": "cv", "fold": 2}
    checks = [{"generator_data": data, "test_images_seen": 0, "valid_images_seen": v,
               "dropped_train_images_seen": {"3": d3, "4": d4}} for v, d3, d4 in ((0, 5, 1), (2, 0, 7), (1, 3, 3))]
    assert leakage.combine(checks) == {"generator_data": data, "test_images_seen": 0, "valid_images_seen": 2,
                                       "dropped_train_images_seen": {"3": 5, "4": 7}}
    assert checks[0]["valid_images_seen"] == 0  # the replicas' own records are left as they were
    without = [{k: v for k, v in c.items() if k != "dropped_train_images_seen"} for c in checks]
    assert leakage.combine(without) == {"generator_data": data, "test_images_seen": 0, "valid_images_seen": 2}


def test_leakage_check_finds_test_images_in_training_data_of_another_crop():
    """The literature split holds 288 of the 400 cv test images; a generator trained on it at a
    64 px crop must still be caught when the evaluation crops 128 px."""
    eval_data = DataConfig(split="cv", resolution=32)
    test = load_dataset(DataConfig(split="cv", resolution=32, subset="test"))
    with pytest.raises(ValueError, match="trained on 288 of the 400 test images"):
        leakage.check(DataConfig(split="literature", crop=64, resolution=32), eval_data, test, test)
