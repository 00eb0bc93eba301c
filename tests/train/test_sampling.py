"""Deterministic batching: DDP ranks see exactly the chunks of single-process gradient accumulation."""
import pytest

from aubench.errors import ConfigError
from aubench.train.sampling import StepBatchSampler


def test_ddp_ranks_equal_accumulation_chunks():
    single = list(StepBatchSampler(40, 8, accumulate=2, seed=3))
    rank0 = list(StepBatchSampler(40, 8, world=2, rank=0, seed=3))
    rank1 = list(StepBatchSampler(40, 8, world=2, rank=1, seed=3))
    assert single[0::2] == rank0 and single[1::2] == rank1
    assert all(len(chunk) == 4 for chunk in single)


def test_epoch_is_a_permutation_without_the_incomplete_batch():
    sampler = StepBatchSampler(21, 4, seed=1)
    indices = [i for batch in sampler for i in batch]
    assert sampler.steps == 5 and len(indices) == 20 and len(set(indices)) == 20


def test_order_depends_on_seed_and_epoch_only():
    a, b = StepBatchSampler(30, 6, seed=0), StepBatchSampler(30, 6, seed=0)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(StepBatchSampler(30, 6, seed=1)) != list(a)


def test_half_epochs_take_half_the_steps_and_different_samples_each_epoch():
    """epoch_fraction 0.5: 40 samples, batch 4 → 5 steps instead of 10, each epoch a different half."""
    full, half = StepBatchSampler(40, 4, seed=2), StepBatchSampler(40, 4, seed=2, fraction=0.5)
    assert (full.steps, half.steps, len(half)) == (10, 5, 5)
    epochs = []
    for epoch in range(3):
        half.set_epoch(epoch)
        batches = list(half)
        indices = [i for batch in batches for i in batch]
        assert len(batches) == 5 and all(len(batch) == 4 for batch in batches)
        assert len(set(indices)) == 20  # no sample twice within an epoch
        epochs.append(set(indices))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    assert len(epochs[0] | epochs[1] | epochs[2]) > 20  # the epochs see more than one half between them
    accumulated = StepBatchSampler(40, 4, accumulate=2, seed=2, fraction=0.5)
    assert accumulated.steps == 5 and len(list(accumulated)) == len(accumulated) == 10  # micro-batches


def test_invalid_batching_is_refused():
    with pytest.raises(ConfigError, match="cannot be split"):
        StepBatchSampler(40, 6, accumulate=4)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        StepBatchSampler(3, 4)
    with pytest.raises(ConfigError, match="epoch_fraction"):
        StepBatchSampler(6, 4, fraction=0.5)
