"""What every benchmark script writes with ``--json PATH``: the machine, the settings, the rows."""

from __future__ import annotations

import json
import platform


def machine_info(device: str, threads: int) -> dict:
    """The facts a result depends on: device, thread count (CPU), NumPy, Python, processor."""
    import numpy as np  # not at module level: the scripts set thread counts before NumPy loads

    return {"device": device, "threads": threads if device == "cpu" else None, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine()}


def write_json(path, config: dict, results: list) -> None:
    """Write ``{"config": config, "results": results}`` to ``path`` and say so."""
    with open(path, "w") as file:
        json.dump({"config": config, "results": results}, file, indent=2)
    print(f"\nwrote {path}")
