"""Subject-exclusive 3-fold splits and per-fold AU statistics.

BP4D and DISFA use the standard part lists every cited result uses; any other dataset (SynthAU
included) gets a seeded, subject-exclusive split into the same number of parts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from aubench.data.aus import UNKNOWN
from aubench.errors import DataError
from aubench.seeding import rng

log = logging.getLogger(__name__)

STANDARD_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "bp4d": (
        tuple("F001 M007 F018 F008 F002 M004 F010 F009 M012 M001 F016 M014 F023 M008".split()),
        tuple("M011 F003 M010 M002 F005 F022 M018 M017 F013 M016 F020 F011 M013 M005".split()),
        tuple("F007 F015 F006 F019 M006 M009 F012 M003 F004 F021 F017 M015 F014".split()),
    ),
    "disfa": (
        tuple("SN002 SN010 SN001 SN026 SN027 SN032 SN030 SN009 SN016".split()),
        tuple("SN013 SN018 SN011 SN028 SN012 SN006 SN031 SN021 SN024".split()),
        tuple("SN003 SN029 SN023 SN025 SN008 SN005 SN007 SN017 SN004".split()),
    ),
}
#: Fold k tests on this part (0-based): fold 1 tests part 3, fold 2 part 2, fold 3 part 1.
TEST_PART_OF_FOLD = {1: 2, 2: 1, 3: 0}


@dataclass(frozen=True)
class FoldsConfig:
    """The `folds` params section."""

    seed: int = 0


@dataclass(frozen=True)
class Fold:
    number: int
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]


def subject_parts(dataset: str, subjects: list[str], seed: int) -> tuple[tuple[str, ...], ...]:
    """The three subject parts: standard lists for 'bp4d'/'disfa', a seeded split otherwise."""
    if dataset in STANDARD_PARTS:
        return _standard_parts(dataset, subjects)
    if len(subjects) < 3:
        raise DataError(f"{dataset}: a 3-fold subject-exclusive split needs at least 3 subjects, "
                        f"found {len(subjects)}")
    order = rng(seed, "folds").permutation(sorted(subjects))
    return tuple(tuple(sorted(part)) for part in np.array_split(order, 3))


def _standard_parts(dataset: str, subjects: list[str]) -> tuple[tuple[str, ...], ...]:
    parts = STANDARD_PARTS[dataset]
    listed = {subject for part in parts for subject in part}
    unknown = sorted(set(subjects) - listed)
    if unknown:
        raise DataError(f"{dataset}: subjects {', '.join(unknown)} are not in the standard fold lists "
                        "(the standard BP4D/DISFA 3-fold parts); set dataset.name to another name to split them by seed")
    absent = sorted(listed - set(subjects))
    if absent:
        log.warning("%s: %d listed subjects are absent from the data: %s", dataset, len(absent), " ".join(absent))
    present = set(subjects)
    return tuple(tuple(subject for subject in part if subject in present) for part in parts)


def make_folds(parts: tuple[tuple[str, ...], ...]) -> list[Fold]:
    """Folds 1–3: each tests one part and trains on the other two."""
    folds = []
    for number, test_part in TEST_PART_OF_FOLD.items():
        train = tuple(subject for index, part in enumerate(parts) if index != test_part for subject in part)
        folds.append(Fold(number, tuple(sorted(train)), tuple(sorted(parts[test_part]))))
    return folds


def occurrence_rates(labels: np.ndarray) -> np.ndarray:
    """Per-AU fraction of labelled frames where the AU is present (unknown labels excluded)."""
    known = labels != UNKNOWN
    positives = ((labels == 1) & known).sum(0)
    counted = known.sum(0)
    if (counted == 0).any():
        raise DataError(f"AU columns {np.flatnonzero(counted == 0).tolist()} have no labelled training frame")
    return positives / counted


def build_fold_table(dataset: str, aus: tuple[int, ...], labels_by_subject: dict[str, np.ndarray],
                     seed: int) -> dict:
    """The folds file: subjects per fold and each fold's training AU occurrence rates."""
    parts = subject_parts(dataset, sorted(labels_by_subject), seed)
    folds = []
    for fold in make_folds(parts):
        rates = occurrence_rates(np.concatenate([labels_by_subject[subject] for subject in fold.train_subjects]))
        folds.append({"fold": fold.number, "train_subjects": list(fold.train_subjects),
                      "test_subjects": list(fold.test_subjects), "train_au_rates": rates.round(6).tolist()})
    return {"dataset": dataset, "aus": list(aus), "folds": folds}


def read_fold(table: dict, number: int) -> tuple[Fold, np.ndarray]:
    """Fold `number` and its training AU occurrence rates from a folds table."""
    for entry in table["folds"]:
        if entry["fold"] == number:
            fold = Fold(number, tuple(entry["train_subjects"]), tuple(entry["test_subjects"]))
            return fold, np.array(entry["train_au_rates"])
    raise DataError(f"fold {number} is not in the folds file (folds: {[e['fold'] for e in table['folds']]})")
