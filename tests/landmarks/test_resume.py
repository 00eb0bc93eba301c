"""Resume keys and output bookkeeping shared by the landmarks and align stages (issue #4: resumable stages)."""
from __future__ import annotations

import numpy as np

from aubench.landmarks.resume import (KEY_FIELD, array_digest, digest, package_versions, remove_stale, source_digest,
                                      stored_key)


def test_digest_is_order_independent_and_value_sensitive():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2}) and len(digest({})) == 64
    base = np.zeros((2, 3), np.float32)
    assert array_digest(base) != array_digest(base.astype(np.float64))  # dtype counts
    assert array_digest(base) != array_digest(base.reshape(3, 2))  # shape counts
    changed = base.copy()
    changed[1, 2] = 1e-6
    assert array_digest(base) != array_digest(changed)


def test_stored_key_reads_finished_files_only(tmp_path):
    done = tmp_path / "done.npz"
    np.savez(done, points=np.zeros(3), **{KEY_FIELD: np.array("abc")})
    assert stored_key(done) == "abc"
    keyless = tmp_path / "keyless.npz"
    np.savez(keyless, points=np.zeros(3))
    assert stored_key(keyless) is None
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(done.read_bytes()[:40])
    assert stored_key(damaged) is None
    assert stored_key(tmp_path / "absent.npz") is None


def test_remove_stale_keeps_current_outputs_and_other_files(tmp_path):
    for name in ("F001_T1.npz", "F001_T1.npy", "M009_T2.npz", "M009_T2.npy", "F001_T1.partial.npy", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale(tmp_path, {"F001_T1"}, suffixes=(".npy", ".npz"))
    assert sorted(path.name for path in removed) == ["F001_T1.partial.npy", "M009_T2.npy", "M009_T2.npz"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["F001_T1.npy", "F001_T1.npz", "notes.txt"]


def test_source_digest_and_versions_identify_the_code_and_libraries():
    assert source_digest("aubench.landmarks") == source_digest("aubench.landmarks")
    assert source_digest("aubench.landmarks") != source_digest("aubench.align")
    assert source_digest("aubench.data.video") != source_digest("aubench.data.datasets")  # single modules
    versions = package_versions("numpy", "no-such-distribution-aubench")
    assert versions["numpy"] == np.__version__ and versions["no-such-distribution-aubench"] is None
