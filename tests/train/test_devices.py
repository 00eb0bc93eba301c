"""Device and precision selection (the CUDA branches are checked without a GPU by faking its answers)."""
import pytest
import torch

from aubench.train.distributed import resolve_device
from aubench.train.trainer import _autocast_dtype


def test_auto_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")


def test_auto_device_takes_the_ranks_gpu(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resolve_device("auto", local_rank=3) == torch.device("cuda", 3)
    assert chosen == [torch.device("cuda", 3)]


@pytest.mark.parametrize("bf16,expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_mixed_precision_only_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert _autocast_dtype(torch.device("cuda", 0), enabled=True) is expected
    assert _autocast_dtype(torch.device("cuda", 0), enabled=False) is None
    assert _autocast_dtype(torch.device("cpu"), enabled=True) is None
