"""The machine and software a results file was measured on: CPU, GPU, versions, date, commit."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

#: Distributions whose versions matter to the figures.
LIBRARIES = (
    "kelpseg",
    "torch",
    "lightning",
    "segmentation-models-pytorch",
    "timm",
    "torchmetrics",
    "numpy",
    "pandas",
    "rasterio",
    "scikit-learn",
    "pydantic",
)
#: Set on machines without the git checkout (the GPU runner) to record the commit measured.
COMMIT_VARIABLE = "KELPSEG_GIT_COMMIT"


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else the platform's answer)."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def library_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`LIBRARIES` (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_commit(root: Path | None = None) -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (from git, else the env)."""
    cwd = root or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {"commit": sha, "dirty": bool(status.strip()), "source": "git"}
    except (OSError, subprocess.CalledProcessError):
        given = os.environ.get(COMMIT_VARIABLE) or None
        return {"commit": given, "dirty": None, "source": COMMIT_VARIABLE if given else None}


def gpu_info(device: torch.device) -> dict[str, Any] | None:
    """Name, memory, capability and CUDA/cuDNN versions of a CUDA device (None on the CPU)."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def environment(device: torch.device) -> dict[str, Any]:
    """Everything about the machine and software that the figures depend on."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        # Other work on a shared machine slows every figure; the ratios less so.
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "device": str(device),
        "gpu": gpu_info(device),
        "libraries": library_versions(),
        "git": git_commit(),
    }
