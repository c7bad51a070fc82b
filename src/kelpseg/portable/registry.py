"""The local model registry: packages installed as ``<root>/<name>/<version>/``.

The root is ``$KELPSEG_MODELS_DIR``, else ``~/.cache/kelpseg/models``. Models are addressed as
``NAME@VERSION`` (``NAME`` alone: the highest version). A package is added from a folder, a
``.tar``/``.tar.gz``/``.zip`` archive, or an http(s) URL of one; it is staged inside the root,
its checksums verified, and only then renamed into place, so a corrupt or partial download is
refused and removed. Standard library only (urllib): no torch, no requests.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from kelpseg import __version__
from kelpseg.console import err_console, progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.portable.manifest import (
    GRAPH_NAME,
    MANIFEST_NAME,
    Manifest,
    check_name,
    read_manifest,
    verify_package,
    version_key,
)

PathLike = str | os.PathLike[str]
ENV_VAR = "KELPSEG_MODELS_DIR"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelEntry:
    """One installed package."""

    name: str
    version: str
    path: Path
    manifest: Manifest

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of every file of the package."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def models_dir(root: PathLike | None = None) -> Path:
    """The registry folder: ``root``, else ``$KELPSEG_MODELS_DIR``, else the user cache."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kelpseg" / "models"


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"kelp@1.2"`` -> ``("kelp", "1.2")``; ``"kelp"`` -> ``("kelp", None)``.

    Raises:
        KelpsegError: an empty or malformed name or version.
    """
    name, _, version = ref.partition("@")
    try:
        check_name(name, "name")
        if version or "@" in ref:
            check_name(version, "version")
    except ValueError as exc:
        raise KelpsegError(str(exc), ref) from exc
    return name, version or None


def _entry(path: Path) -> ModelEntry:
    manifest = read_manifest(path)
    return ModelEntry(manifest.name, manifest.version, path, manifest)


def list_models(root: PathLike | None = None) -> list[ModelEntry]:
    """Installed packages, by name then version (manifests read, checksums not verified)."""
    base = models_dir(root)
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(base.glob(f"[!.]*/*/{MANIFEST_NAME}")):
        try:
            found.append(_entry(folder.parent))
        except KelpsegError as exc:  # one broken package must not hide the others
            err_console.print(f"skipped: {exc}", highlight=False, soft_wrap=True)
    return sorted(found, key=lambda e: (e.name, version_key(e.version)))


def is_portable_ref(source: PathLike, root: PathLike | None = None) -> bool:
    """Whether ``source`` names a model package: an ``.onnx`` file, a package folder,
    ``NAME@VERSION``, or the name of an installed model."""
    text = str(source)
    path = Path(text)
    if path.suffix == ".onnx" or (path.is_dir() and (path / MANIFEST_NAME).is_file()):
        return True
    if path.exists():
        return False
    if "@" in text:
        return True
    try:
        name, _ = parse_ref(text)
    except KelpsegError:
        return False
    return (models_dir(root) / name).is_dir()


def resolve(ref: PathLike, root: PathLike | None = None) -> Path:
    """The package folder of a path (folder or its ``model.onnx``) or ``NAME[@VERSION]``.

    Raises:
        KelpsegError: a folder that is not a package, or an unknown name or version.
    """
    path = Path(ref)
    if path.suffix == ".onnx" and path.is_file():
        path = path.parent
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise KelpsegError("not a model package (no manifest.json)", path)
        return path
    name, version = parse_ref(str(ref))
    base = models_dir(root)
    versions = sorted(
        (p.name for p in (base / name).glob("*") if (p / MANIFEST_NAME).is_file()),
        key=version_key,
    )
    if not versions:
        installed = ", ".join(e.ref for e in list_models(base)) or "none"
        raise KelpsegError(
            f"no model named {ref}; see `kelpseg models list` (installed in {base}: {installed})"
        )
    if version is None:
        return base / name / versions[-1]
    if version not in versions:
        raise KelpsegError(
            f"no model named {ref}; see `kelpseg models list` (installed versions of {name}: "
            f"{versions})"
        )
    return base / name / version


def show(ref: PathLike, root: PathLike | None = None) -> Manifest:
    """The manifest of an installed (or local) package, after verifying its checksums."""
    return verify_package(resolve(ref, root))


def download(url: str, dest: Path, *, show_progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; a short read is an error.

    Raises:
        KelpsegError: HTTP error, network error, or fewer bytes than the server announced.
    """
    request = urllib.request.Request(url, headers={"User-Agent": f"kelpseg/{__version__}"})
    got, total = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as fh:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with progress(disable=not show_progress) as bar:
                task = bar.add_task(f"downloading {dest.name}", total=total)
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    got += len(chunk)
                    bar.advance(task, len(chunk))
    except urllib.error.HTTPError as exc:
        raise KelpsegError(f"download failed: HTTP {exc.code} {exc.reason}", url) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise KelpsegError(f"download failed or interrupted ({reason}); refused", url) from exc
    if total is not None and got != total:
        raise KelpsegError(f"download incomplete ({got} of {total} bytes); refused", url)
    return dest


