"""Subject-exclusive folds: the standard 3-fold subject splits of the cited papers, or a seeded split (README, Data)."""
import numpy as np
import pytest

from aubench.data.folds import STANDARD_PARTS, build_fold_table, make_folds, occurrence_rates, read_fold, subject_parts
from aubench.errors import DataError


@pytest.mark.parametrize("dataset", ["bp4d", "disfa"])
def test_standard_folds_are_the_published_lists(dataset):
    subjects = [subject for part in STANDARD_PARTS[dataset] for subject in part]
    parts = subject_parts(dataset, subjects, seed=0)
    folds = make_folds(parts)
    assert [fold.number for fold in folds] == [1, 2, 3]
    # Fold 1 tests part 3, fold 2 tests part 2, fold 3 tests part 1.
    assert set(folds[0].test_subjects) == set(STANDARD_PARTS[dataset][2])
    assert set(folds[1].test_subjects) == set(STANDARD_PARTS[dataset][1])
    assert set(folds[2].test_subjects) == set(STANDARD_PARTS[dataset][0])


def test_bp4d_part_sizes_and_first_subjects():
    assert [len(part) for part in STANDARD_PARTS["bp4d"]] == [14, 14, 13]
    assert [len(part) for part in STANDARD_PARTS["disfa"]] == [9, 9, 9]
    assert STANDARD_PARTS["bp4d"][0][:3] == ("F001", "M007", "F018")
    assert STANDARD_PARTS["disfa"][2][-1] == "SN004"


@pytest.mark.parametrize("dataset,subjects", [
    ("bp4d", [s for part in STANDARD_PARTS["bp4d"] for s in part]),
    ("synthau", [f"F{i:03d}" for i in range(1, 8)]),
])
def test_folds_are_subject_disjoint_and_cover_everyone(dataset, subjects):
    folds = make_folds(subject_parts(dataset, subjects, seed=3))
    tested = [subject for fold in folds for subject in fold.test_subjects]
    assert sorted(tested) == sorted(subjects)  # every subject is tested exactly once
    for fold in folds:
        assert not set(fold.train_subjects) & set(fold.test_subjects)
        assert sorted(fold.train_subjects + fold.test_subjects) == sorted(subjects)


def test_seeded_split_is_deterministic_and_seed_dependent():
    subjects = [f"S{i}" for i in range(12)]
    assert subject_parts("synthau", subjects, 0) == subject_parts("synthau", subjects, 0)
    assert subject_parts("synthau", subjects, 0) != subject_parts("synthau", subjects, 1)


def test_unknown_subject_in_standard_dataset_is_an_error():
    with pytest.raises(DataError, match="X999"):
        subject_parts("bp4d", ["F001", "X999"], seed=0)


def test_occurrence_rates_ignore_unknown_labels():
    labels = np.array([[1, 0], [0, -1], [1, -1], [-1, 1]])
    assert occurrence_rates(labels).tolist() == pytest.approx([2 / 3, 1 / 2])


def test_fold_table_round_trip():
    labels = {f"S{i}": np.array([[i % 2, 1]]) for i in range(6)}
    table = build_fold_table("synthau", (1, 2), labels, seed=0)
    fold, rates = read_fold(table, 2)
    assert len(fold.train_subjects) == 4 and len(fold.test_subjects) == 2
    expected = np.mean([i % 2 for i in range(6) if f"S{i}" in fold.train_subjects])
    assert rates.tolist() == pytest.approx([expected, 1.0])
    with pytest.raises(DataError, match="fold 4"):
        read_fold(table, 4)
