"""Rows -> reports for `claimledger import`: formats, mappings, values, times, ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimledger.bulk import decode_line, read_layout, records
from claimledger.tabular import (
    ColumnMapping,
    MappingProblem,
    MappingSpec,
    RowProblem,
    build_report,
    coerce_number,
    detect_format,
    export_csv_row,
    flatten_keys,
    looks_like_header,
    merge_specs,
    normalise_instant,
    parse_assignments,
    parse_mapping_file,
    resolve,
    split_td_line,
    td_columns,
)
from shared.reports import ReportIn

TD = ColumnMapping(
    columns={"source.id": "source", "subject": "object", "attribute": "attribute",
             "value": "value", "published_at": "timestamp"}
)  # fmt: skip


def test_format_follows_the_extension() -> None:
    assert detect_format("a.CSV") == "csv"
    assert detect_format("a.tsv") == "tsv"
    assert detect_format("a.ndjson") == "jsonl"
    assert detect_format("population-new.txt") == "td"
    with pytest.raises(MappingProblem, match="--format"):
        detect_format("a.parquet")


def test_tuple_lines_split_on_tabs_or_whitespace_with_the_rest_in_the_last_field() -> None:
    tabbed = "dhaka_2006\tcontributor #51413: ragib\t6724976\t2006\n"
    assert split_td_line(tabbed, True, 4) == [
        "dhaka_2006", "contributor #51413: ragib", "6724976", "2006"
    ]  # fmt: skip
    spaced = "msn sanjose Temperature 48 fri jan 29 08:45:00 2010\n"
    assert split_td_line(spaced, False, 5) == [
        "msn", "sanjose", "Temperature", "48", "fri jan 29 08:45:00 2010"
    ]  # fmt: skip
    assert td_columns(4) == ("source", "object", "attribute", "value")
    assert td_columns(5)[-1] == "timestamp"
    with pytest.raises(MappingProblem, match="--columns"):
        td_columns(3)


def test_header_is_recognised_by_known_column_names() -> None:
    assert looks_like_header(["ObjectID", "PropertyID", "PropertyValue", "SourceID", "TimeStamp"])
    assert looks_like_header(["source", "object", "attribute", "value"])
    assert not looks_like_header(["msn", "sanjose", "Temperature", "48"])


def test_dafna_columns_map_by_themselves() -> None:
    names = ["ObjectID", "PropertyID", "PropertyValue", "SourceID", "TimeStamp"]
    mapping = resolve(MappingSpec(), names)
    assert mapping.columns == {
        "subject": "ObjectID", "attribute": "PropertyID", "value": "PropertyValue",
        "source.id": "SourceID", "published_at": "TimeStamp",
    }  # fmt: skip


def test_explicit_map_and_constants_win_over_names() -> None:
    spec = MappingSpec(columns={"subject": "city"}, constants={"attribute": "population"})
    mapping = resolve(spec, ["city", "object", "source", "value", "timestamp", "attribute"])
    assert mapping.columns["subject"] == "city"
    assert "attribute" not in mapping.columns
    assert mapping.constants == {"attribute": "population"}


def test_a_missing_required_field_fails_before_any_row_naming_the_fix() -> None:
    with pytest.raises(MappingProblem, match=r"published_at .*--set published_at="):
        resolve(MappingSpec(), ["source", "object", "attribute", "value"])
    with pytest.raises(MappingProblem, match="no column"):
        resolve(MappingSpec(columns={"subject": "nope"}), ["source", "object"])


def test_assignments_name_known_fields() -> None:
    assert parse_assignments(["subject=object", "source.id = who"], "--map") == {
        "subject": "object", "source.id": "who"
    }  # fmt: skip
    assert parse_assignments(["published_at=2024-01-01"], "--set") == {
        "published_at": "2024-01-01"
    }  # fmt: skip
    with pytest.raises(MappingProblem, match="unknown field 'subjekt'"):
        parse_assignments(["subjekt=object"], "--map")
    with pytest.raises(MappingProblem, match="TARGET=TEXT"):
        parse_assignments(["subject"], "--map")


def test_mapping_files_in_toml_and_json_and_flags_override_them() -> None:
    toml = (
        'format = "td"\ncolumns = ["object", "source", "value", "year"]\n'
        '[map]\npublished_at = "year"\nvalid_time = "year"\n[set]\nattribute = "population"\n'
    )
    spec = parse_mapping_file(toml, "m.toml")
    assert spec.format == "td" and spec.names == ("object", "source", "value", "year")
    assert spec.columns == {"published_at": "year", "valid_time": "year"}
    as_json = parse_mapping_file(
        '{"map": {"subject": "city"}, "set": {"source.kind": "dataset"}}', "m.json"
    )
    assert as_json.columns == {"subject": "city"}
    merged = merge_specs(spec, MappingSpec(constants={"attribute": "pop"}))
    assert merged.constants == {"attribute": "pop"} and merged.names == spec.names
    with pytest.raises(MappingProblem, match="unknown keys"):
        parse_mapping_file('mapping = "x"', "m.toml")
    with pytest.raises(MappingProblem, match="unknown field"):
        parse_mapping_file('{"map": {"colour": "c"}}', "m.json")


def test_a_row_becomes_one_valid_report_with_one_claim() -> None:
    row = {"source": "msn", "object": "sanjosefrijan2908", "attribute": "Temperature",
           "value": "48", "timestamp": "fri jan 29 08:45:00 2010"}  # fmt: skip
    report = build_report(row, TD)
    assert report["source"] == {"id": "msn"}
    assert report["published_at"] == "2010-01-29T08:45:00+00:00"
    assert report["claims"] == [
        {"subject": "sanjosefrijan2908", "attribute": "Temperature", "value": 48}
    ]
    ReportIn.model_validate(report)  # the public input shape


def test_report_ids_depend_on_content_only() -> None:
    row = {"source": "a", "object": "o", "attribute": "p", "value": "1", "timestamp": "2020"}
    first = build_report(row, TD)["report_id"]
    assert first.startswith("import:")
    assert build_report(dict(row), TD)["report_id"] == first
    assert build_report({**row, "value": "2"}, TD)["report_id"] != first


def test_numbers_go_as_numbers_and_phrases_as_text_for_the_server_to_read() -> None:
    assert coerce_number("6724976") == 6724976
    assert coerce_number(" 30.1 ") == 30.1
    assert coerce_number("-2e3") == -2000.0
    assert coerce_number("about 5,000") == "about 5,000"
    assert coerce_number("10 mi") == "10 mi"
    assert coerce_number("1234567890123456789") == 1234567890123456789  # exact, not a double


def test_constants_fill_fields_and_empty_cells() -> None:
    mapping = ColumnMapping(
        columns={"subject": "object", "source.id": "source", "value": "value",
                 "published_at": "timestamp"},
        constants={"attribute": "population", "source.kind": "dataset",
                   "published_at": "2024-01-01"},
    )  # fmt: skip
    report = build_report({"object": "x", "source": "s", "value": "3", "timestamp": ""}, mapping)
    assert report["published_at"] == "2024-01-01"
    assert report["source"] == {"id": "s", "kind": "dataset"}
    assert report["claims"][0]["attribute"] == "population"


def test_value_parts_and_nested_json_fields() -> None:
    mapping = ColumnMapping(
        columns={"subject": "s", "attribute": "a", "source.id": "source.id",
                 "published_at": "t", "value.low": "lo", "value.high": "hi"},
    )  # fmt: skip
    row = {"s": "k", "a": "killed", "source": {"id": "isw"}, "t": "2025-01-01",
           "lo": 3, "hi": "5"}  # fmt: skip
    report = build_report(row, mapping)
    assert report["claims"][0]["value"] == {"low": 3, "high": 5}
    assert report["source"] == {"id": "isw"}


def test_a_row_that_cannot_become_a_report_names_the_field() -> None:
    row = {"source": "a", "object": "o", "attribute": "p", "value": " ", "timestamp": "2020"}
    with pytest.raises(RowProblem) as empty:
        build_report(row, TD)
    assert empty.value.target == "value"
    with pytest.raises(RowProblem) as when:
        build_report({**row, "value": "1", "timestamp": "29/01/2010"}, TD)
    assert when.value.target == "published_at" and "--time-format" in when.value.detail
    with pytest.raises(RowProblem) as subject:
        build_report({**row, "value": "1", "object": ""}, TD)
    assert subject.value.target == "subject"


def test_times_iso_passes_known_forms_convert_and_a_format_is_obeyed() -> None:
    assert normalise_instant("2006", None) == "2006"
    assert normalise_instant("2025-02-16T10:00Z", None) == "2025-02-16T10:00Z"
    assert normalise_instant("Fri Jan 29 08:45:00 2010", None) == "2010-01-29T08:45:00+00:00"
    assert normalise_instant("29/01/2010", "%d/%m/%Y") == "2010-01-29T00:00:00+00:00"
    with pytest.raises(RowProblem, match="does not match"):
        normalise_instant("2010-01-29", "%d/%m/%Y")


def test_json_objects_flatten_one_level_for_naming_columns() -> None:
    keys = flatten_keys({"source": {"id": "a", "kind": "news"}, "subject": "s", "v": [1]})
    assert keys == ["source.id", "source.kind", "subject", "v"]
    assert resolve(MappingSpec(constants={"published_at": "2020", "value": "1",
                                          "attribute": "p"}), keys).columns == {
        "source.id": "source.id", "source.kind": "source.kind", "subject": "subject"
    }  # fmt: skip


def test_lines_that_are_not_utf8_read_as_latin1_losslessly() -> None:
    assert decode_line("Montarrón".encode()) == "Montarrón"
    raw = b"montarr\xe3\x83\xe2\xb3n_2004"
    assert decode_line(raw).encode("latin-1") == raw


def test_export_rows_join_claim_ids_and_leave_absent_values_empty() -> None:
    item = {"subject": "s", "attribute": "a", "version": 2, "low": 1, "best": 2, "high": 3,
            "conservative": 1, "unit": None, "status": "settled",
            "support": ["c_1", "c_2"], "dissent": [], "explanation": "two agree"}  # fmt: skip
    assert export_csv_row(item) == [
        "s", "a", "2", "1", "2", "3", "1", "", "", "settled", "c_1;c_2", "", "two agree"
    ]  # fmt: skip


def test_missing_value_markers_make_a_row_empty_not_a_category() -> None:
    row = {"source": "a", "object": "o", "attribute": "Temperature", "value": "N/A",
           "timestamp": "2020"}  # fmt: skip
    with pytest.raises(RowProblem) as na:
        build_report(row, TD)
    assert na.value.target == "value"
    assert (
        build_report({**row, "value": "*"}, ColumnMapping(TD.columns, na=()))["claims"][0]["value"]
        == "*"
    )
    assert parse_mapping_file('na = ["?"]', "m.toml").na == ("?",)


def test_records_carry_their_first_line_and_resume_offset(tmp_path: Path) -> None:
    data = tmp_path / "q.csv"
    data.write_text('source,object,attribute,value,timestamp\n\na,"two\nlines",p,1,2020\n'
                    'b,o,p,"2",2020\n')  # fmt: skip
    layout = read_layout(data, MappingSpec(), "csv")
    rows = list(records(data, layout, 0, 1))
    assert [r.line for r in rows] == [3, 5]
    assert rows[0].row is not None and rows[0].row["object"] == "two\nlines"
    assert rows[0].lines == 2
    again = list(records(data, layout, rows[0].end, rows[0].line + rows[0].lines))
    assert [(r.line, r.row) for r in again] == [(rows[1].line, rows[1].row)]


def test_tsv_has_no_quoting(tmp_path: Path) -> None:
    data = tmp_path / "q.tsv"
    data.write_text('source\tobject\tattribute\tvalue\ttimestamp\na\t"quoted\tp\t1\t2020\n')
    rows = list(records(data, read_layout(data, MappingSpec(), "tsv"), 0, 1))
    assert rows[0].row is not None and rows[0].row["object"] == '"quoted'
