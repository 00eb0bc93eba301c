"""SynthAU report: label statistics on hand-worked labels, the contact sheet, and relations in generated labels."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from aubench.data.aus import ALL_AUS
from aubench.data.synthau import SequenceLabels, SynthConfig, generate_labels, tiny_config
from aubench.data.synthau.generator import summarize
from aubench.data.synthau.report import (
    CELL,
    SHEET_BOTTOM,
    SHEET_LEFT,
    SHEET_RIGHT,
    SHEET_TOP,
    contact_sheet,
    cooccurrence_figure,
    label_statistics,
)
from aubench.errors import DataError


def _sequence(name: str, au1: list[int], au2: list[int]) -> SequenceLabels:
    coded = np.array([au1, au2], dtype=np.int8).T
    return SequenceLabels(name, "T1", np.zeros(coded.shape, np.float32), coded)


# Two AUs, three sequences; 9 = not coded. Worked by hand below.
TOY = [
    #          frame:  0  1  2  3  4  5  6  7  8  9
    _sequence("A", [0, 1, 1, 1, 0, 0, 1, 1, 0, 0],  # AU1: episodes [1,4) and [6,8), both complete
                   [0, 0, 1, 1, 1, 0, 0, 9, 0, 0]),  # AU2: [2,5); the 9 between two 0s starts no episode
    _sequence("B", [1, 1, 9, 1, 0, 0],  # AU1: the 9 between two 1s is bridged: [0,4), censored by the start
                   [0, 1, 1, 0, 0, 1]),  # AU2: [1,3) complete, [5,6) censored by the end
    _sequence("C", [0, 9, 1, 1, 0],  # AU1: [2,4), censored: the 9 before it may hide its true onset
                   [0, 0, 0, 0, 0]),
]


@pytest.fixture(scope="module")
def toy() -> dict:
    return label_statistics(TOY, fps=2.0, aus=(1, 2))


def test_base_rates_count_present_frames_among_coded_frames(toy: dict) -> None:
    assert toy["aus"] == ["AU1", "AU2"] and toy["sequences"] == 3 and toy["frames"] == 21
    assert toy["positives"] == {"AU1": 10, "AU2": 6}
    assert toy["coded"] == {"AU1": 19, "AU2": 20}  # AU1 has two 9s, AU2 one
    assert toy["base_rates"] == {"AU1": round(10 / 19, 4), "AU2": round(6 / 20, 4)}


def test_cooccurrence_is_conditional_on_the_row_au_over_coded_frames(toy: dict) -> None:
    joint, conditional = toy["cooccurrence"]["joint_counts"], toy["cooccurrence"]["conditional"]
    # Both present: A frames 2, 3 and B frame 1 (A frame 7 has AU2 not coded, B frame 2 AU1 not coded).
    assert joint == {"AU1": {"AU1": 10, "AU2": 3}, "AU2": {"AU1": 3, "AU2": 6}}
    # AU1 present and AU2 coded: A 1, 2, 3, 6; B 0, 1, 3; C 2, 3 -> 9 frames.
    assert conditional["AU1"]["AU2"] == round(3 / 9, 4)
    # AU2 present and AU1 coded: A 2, 3, 4; B 1, 5 -> 5 frames.
    assert conditional["AU2"]["AU1"] == round(3 / 5, 4)
    assert conditional["AU1"]["AU1"] == conditional["AU2"]["AU2"] == 1.0


def test_episode_lengths_in_frames_and_seconds(toy: dict) -> None:
    au1, au2 = toy["episodes"]["AU1"], toy["episodes"]["AU2"]
    assert au1 == {"count": 4, "censored": 2, "mean_frames": 2.75, "mean_s": 1.375, "median_frames": 2.5,
                   "median_s": 1.25, "min_frames": 2.0, "min_s": 1.0, "max_frames": 4.0, "max_s": 2.0}  # 3, 2, 4, 2
    assert au2 == {"count": 3, "censored": 1, "mean_frames": 2.0, "mean_s": 1.0, "median_frames": 2.0,
                   "median_s": 1.0, "min_frames": 1.0, "min_s": 0.5, "max_frames": 3.0, "max_s": 1.5}  # 3, 2, 1


def test_absent_and_never_coded_aus_give_nulls_not_zero_divisions() -> None:
    statistics = label_statistics([_sequence("A", [1, 1, 0], [9, 9, 9])], fps=25.0, aus=(1, 2))
    assert statistics["base_rates"] == {"AU1": round(2 / 3, 4), "AU2": None}
    assert statistics["cooccurrence"]["conditional"]["AU2"] == {"AU1": None, "AU2": None}
    assert statistics["cooccurrence"]["conditional"]["AU1"]["AU2"] is None  # AU2 never coded alongside
    assert statistics["episodes"]["AU2"]["count"] == 0 and statistics["episodes"]["AU2"]["mean_s"] is None
    json.dumps(statistics, allow_nan=False)


def test_rejects_labels_that_do_not_match_the_au_list() -> None:
    with pytest.raises(DataError, match="expected \\(frames, 15\\)"):
        label_statistics(TOY, fps=25.0)
    with pytest.raises(DataError, match="values other than"):
        label_statistics([_sequence("A", [0, 2], [0, 0])], fps=25.0, aus=(1, 2))


# --- generated labels -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated() -> tuple[SynthConfig, list[SequenceLabels]]:
    config = SynthConfig(seed=1, subjects=12, tasks=2, frames=300)
    return config, generate_labels(config)


def test_lip_corner_puller_and_depressor_never_co_occur(generated: tuple[SynthConfig, list]) -> None:
    """SynthAU: mutual exclusion such as AU12 vs AU15 must be learnable from the labels."""
    config, labels = generated
    statistics = label_statistics(labels, config.fps)
    assert statistics["positives"]["AU12"] > 100 and statistics["positives"]["AU15"] > 20
    assert statistics["cooccurrence"]["joint_counts"]["AU12"]["AU15"] == 0
    assert statistics["cooccurrence"]["conditional"]["AU12"]["AU15"] == 0.0
    assert statistics["cooccurrence"]["conditional"]["AU15"]["AU12"] == 0.0
    assert statistics["cooccurrence"]["conditional"]["AU6"]["AU12"] > statistics["base_rates"]["AU12"]  # smile


def test_base_rates_agree_with_the_stage_summary_and_episodes_are_realistic(
        generated: tuple[SynthConfig, list], tmp_path: Path) -> None:
    config, labels = generated
    statistics = label_statistics(labels, config.fps)
    expected = {f"AU{au}": round(rate, 4) for au, rate in summarize(config, labels).base_rates.items()}
    assert statistics["base_rates"] == expected
    for au in ALL_AUS:
        episodes = statistics["episodes"][f"AU{au}"]
        assert episodes["count"] > 0 and 0.3 <= episodes["median_s"] <= 3.0, (au, episodes)
    figure = cooccurrence_figure(statistics, tmp_path / "plots" / "cooccurrence.png")
    assert cv2.imread(str(figure)) is not None


# --- contact sheet --------------------------------------------------------------------------------------

def test_contact_sheet_is_identities_by_neutral_and_au_apexes(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "synthau")
    path = tmp_path / "plots" / "samples.png"
    grid = contact_sheet(config, path)
    columns = 1 + len(ALL_AUS)
    assert grid.shape == (3 * CELL, columns * CELL, 3) and grid.dtype == np.uint8
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert image.shape == (SHEET_TOP + 3 * CELL + SHEET_BOTTOM, SHEET_LEFT + columns * CELL + SHEET_RIGHT, 3)
    placed = image[SHEET_TOP:SHEET_TOP + grid.shape[0], SHEET_LEFT:SHEET_LEFT + grid.shape[1]]
    assert (placed == grid).all(axis=2).mean() > 0.9  # the grid sits 1:1 in the margins (all but cell lines)

    def cell(row: int, column: int) -> np.ndarray:
        return grid[row * CELL:(row + 1) * CELL, column * CELL:(column + 1) * CELL].astype(float)

    jaw_drop = 1 + ALL_AUS.index(26)
    assert np.abs(cell(0, jaw_drop) - cell(0, 0))[CELL // 2:].mean() > 10.0  # the mouth opens
    assert np.abs(cell(0, jaw_drop) - cell(0, 0))[:CELL // 4].mean() < 1.0  # the forehead stays
    assert np.abs(cell(0, 0) - cell(1, 0)).mean() > 10.0  # F001 and M001 are different people
    assert not Path(config.root).exists()  # nothing is written to the dataset folder
