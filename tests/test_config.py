"""Typed params sections reject typos and wrong types."""
import pytest

from aubench.config import from_mapping, section, to_dict
from aubench.data.datasets import DatasetConfig
from aubench.errors import ConfigError
from aubench.train.config import TrainConfig


def test_unknown_key_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key; did you mean 'epochs'"):
        section(TrainConfig, {"train": {"epoch": 3}}, "train")


def test_nested_sections_and_types():
    config = from_mapping(DatasetConfig, {"layout": "disfa", "disfa": {"intensity_threshold": 3}}, "dataset")
    assert config.disfa.intensity_threshold == 3
    assert config.bp4d.label_dir == "AUCoding/AU_OCC"
    with pytest.raises(ConfigError, match=r"dataset\.disfa\.intensity_threshold: expected int"):
        from_mapping(DatasetConfig, {"disfa": {"intensity_threshold": "high"}}, "dataset")


def test_optional_values_and_round_trip():
    config = section(TrainConfig, {"train": {"epochs": None, "batch_size": 8}}, "train")
    assert config.epochs is None and config.batch_size == 8
    assert from_mapping(TrainConfig, to_dict(config), "train") == config
