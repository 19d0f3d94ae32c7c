"""`claimledger import` / `export` argument handling that fails before any request is sent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli import app

runner = CliRunner()


def test_a_mapping_that_cannot_fill_published_at_stops_before_reading_rows(
    tmp_path: Path,
) -> None:
    data = tmp_path / "no-dates.csv"
    data.write_text("source,object,attribute,value\na,o,p,1\n")
    result = runner.invoke(app, ["import", str(data), "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--set published_at=" in result.output


def test_unknown_fields_and_formats_are_named(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n")
    bad_field = runner.invoke(app, ["import", str(data), "--map", "colour=a"])
    assert bad_field.exit_code == 2 and "unknown field 'colour'" in bad_field.output
    bad_format = runner.invoke(app, ["import", str(data), "--format", "xlsx"])
    assert bad_format.exit_code == 2 and "--format" in bad_format.output
    export = runner.invoke(app, ["export", "--format", "xml"])
    assert export.exit_code == 2