def _safe_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not name.startswith(("/", "\\")) and ".." not in parts


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a ``.tar[.gz]`` or ``.zip`` package archive safely into ``dest``.

    Raises:
        KelpsegError: not a readable archive, or members that escape ``dest`` or are links.
    """
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                if not all(_safe_member(n) for n in zf.namelist()):
                    raise KelpsegError("archive holds paths outside its folder; refused", archive)
                zf.extractall(dest)
            return dest
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            if not all(_safe_member(m.name) and (m.isfile() or m.isdir()) for m in members):
                raise KelpsegError("archive holds links or paths outside its folder", archive)
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise KelpsegError(
            f"not a readable package archive ({type(exc).__name__})", archive
        ) from exc
    return dest


def _package_in(folder: Path) -> Path:
    if (folder / MANIFEST_NAME).is_file():
        return folder
    inner = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file()]
    if len(inner) != 1:
        raise KelpsegError("no model package (manifest.json) at the top of the source")
    return inner[0]


def _stage(source: str, staging: Path, show_progress: bool) -> Path:
    """Bring a package into ``staging``; return the folder holding its manifest."""
    if urlparse(source).scheme in ("http", "https"):
        name = Path(urlparse(source).path).name or "package.tar"
        archive = download(source, staging / name, show_progress=show_progress)
        return _package_in(extract(archive, staging / "unpacked"))
    path = Path(source)
    if path.is_dir():
        return _package_in(Path(shutil.copytree(path, staging / "copy")))
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        return _package_in(extract(path, staging / "unpacked"))
    if not path.exists():
        raise KelpsegError("no such package folder, archive or http(s) URL", source)
    raise KelpsegError(f"give a package folder, an archive ({', '.join(ARCHIVE_SUFFIXES)})", path)


def add(
    source: PathLike,
    *,
    root: PathLike | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> ModelEntry:
    """Install a package from a folder, an archive or an http(s) URL of an archive.

    Raises:
        KelpsegError: unreadable source, a checksum that does not match (nothing is kept), or
            the same ``NAME@VERSION`` installed already (unless ``overwrite``).
    """
    base = models_dir(root)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
    try:
        package = _stage(str(source), staging, show_progress)
        manifest = verify_package(package)
        target = base / manifest.name / manifest.version
        if target.exists() and not overwrite:
            raise KelpsegError(f"{manifest.ref} is installed already (remove it or force)", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        package.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _entry(target)


def remove(ref: str, root: PathLike | None = None) -> list[str]:
    """Uninstall ``NAME@VERSION``, or every version of ``NAME``; returns the refs removed.

    Raises:
        KelpsegError: no such model or version installed.
    """
    name, version = parse_ref(ref)
    base = models_dir(root)
    folder = resolve(ref, base)  # raises for unknown names and versions
    targets = [folder] if version else sorted(p for p in (base / name).iterdir() if p.is_dir())
    for target in targets:
        shutil.rmtree(target)
    if (base / name).is_dir() and not any((base / name).iterdir()):
        (base / name).rmdir()
    return [f"{name}@{t.name}" for t in targets]


def pack_package(folder: PathLike, out_path: PathLike) -> Path:
    """Verify a package and write it as a ``.tar.gz`` (one top folder ``NAME-VERSION``)."""
    folder = Path(folder)
    manifest = verify_package(folder)
    top = f"{manifest.name}-{manifest.version}"
    with atomic_path(out_path) as tmp, tarfile.open(tmp, "w:gz") as tf:
        for name in [MANIFEST_NAME, GRAPH_NAME, *sorted(set(manifest.files) - {GRAPH_NAME})]:
            tf.add(folder / name, arcname=f"{top}/{name}")
    return Path(out_path)
