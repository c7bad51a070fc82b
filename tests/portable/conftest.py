"""Fixtures of the portable-model tests: hand-built light packages and exported real ones.

A *light* package holds a tiny hand-written ONNX graph (kelp probability = sigmoid((NIR - 8000)
/ 1000)) and a real manifest: registry, runtime and bad-input tests run on it in milliseconds,
with no torch. Exported packages (real networks through ``export_model``) are session-scoped
and used by the slow tests only.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kelpseg.portable.manifest import GRAPH_NAME, Manifest, MemberInfo, write_manifest

LIGHT_CHANNELS = ["NIR"]


def light_probability(raw: np.ndarray) -> np.ndarray:
    """What the light graph computes, in numpy: (N, H, W) float32."""
    nir = raw[:, 1].astype(np.float32)
    return (1.0 / (1.0 + np.exp(-(nir - 8000.0) / 1000.0))).astype(np.float32)


def light_graph(path: Path, bands: int = 7) -> Path:
    """Write the light ONNX graph taking (N, bands, H, W) int16."""
    const = [
        helper.make_tensor(name, TensorProto.INT64, [1], [value])
        for name, value in (("start", 1), ("end", 2), ("axis", 1))
    ]
    const += [
        helper.make_tensor("offset", TensorProto.FLOAT, [], [8000.0]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [1000.0]),
    ]
    nodes = [
        helper.make_node("Cast", ["raw"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["x", "start", "end", "axis"], ["nir"]),
        helper.make_node("Sub", ["nir", "offset"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "light",
        [helper.make_tensor_value_info("raw", TensorProto.INT16, ["N", bands, "H", "W"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=const,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def make_light_package(
    folder: Path, name: str = "light", version: str = "1.0", bands: int = 7, **fields: Any
) -> Path:
    """A complete, checksummed package around the light graph."""
    folder.mkdir(parents=True, exist_ok=True)
    light_graph(folder / GRAPH_NAME, bands)
    (folder / "member_0_config.yaml").write_text("model: light\n")
    member = MemberInfo(
        source="<light>",
        arch="none",
        encoder="none",
        channels=LIGHT_CHANNELS,
        features={"channels": LIGHT_CHANNELS},
        sizing={},
        weight=1.0,
        threshold=0.5,
        config_file="member_0_config.yaml",
        config_digest="0" * 64,
    )
    values: dict[str, Any] = {
        "name": name,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "kelpseg_version": "test",
        "opset": 18,
        "min_tile_size": 1,
        "channels": LIGHT_CHANNELS,
        "needs_dem": False,
        "threshold": 0.5,
        "threshold_source": "given",
        "members": [member],
        **fields,
    }
    write_manifest(Manifest(**values), folder)
    return folder


@pytest.fixture
def light_package(tmp_path: Path) -> Path:
    """A fresh light package folder."""
    return make_light_package(tmp_path / "light-pkg")


@pytest.fixture
def registry_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry, selected through ``$KELPSEG_MODELS_DIR``."""
    root = tmp_path / "registry"
    monkeypatch.setenv("KELPSEG_MODELS_DIR", str(root))
    return root


#: Imported first by light-path subprocesses: the training stack cannot be imported at all.
POISON = (
    "import sys\n"
    "for _m in ('torch', 'torchvision', 'lightning', 'segmentation_models_pytorch', 'timm',"
    " 'mlflow', 'onnx', 'onnxscript'):\n"
    "    sys.modules[_m] = None\n"
)


def run_light(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where torch (and the training stack) cannot load."""
    return subprocess.run(
        [sys.executable, "-c", POISON + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- exported packages (slow tests only; the training stack is imported inside) ---------------


@pytest.fixture(scope="session")
def quantile_stats(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Band statistics of ``UNET_CHANNELS`` over a few crafted tiles."""
    from kelpseg.export.verify import crafted_tiles
    from kelpseg.features.compute_stats import compute_band_stats
    from kelpseg.features.config import FeatureConfig
    from kelpseg.io.tiles import write_tile
    from tests.portable.exported import UNET_CHANNELS

    folder = tmp_path_factory.mktemp("stats_tiles")
    tiles = crafted_tiles(4, 64, 64)
    paths = [write_tile(folder / f"T{i}_satellite.tif", t) for i, t in enumerate(tiles)]
    features = FeatureConfig(channels=UNET_CHANNELS)
    return compute_band_stats(paths, features, device="cpu", show_progress=False)


@pytest.fixture(scope="session")
def members(tmp_path_factory: pytest.TempPathFactory, quantile_stats: Any) -> dict[str, Path]:
    """Checkpoints of three members with different architectures and channel sets."""
    from tests.portable import exported as ex

    folder = tmp_path_factory.mktemp("members")
    per_sample = {"normalization": "per-sample-min-max"}
    modules = {
        "Unet": ex.tiny_module("Unet", {"channels": ex.UNET_CHANNELS}, quantile_stats, seed=1),
        "UnetPlusPlus": ex.tiny_module(
            "UnetPlusPlus", {"channels": ex.UNETPP_CHANNELS, **per_sample}, seed=2
        ),
        "Segformer": ex.tiny_module(
            "Segformer",
            {"channels": ex.SEGFORMER_CHANNELS, "fill_value": "zero", **per_sample},
            seed=3,
        ),
    }
    return {n: ex.save_checkpoint(m, folder / f"{n}.ckpt") for n, m in modules.items()}


@pytest.fixture(scope="session")
def single_package(tmp_path_factory: pytest.TempPathFactory, members: dict[str, Path]) -> Path:
    """The Unet alone (band statistics inside the graph), threshold given."""
    from kelpseg.export.package import export_model

    out = tmp_path_factory.mktemp("packages") / "unet"
    return export_model([members["Unet"]], None, "unet", "1.0", out, threshold=0.45)


@pytest.fixture(scope="session")
def ensemble_package(tmp_path_factory: pytest.TempPathFactory, members: dict[str, Path]) -> Path:
    """Unet++, Segformer and Unet, weights 2:1:1, as one graph."""
    from kelpseg.export.package import export_model

    out = tmp_path_factory.mktemp("packages") / "ensemble"
    order = [members["UnetPlusPlus"], members["Segformer"], members["Unet"]]
    return export_model(order, [2.0, 1.0, 1.0], "trio", "2.1", out)
