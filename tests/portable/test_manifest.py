"""Manifests: checksums of every file, versions in natural order, names that address well."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kelpseg.errors import KelpsegError
from kelpseg.portable.manifest import (
    MANIFEST_NAME,
    read_manifest,
    sha256_file,
    verify_package,
    version_key,
)
from tests.portable.conftest import make_light_package


def test_manifest_lists_the_checksum_of_every_other_file(light_package: Path) -> None:
    manifest = verify_package(light_package)
    on_disk = sorted(p.name for p in light_package.iterdir() if p.name != MANIFEST_NAME)
    assert sorted(manifest.files) == on_disk
    for name, digest in manifest.files.items():
        assert sha256_file(light_package / name) == digest


def test_a_modified_file_is_refused_in_one_line_naming_it(light_package: Path) -> None:
    graph = light_package / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(KelpsegError) as info:
        verify_package(light_package)
    assert info.value.path == str(graph)
    assert "checksum" in info.value.message and "\n" not in str(info.value)


def test_a_missing_file_is_refused(light_package: Path) -> None:
    (light_package / "member_0_config.yaml").unlink()
    with pytest.raises(KelpsegError, match="missing"):
        verify_package(light_package)


def test_a_broken_manifest_names_the_key(light_package: Path) -> None:
    path = light_package / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["threshold"] = 3.0
    path.write_text(json.dumps(data))
    with pytest.raises(KelpsegError, match="'threshold'"):
        read_manifest(light_package)
    path.write_text("{not json")
    with pytest.raises(KelpsegError, match="JSON"):
        read_manifest(light_package)


def test_a_folder_without_manifest_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="not a model package"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("bad", ["", "a@b", "a/b", "-x", "a b"])
def test_names_that_would_not_address_well_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        make_light_package(tmp_path / "p", name=bad)


def test_versions_sort_naturally() -> None:
    versions = ["1.10", "1.2", "2.0", "1.2.1", "1.0rc1", "1.0", "0.9"]
    assert sorted(versions, key=version_key) == [
        "0.9",
        "1.0rc1",
        "1.0",
        "1.2",
        "1.2.1",
        "1.10",
        "2.0",
    ]
