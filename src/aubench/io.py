"""Small file helpers shared by stages: atomic JSON writes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), creating parent folders. The temp name carries the
    process id so that concurrent writers (DDP ranks) never rename each other's file away."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
