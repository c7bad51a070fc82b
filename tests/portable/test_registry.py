"""The registry: NAME@VERSION addressing, add/list/show/remove, and downloads over real HTTP."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kelpseg.errors import KelpsegError
from kelpseg.portable import registry
from kelpseg.portable.manifest import MANIFEST_NAME
from tests.portable.conftest import make_light_package


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/cut/<file>`` announces the whole file but sends half of it."""

    def do_GET(self) -> None:
        if not self.path.startswith("/cut/"):
            super().do_GET()
            return
        data = (Path(self.directory) / self.path[len("/cut/") :]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output clean
        return


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving ``tmp_path/www``; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def leftovers(root: Path) -> list[Path]:
    """Files or folders left in the registry root besides installed packages."""
    return [p for p in root.iterdir() if p.name.startswith(".")] if root.exists() else []


def test_add_list_show_remove_a_folder(light_package: Path, registry_root: Path) -> None:
    entry = registry.add(light_package, show_progress=False)
    assert entry.ref == "light@1.0" and entry.path == registry_root / "light" / "1.0"
    assert [e.ref for e in registry.list_models()] == ["light@1.0"]
    assert registry.show("light@1.0").name == "light"
    assert registry.remove("light@1.0") == ["light@1.0"]
    assert registry.list_models() == [] and not (registry_root / "light").exists()


def test_latest_version_is_used_when_none_is_given(tmp_path: Path, registry_root: Path) -> None:
    for version in ("1.2", "1.10", "1.9"):
        registry.add(make_light_package(tmp_path / version, version=version), show_progress=False)
    assert registry.resolve("light") == registry_root / "light" / "1.10"
    assert registry.resolve("light@1.2") == registry_root / "light" / "1.2"
    assert registry.remove("light") == ["light@1.10", "light@1.2", "light@1.9"]


def test_unknown_name_or_version_is_one_clear_line(
    light_package: Path, registry_root: Path
) -> None:
    message = r"no model named nope@1; see `kelpseg models list` \(installed in .*: none\)"
    with pytest.raises(KelpsegError, match=message):
        registry.resolve("nope@1")
    registry.add(light_package, show_progress=False)
    with pytest.raises(KelpsegError, match=r"installed versions of light: \['1.0'\]"):
        registry.show("light@2.0")
    with pytest.raises(KelpsegError, match="no model named other"):
        registry.remove("other")


def test_adding_the_same_version_twice_needs_overwrite(
    light_package: Path, registry_root: Path
) -> None:
    registry.add(light_package, show_progress=False)
    with pytest.raises(KelpsegError, match="installed already"):
        registry.add(light_package, show_progress=False)
    assert registry.add(light_package, overwrite=True, show_progress=False).ref == "light@1.0"
    assert leftovers(registry_root) == []


def test_a_corrupt_package_is_refused_and_nothing_is_kept(
    light_package: Path, registry_root: Path
) -> None:
    (light_package / "member_0_config.yaml").write_text("tampered\n")
    with pytest.raises(KelpsegError, match="checksum"):
        registry.add(light_package, show_progress=False)
    assert registry.list_models() == [] and leftovers(registry_root) == []


def test_packed_archive_round_trips(
    light_package: Path, tmp_path: Path, registry_root: Path
) -> None:
    archive = registry.pack_package(light_package, tmp_path / "light.tar.gz")
    with tarfile.open(archive) as tf:
        assert f"light-1.0/{MANIFEST_NAME}" in tf.getnames()
    assert registry.add(archive, show_progress=False).ref == "light@1.0"


def test_download_over_http_installs_the_package(
    light_package: Path, server: tuple[str, Path], registry_root: Path
) -> None:
    base, www = server
    registry.pack_package(light_package, www / "light.tar.gz")
    entry = registry.add(f"{base}/light.tar.gz", show_progress=True)
    assert entry.ref == "light@1.0"
    assert registry.show("light").files == registry.show(light_package).files
    assert leftovers(registry_root) == []


def test_truncated_download_is_refused_and_removed(
    light_package: Path, server: tuple[str, Path], registry_root: Path
) -> None:
    base, www = server
    registry.pack_package(light_package, www / "light.tar.gz")
    with pytest.raises(KelpsegError, match="incomplete|interrupted"):
        registry.add(f"{base}/cut/light.tar.gz", show_progress=False)
    assert registry.list_models() == [] and leftovers(registry_root) == []


def test_corrupt_download_is_refused_and_removed(
    light_package: Path, server: tuple[str, Path], registry_root: Path
) -> None:
    base, www = server
    (light_package / "model.onnx").write_bytes(b"not a graph")  # checksum no longer matches
    with tarfile.open(www / "bad.tar.gz", "w:gz") as tf:
        tf.add(light_package, arcname="bad")
    with pytest.raises(KelpsegError, match="checksum"):
        registry.add(f"{base}/bad.tar.gz", show_progress=False)
    with pytest.raises(KelpsegError, match="HTTP 404"):
        registry.add(f"{base}/missing.tar.gz", show_progress=False)
    assert registry.list_models() == [] and leftovers(registry_root) == []


def test_archive_with_paths_outside_is_refused(tmp_path: Path, registry_root: Path) -> None:
    evil = tmp_path / "evil.tar"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w") as tf:
        tf.add(payload, arcname="../escape.txt")
    with pytest.raises(KelpsegError, match="outside"):
        registry.add(evil, show_progress=False)
    assert not (registry_root.parent / "escape.txt").exists()


def test_portable_refs_are_told_from_checkpoints_and_run_ids(
    light_package: Path, tmp_path: Path, registry_root: Path
) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")
    assert registry.is_portable_ref(light_package)
    assert registry.is_portable_ref(light_package / "model.onnx")
    assert registry.is_portable_ref("kelp@1.0")
    assert not registry.is_portable_ref(ckpt)
    assert not registry.is_portable_ref("0123456789abcdef0123456789abcdef")
    registry.add(light_package, show_progress=False)
    assert registry.is_portable_ref("light")


def test_models_dir_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KELPSEG_MODELS_DIR", raising=False)
    assert registry.models_dir() == Path.home() / ".cache" / "kelpseg" / "models"
    monkeypatch.setenv("KELPSEG_MODELS_DIR", "/tmp/elsewhere")
    assert registry.models_dir() == Path("/tmp/elsewhere")


def test_a_broken_package_is_skipped_by_list(
    light_package: Path, tmp_path: Path, registry_root: Path
) -> None:
    registry.add(light_package, show_progress=False)
    registry.add(make_light_package(tmp_path / "b", name="other"), show_progress=False)
    (registry_root / "other" / "1.0" / MANIFEST_NAME).write_text("{broken")
    assert [e.ref for e in registry.list_models()] == ["light@1.0"]
