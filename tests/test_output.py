"""`-o`: a place that cannot take a file is refused before any work (exit 2, the path named);
a symlink, a FIFO or a device is written through and stays what it was; a run that fails writes
nothing. The cohort commands check every argument before any output."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trdstage.adapters.errors import InputError
from trdstage.adapters.output import check_output, write_atomic
from trdstage.cli import app

EXAMPLE = (Path(__file__).parents[1] / "src/trdstage/examples/d2-ssri-snri.yaml").as_posix()
runner = CliRunner()


def assess_to(target: str, *extra: str, source: str = EXAMPLE) -> tuple[int, str]:
    result = runner.invoke(app, ["assess", source, "--as-of", "2026-01-01", "--format", "json",
                                 "-o", target, *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, " ".join(result.output.split())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_folder_is_refused(tmp_path: Path) -> None:
    code, output = assess_to(str(tmp_path))
    assert code == 2 and "is a folder" in output and str(tmp_path) in output


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    code, output = assess_to(str(tmp_path / "report.json" / "x.json"))
    assert code == 2 and "is a file, not a folder" in output
    deeper = tmp_path / "report.json" / "a" / "b" / "x.json"
    code, output = assess_to(str(deeper))
    assert code == 2 and "is a file, not a folder" in output
    assert (tmp_path / "report.json").read_text() == "{}"


def test_an_empty_path_is_refused() -> None:
    code, output = assess_to("")
    assert code == 2 and ("empty path" in output or "is a folder" in output)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_an_unwritable_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, output = assess_to(str(locked / "out.json"))
        assert code == 2 and "permission denied" in output
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_place_the_system_refuses_is_a_clear_error() -> None:
    """Even for root, /proc takes no new file: the write's OSError becomes an InputError."""
    with pytest.raises(InputError, match=r"/proc/self/trdstage\.json"):
        write_atomic("/proc/self/trdstage.json", "{}")
    code, output = assess_to("/proc/self/trdstage.json")
    assert code == 2 and "/proc/self/trdstage.json" in output


def test_new_folders_are_made_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "out.json"
    code, output = assess_to(str(target))
    assert code == 0, output
    assert target.read_text().startswith("{") and leftovers(target.parent) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # patient data: the owner only


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    target.chmod(0o640)
    assert assess_to(str(target))[0] == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() != "old"


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    code, output = assess_to(str(link))
    assert code == 0, output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("{")
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made.json")
    assert assess_to(str(dangling))[0] == 0
    assert dangling.is_symlink() and (tmp_path / "made.json").read_text().startswith("{")


def test_a_symlink_to_a_folder_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "dir-link"
    link.symlink_to(tmp_path)
    code, output = assess_to(str(link))
    assert code == 2 and "is a folder" in output and link.is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as fh:
            got.append(fh.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code, output = assess_to(str(fifo))
    reader.join(30)
    assert code == 0, output
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got and got[0].startswith(b"{")


@pytest.mark.skipif(not Path("/dev/null").exists() or sys.platform == "win32",
                    reason="needs /dev/null")
def test_a_device_is_written_in_place() -> None:
    code, output = assess_to("/dev/null")
    assert code == 0, output
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_bad_input_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("episodes: [")
    target = tmp_path / "out.json"
    target.write_text("previous")
    code, _ = assess_to(str(target), source=str(bad))
    assert code == 2 and target.read_text() == "previous" and leftovers(tmp_path) == []
    fresh = tmp_path / "fresh.json"
    assert assess_to(str(fresh), source=str(bad))[0] == 2 and not fresh.exists()


def test_output_is_checked_before_the_input_is_read(tmp_path: Path) -> None:
    """A folder as -o with a missing input: the output error comes first."""
    code, output = assess_to(str(tmp_path), source=str(tmp_path / "missing.yaml"))
    assert code == 2 and "is a folder" in output


def test_schema_output_checked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output


def test_check_output_creates_nothing(tmp_path: Path) -> None:
    check_output(tmp_path / "a" / "b" / "c.json")
    assert list(tmp_path.iterdir()) == []


# --- cohort ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cdm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cdm") / "cdm.duckdb"
    result = runner.invoke(app, ["cohort", "synth", "-n", "50", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def cohort(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["cohort", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("schema", ["bad-name", "x; DROP TABLE person", "résultats", ""])
def test_invalid_results_schema_writes_nothing(tmp_path: Path, cdm: Path, schema: str) -> None:
    out = tmp_path / "results.parquet"
    summary = tmp_path / "summary.json"
    code, output = cohort("stage", "--omop", str(cdm), "--out", str(out), "--results-schema",
                          schema, "--summary-json", str(summary), "--as-of", "2026-01-01")
    assert code == 2, output
    assert "--results-schema" in output
    assert not out.exists() and not summary.exists() and list(tmp_path.iterdir()) == []


def test_results_schema_on_a_parquet_folder_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    assert cohort("synth", "-n", "20", "--parquet", "-o", str(folder))[0] == 0
    out = tmp_path / "results.parquet"
    code, output = cohort("stage", "--omop", str(folder), "--out", str(out), "--results-schema",
                          "results", "--as-of", "2026-01-01")
    assert code == 2 and "not a Parquet folder" in output and not out.exists()


def test_bad_engine_and_bad_paths_write_nothing(tmp_path: Path, cdm: Path) -> None:
    out = tmp_path / "results.parquet"
    code, output = cohort("stage", "--omop", str(cdm), "--out", str(out), "--engine", "fast")
    assert code == 2 and "--engine" in output and not out.exists()
    code, output = cohort("stage", "--omop", str(cdm), "--out", str(tmp_path))
    assert code == 2 and "is a folder" in output
    (tmp_path / "file").write_text("x")
    code, output = cohort("stage", "--omop", str(cdm), "--out", str(out), "--summary-json",
                          str(tmp_path / "file" / "summary.json"))
    assert code == 2 and "--summary-json" in output and not out.exists()
    code, output = cohort("stage", "--omop", str(cdm), "--out", str(out), "--summary-json",
                          str(out))
    assert code == 2 and "same file" in output and not out.exists()


def test_folder_outputs_never_replace_a_folder_of_other_files(tmp_path: Path,
                                                              cdm: Path) -> None:
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "letter.txt").write_text("keep me")
    code, output = cohort("synth", "-n", "20", "--parquet", "-o", str(mine))
    assert code == 2 and "holds other files" in output
    results = tmp_path / "results.parquet"
    assert cohort("stage", "--omop", str(cdm), "--out", str(results),
                  "--as-of", "2026-01-01")[0] == 0
    code, output = cohort("report", "--results", str(results), "--out", str(mine))
    assert code == 2 and "holds other files" in output
    assert (mine / "letter.txt").read_text() == "keep me"
    code, output = cohort("report", "--results", str(tmp_path / "none.parquet"), "--out",
                          str(tmp_path / "report"))
    assert code == 2 and "no such file" in output
