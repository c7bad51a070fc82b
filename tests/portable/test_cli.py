"""``kelpseg models ...`` and ``kelpseg export`` through the real entry point (exit codes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kelpseg.cli import app as cli_app
from kelpseg.cli import portable as portable_cmds


@pytest.fixture
def main() -> Iterator[object]:
    """``kelpseg.cli.app.main`` with the portable commands registered for the test only."""
    app = cli_app.app
    n_groups, n_commands = len(app.registered_groups), len(app.registered_commands)
    app.add_typer(portable_cmds.models_app, name="models")
    app.command("export")(portable_cmds.export)
    try:
        yield cli_app.main
    finally:
        del app.registered_groups[n_groups:]
        del app.registered_commands[n_commands:]


def test_models_add_list_show_remove(
    main, light_package: Path, registry_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    assert main(["models", "list"]) == 0
    assert "no models installed" in capsys.readouterr().out
    assert main(["models", "add", str(light_package), "--quiet"]) == 0
    assert main(["models", "list"]) == 0
    assert "light@1.0" in capsys.readouterr().out
    assert main(["models", "show", "light"]) == 0
    out = capsys.readouterr().out
    assert "checksums verified" in out and "threshold 0.5" in out
    assert main(["models", "remove", "light@1.0"]) == 0
    assert "removed light@1.0" in capsys.readouterr().out
    assert not (registry_root / "light").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "nope@1.0"], "no model named nope@1.0; see `kelpseg models list`"),
        (["models", "remove", "nope"], "no model named nope"),
        (["models", "add", "/no/such/place"], "no such package"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    main, registry_root: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # one line (rich may wrap a long path)


def test_checksum_mismatch_through_the_cli_is_exit_code_2(
    main, light_package: Path, registry_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    with (light_package / "model.onnx").open("ab") as fh:
        fh.write(b"x")
    assert main(["models", "show", str(light_package)]) == 2
    assert "checksum does not match" in capsys.readouterr().err


def test_export_refuses_a_bad_name_before_loading_anything(
    main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    args = [
        "export",
        "-m",
        "x.ckpt",
        "--name",
        "bad@name",
        "--version",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert "may hold only letters" in capsys.readouterr().err


@pytest.mark.slow
def test_export_installs_and_archives_a_package(
    main, members: dict[str, Path], tmp_path: Path, registry_root: Path
) -> None:  # type: ignore[no-untyped-def]
    out, archive = tmp_path / "pkg", tmp_path / "pkg.tar.gz"
    args = ["export", "-m", str(members["Segformer"]), "--name", "seg", "--version", "0.1"]
    args += ["--out", str(out), "--threshold", "0.4", "--install", "--archive", str(archive)]
    assert main(args) == 0
    assert (registry_root / "seg" / "0.1" / "model.onnx").is_file() and archive.is_file()
    assert main(["models", "show", "seg@0.1"]) == 0
    assert main(args) == 2  # the folder exists now: refused, one line
