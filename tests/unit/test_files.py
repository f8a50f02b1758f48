"""Reading history files: column mapping, time zones, derived ids and prices, and no row ever lost."""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tidecast.producers.dates import AmbiguousDates
from tidecast.producers.files import DEFAULT_SKU, FIELDS, count_rows, detect_date_format, parse_columns, read_events
from tidecast.stream.events import InvalidEvent, Sale, validate, validate_dict

RETAIL = Path(__file__).resolve().parents[3] / "shared/data/online-retail/online_retail.csv.gz"


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_jsonl(path: Path, lines: list[object]) -> Path:
    text = "\n".join(line if isinstance(line, str) else orjson.dumps(line).decode() for line in lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def validate_reason(raw: bytes) -> str:
    try:
        validate(raw)
    except InvalidEvent as exc:
        return str(exc)
    raise AssertionError("expected a rejection")


def reason(event: dict) -> str:
    with pytest.raises(InvalidEvent) as caught:
        validate_dict(event)
    return str(caught.value)


# -- parse_columns -------------------------------------------------------------------------------------------


def test_parse_columns() -> None:
    assert parse_columns("ts=InvoiceDate, sku = StockCode,qty=Quantity") == {
        "ts": "InvoiceDate", "sku": "StockCode", "qty": "Quantity"}
    assert parse_columns("ts=Invoice Date") == {"ts": "Invoice Date"}
    assert parse_columns(None) == {name: name for name in FIELDS}


@pytest.mark.parametrize(("spec", "message"), [
    ("", "bad column mapping"),
    ("ts", "bad column mapping"),
    ("ts=", "bad column mapping"),
    ("=Date", "bad column mapping"),
    ("ts=Date,", "bad column mapping"),
    ("when=Date", "unknown event field 'when'"),
    ("ts=Date,ts=Other", "mapped twice"),
])
def test_parse_columns_rejects(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_columns(spec)


# -- CSV -----------------------------------------------------------------------------------------------------


def test_csv_naive_times_are_local_across_dst(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [
        ["Date", "Item", "Units"],
        ["2011-01-10 09:00:00", "A", "1"],  # GMT
        ["2011-06-10 09:00:00", "A", "1"],  # BST
        ["2011-10-30 01:30:00", "A", "1"],  # happens twice: the earlier, summer-time reading
        ["2011-03-27 01:30:00", "A", "1"],  # does not exist: read with the offset before the change
        ["2011-06-10T09:00:00+02:00", "A", "1"],  # an offset is kept
        ["2011-06-10T09:00:00Z", "A", "1"],
        ["2011-06-10", "A", "1"],
    ])
    events = list(read_events(path, parse_columns("ts=Date,sku=Item,qty=Units"), tz="Europe/London"))
    assert [e["ts"] for e in events] == [
        "2011-01-10T09:00:00+00:00", "2011-06-10T09:00:00+01:00", "2011-10-30T01:30:00+01:00",
        "2011-03-27T01:30:00+00:00", "2011-06-10T09:00:00+02:00", "2011-06-10T09:00:00+00:00",
        "2011-06-10T00:00:00+01:00"]
    assert all(isinstance(validate_dict(e), Sale) for e in events)
    utc = list(read_events(path, parse_columns("ts=Date,sku=Item,qty=Units")))
    assert utc[1]["ts"] == "2011-06-10T09:00:00+00:00"


def test_csv_ids_types_numbers_and_derived_price(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sales.csv", [
        ["when", "sku", "store", "qty", "revenue", "promo"],
        ["2026-01-05 10:00", "A1", "s1", "2", "5", "yes"],
        ["2026-01-05 11:00", "A1", "", "3.0", "10", "0"],
        ["2026-01-05 12:00", "B2", "s1", "-1", "-2.5", "TRUE"],  # a return
        ["2026-01-05 13:00", "B2", "s1", "0", "4", ""],
        ["2026-01-05 14:00", "B2", "s1", "1.5", "", "No"],
    ])
    columns = parse_columns("ts=when,sku=sku,store=store,qty=qty,revenue=revenue,promo=promo")
    events = list(read_events(path, columns))
    assert events[0] == {"event_id": "sales.csv:1", "type": "sale", "ts": "2026-01-05T10:00:00+00:00",
                         "sku": "A1", "store": "s1", "qty": 2, "price": 2.5, "promo": True}
    assert events[1] == {"event_id": "sales.csv:2", "type": "sale", "ts": "2026-01-05T11:00:00+00:00",
                         "sku": "A1", "qty": 3, "price": 3.333333, "promo": False}  # empty store: absent
    assert type(events[1]["qty"]) is int
    assert (events[2]["qty"], events[2]["price"], events[2]["promo"]) == (-1, 2.5, True)
    assert validate_dict(events[2]).qty == -1  # negative quantities pass: the ingest counts them as returns
    assert "price" not in events[3] and "promo" not in events[3]  # qty 0: no price; the validator rejects it
    assert reason(events[3]) == "field 'qty' must not be 0 (negative quantities are returns)"
    assert events[4]["qty"] == 1.5 and "price" not in events[4] and events[4]["promo"] is False
    assert [e["event_id"] for e in read_events(path, columns)] == [e["event_id"] for e in events]


def test_csv_identity_mapping_and_click_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", [
        ["event_id", "type", "ts", "sku", "action", "qty", "note"],
        ["e1", "click", "2026-01-05T10:00:00+00:00", "A1", "view", ""],
        ["e2", "Sale", "2026-01-05T10:05:00+00:00", "A1", "", "1", "extra"],
    ])
    events = list(read_events(path))
    assert events[0] == {"event_id": "e1", "type": "click", "ts": "2026-01-05T10:00:00+00:00", "sku": "A1",
                         "action": "view", "qty": ""}
    assert validate_dict(events[0]).action == "view"
    assert validate_dict(events[1]).qty == 1
    assert list(read_events(path, parse_columns(None))) == events  # FIELD=FIELD of an absent column: skipped


def test_bad_rows_are_yielded_for_the_validator_to_reject(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [
        ["Date", "Item", "Units", "Price", "Promo"],
        ["yesterday", "A", "1", "2", ""],
        ["2026-01-05 10:00", "", "1", "2", ""],
        ["2026-01-05 10:00", "A", "two", "2", ""],
        ["2026-01-05 10:00", "A", "1", "2,50", ""],
        ["2026-01-05 10:00", "A", "1", "2", "maybe"],
        ["2026-01-05 10:00", "A"],
        ["", "A", "1", "2", ""],
        ["2026-01-05 10:00", "A", "nan", "-1", ""],
    ])
    events = list(read_events(path, parse_columns("ts=Date,sku=Item,qty=Units,price=Price,promo=Promo")))
    assert len(events) == 8 == count_rows(path)
    assert [reason(e) for e in events] == [
        "field 'ts' is not ISO-8601: 'yesterday'",
        "field 'sku' must be 1 to 200 printable characters, got ''",
        "field 'qty' must be a finite number, got a string",
        "field 'price' must be a finite number, got a string",
        "field 'promo' must be true or false, got a string",
        "field 'qty' must be a finite number, got null",
        "field 'ts' is not ISO-8601: ''",
        "field 'qty' must be a finite number, got a string",
    ]
    assert events[2]["qty"] == "two" and events[3]["price"] == "2,50" and events[0]["ts"] == "yesterday"


@pytest.mark.parametrize(("cells", "expected"), [
    (["0", "0.0", "false", "FALSE", " no ", "N", "f", "F"], False),
    (["1", "1.0", "true", "TRUE", " yes", "Y", "t", "T"], True),
])
def test_flags_as_spreadsheets_and_pandas_write_them(tmp_path: Path, cells: list[str], expected: bool) -> None:
    # pandas writes a float promo column as 0.0/1.0; spreadsheets write TRUE/FALSE, yes/no, y/n
    rows = [["ts", "sku", "qty", "promo"], *(["2026-01-05", f"S{i}", "1", cell] for i, cell in enumerate(cells))]
    events = list(read_events(write_csv(tmp_path / "flags.csv", rows)))
    assert [e["promo"] for e in events] == [expected] * len(cells)
    assert all(validate_dict(e).promo is expected for e in events)
    path = write_jsonl(tmp_path / "flags.jsonl", [{"ts": "2026-01-05", "sku": "A", "qty": 1, "promo": v}
                                                  for v in (float(expected), int(expected), expected)])
    assert [validate_dict(e).promo for e in read_events(path)] == [expected] * 3


@pytest.mark.parametrize("cell", ["2", "0.5", "yes please", "-1", "1.5", "ja"])
def test_other_flags_stay_for_the_validator_to_reject(tmp_path: Path, cell: str) -> None:
    path = write_csv(tmp_path / "flags.csv", [["ts", "sku", "qty", "promo"], ["2026-01-05", "A", "1", cell]])
    (event,) = read_events(path)
    assert event["promo"] == cell
    assert reason(event) == "field 'promo' must be true or false, got a string"


def test_produce_file_reports_the_share_and_top_reasons_of_invalid_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tidecast.cli import main
    from tidecast.commands import produce_cmd
    from tidecast.producers import event_sender

    class FakeSender:
        def __init__(self, *args: object) -> None:
            self.sent = 0

        def send(self, doc: dict) -> None:
            self.sent += 1

        send_raw = send

        def __enter__(self) -> FakeSender:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(produce_cmd, "resolve", lambda settings: type("Endpoints", (), {"kafka": "nowhere:9"}))
    monkeypatch.setattr(event_sender, "EventSender", FakeSender)
    rows = [["ts", "sku", "qty", "promo"], *(["2026-01-05", f"S{i}", "1", "0.0"] for i in range(7)),
            ["05/01/2026", "A", "1", "1"], ["06/01/2026", "A", "1", "1"], ["2026-01-05", "B", "1", "maybe"]]
    path = write_csv(tmp_path / "mixed.csv", rows)
    assert main(["produce", "file", str(path)]) == 0
    err = capsys.readouterr().err
    assert "3 of 10 rows invalid, sent to be dead-lettered by the ingest (30.0%); top reasons:" in err
    assert "       2  field 'ts' is not ISO-8601 (e.g. field 'ts' is not ISO-8601: '05/01/2026')" in err
    assert "       1  field 'promo' must be true or false, got a string" in err


def test_missing_columns_formats_and_zones_are_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [["Date", "Item", "Units"], ["2026-01-05", "A", "1"]])
    with pytest.raises(ValueError, match="no column 'Quantity'"):
        list(read_events(path, parse_columns("ts=Date,sku=Item,qty=Quantity")))
    with pytest.raises(ValueError, match="time zone"):
        read_events(path, parse_columns("ts=Date,sku=Item,qty=Units"), tz="Mars/Olympus")
    other = tmp_path / "h.xlsx"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_events(other)
    assert count_rows(other) is None
    assert count_rows(tmp_path / "absent.csv") is None
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert list(read_events(empty)) == [] and count_rows(empty) == 0


# -- JSON lines and gzip -------------------------------------------------------------------------------------


def test_jsonl_epochs_numbers_and_bad_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [
        {"ts": 1767607200000, "sku": 12345, "qty": 2, "price": 3.0},  # epoch milliseconds, a numeric sku
        {"ts": 1767607200, "sku": "A", "qty": 1.0, "store": None, "promo": 1},  # epoch seconds
        {"event_id": "x9", "type": "click", "ts": "2026-01-05 10:00", "sku": "A", "action": "add_to_cart"},
        "",
        "{not json",
        "[1, 2]",
        {"ts": "2026-01-05T10:00:00+00:00", "sku": "A"},
    ])
    events = list(read_events(path, tz="America/New_York"))
    assert len(events) == 6
    assert events[0] == {"event_id": "events.jsonl:1", "type": "sale", "ts": "2026-01-05T10:00:00+00:00",
                         "sku": "12345", "qty": 2, "price": 3}
    assert events[1] == {"event_id": "events.jsonl:2", "type": "sale", "ts": "2026-01-05T10:00:00+00:00",
                         "sku": "A", "qty": 1, "promo": True}
    assert events[2]["ts"] == "2026-01-05T10:00:00-05:00" and validate_dict(events[2]).action == "add_to_cart"
    assert events[3] == b"{not json"
    assert validate_reason(events[3]).startswith("not valid JSON")
    assert validate_reason(events[4]).startswith("not a JSON object")
    assert events[5]["event_id"] == "events.jsonl:7" and reason(events[5]) == "missing field 'qty'"
    assert count_rows(path) == 7


def test_gzip_csv_and_jsonl(tmp_path: Path) -> None:
    rows = [["ts", "sku", "qty"]] + [[f"2026-01-05T10:{m:02d}:00+00:00", "A", "1"] for m in range(5)]
    plain = list(read_events(write_csv(tmp_path / "a.csv", rows)))
    packed = list(read_events(write_csv(tmp_path / "a.csv.gz", rows)))
    assert [e["ts"] for e in packed] == [e["ts"] for e in plain] and packed[0]["event_id"] == "a.csv.gz:1"
    assert count_rows(tmp_path / "a.csv.gz") == 5
    lines = [{"ts": r[0], "sku": r[1], "qty": int(r[2])} for r in rows[1:]]
    for name in ("b.ndjson.gz", "b.json", "c.JSONL"):
        events = list(read_events(write_jsonl(tmp_path / name, lines)))
        assert [e["ts"] for e in events] == [e["ts"] for e in plain]
        assert count_rows(tmp_path / name) == 5
    (tmp_path / "array.json").write_text('[{"ts": 1, "sku": "A", "qty": 1}]')
    with pytest.raises(ValueError, match="JSON array"):
        list(read_events(tmp_path / "array.json"))


_cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "1", "-3", "2.5", "1e400", "1E100", "123456789012345678901234", "nan", "2026-01-05 10:00",
     "2026-03-29T01:30", "yes", "1767607200000"])


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(_cell, min_size=0, max_size=6), max_size=8))
@example(rows=[["", "", "1E100"], ["", "", "123456789012345678901234", "-1e30"]])  # beyond 64-bit integers
def test_every_csv_row_comes_out_as_a_serialisable_event(rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder) / "any.csv", [["ts", "sku", "qty", "price", "promo", "store"], *rows])
        events = list(read_events(path, tz="Europe/London"))
    assert len(events) == len(rows)
    assert [e["event_id"] for e in events] == [f"any.csv:{i}" for i in range(1, len(rows) + 1)]
    for event in events:
        orjson.dumps(event)
        with contextlib.suppress(InvalidEvent):
            validate_dict(event)


# -- the real file -------------------------------------------------------------------------------------------


def test_online_retail_head() -> None:
    columns = parse_columns("ts=InvoiceDate,sku=StockCode,qty=Quantity,price=UnitPrice")
    events = list(itertools.islice(read_events(RETAIL, columns, tz="Europe/London"), 2000))
    assert len(events) == 2000
    assert events[0] == {"event_id": "online_retail.csv.gz:1", "type": "sale",
                         "ts": "2010-12-01T08:26:00+00:00", "sku": "85123A", "qty": 6, "price": 2.55}
    sales = [validate_dict(e) for e in events]  # all of these rows are valid
    assert any(s.qty < 0 for s in sales)  # cancellations come through as returns
    assert all(e["ts"].endswith("+00:00") and e["ts"] >= "2010-12-01" for e in events)
    assert all(type(e["qty"]) is int for e in events)


# -- files the way people write them (issue 10) ----------------------------------------------------------------


def test_a_byte_order_mark_does_not_touch_the_first_column(tmp_path: Path) -> None:
    text = '\ufeff"TRANSACTION_DT","PRODUCT_ID","AMOUNT"\n"2000-11-01","4710","2"\n'
    plain = tmp_path / "bom.csv"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "bom.csv.gz"
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    columns = parse_columns("ts=TRANSACTION_DT,sku=PRODUCT_ID,qty=AMOUNT")
    for path in (plain, packed):
        (event,) = read_events(path, columns)
        assert (event["ts"], event["sku"], event["qty"]) == ("2000-11-01T00:00:00+00:00", "4710", 2)


def dated(path: Path, days: list[str]) -> Path:
    return write_csv(path, [["day", "item", "units"], *([d, "A", "1"] for d in days)])


def test_month_first_dates_are_detected_from_the_whole_column(tmp_path: Path) -> None:
    # the first rows read either way: only a later 11/30 says the month comes first
    path = dated(tmp_path / "us.csv", ["11/1/2000", "11/2/2000", "11/30/2000", "2/1/2001"])
    columns = parse_columns("ts=day,sku=item,qty=units")
    assert detect_date_format(path, columns) == "%m/%d/%Y"
    events = list(read_events(path, columns, tz="Asia/Taipei"))
    assert [e["ts"] for e in events] == ["2000-11-01T00:00:00+08:00", "2000-11-02T00:00:00+08:00",
                                         "2000-11-30T00:00:00+08:00", "2001-02-01T00:00:00+08:00"]
    assert all(isinstance(validate_dict(e), Sale) for e in events)


def test_day_first_dates_and_times_are_detected(tmp_path: Path) -> None:
    path = dated(tmp_path / "eu.csv", ["01.02.2011 08:30", "02.02.2011", "28.02.2011 17:05:09"])
    columns = parse_columns("ts=day,sku=item,qty=units")
    assert detect_date_format(path, columns) == "%d.%m.%Y"
    assert [e["ts"] for e in read_events(path, columns, tz="Europe/Berlin")] == [
        "2011-02-01T08:30:00+01:00", "2011-02-02T00:00:00+01:00", "2011-02-28T17:05:09+01:00"]


def test_ambiguous_dates_ask_for_a_date_format(tmp_path: Path) -> None:
    path = dated(tmp_path / "amb.csv", ["01/02/2020", "03/04/2020", "12/11/2020"])
    columns = parse_columns("ts=day,sku=item,qty=units")
    with pytest.raises(AmbiguousDates, match=r"cannot tell day from month in column 'day'.*--date-format %m/%d/%Y"):
        detect_date_format(path, columns)
    with pytest.raises(AmbiguousDates):
        next(read_events(path, columns))
    # with --date-format both orders read, each its own way
    assert next(read_events(path, columns, date_format="%d/%m/%Y"))["ts"] == "2020-02-01T00:00:00+00:00"
    assert next(read_events(path, columns, date_format="%m/%d/%Y"))["ts"] == "2020-01-02T00:00:00+00:00"
    both = dated(tmp_path / "both.csv", ["13/01/2020", "01/13/2020"])
    with pytest.raises(ValueError, match="no one day/month order fits"):
        detect_date_format(both, columns)


def test_iso_and_epoch_files_need_no_detection_and_a_bad_date_is_still_rejected(tmp_path: Path) -> None:
    columns = parse_columns("ts=day,sku=item,qty=units")
    assert detect_date_format(dated(tmp_path / "iso.csv", ["2020-01-02", "05/01/2020"]), columns) is None
    assert detect_date_format(dated(tmp_path / "epoch.csv", ["1700000000", "1700086400"]), columns) is None
    events = list(read_events(dated(tmp_path / "fmt.csv", ["11/1/2000", "yesterday"]), columns,
                              date_format="%m/%d/%Y"))
    assert events[0]["ts"] == "2000-11-01T00:00:00+00:00"
    assert reason(events[1]) == "field 'ts' is not ISO-8601: 'yesterday'"
    with pytest.raises(ValueError, match="put the year first in some rows"):
        detect_date_format(dated(tmp_path / "mix.csv", ["2020/01/02", "05/01/2020"]), columns)


def test_a_panel_without_a_product_column_has_one_series_per_store(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "stores.csv", [
        ["date", "store", "sales"], ["2013-01-01", "1", "0"], ["2013-01-01", "2", "5263"]])
    events = list(read_events(path, parse_columns("ts=date,store=store,qty=sales")))
    assert [(e["store"], e["sku"], e["qty"]) for e in events] == [("1", DEFAULT_SKU, 0), ("2", DEFAULT_SKU, 5263)]
    assert validate_dict(events[1]).series == "2:all"
    only_time = list(read_events(path, parse_columns("ts=date,qty=sales")))
    assert validate_dict(only_time[1]).series == "all:all"  # neither store nor sku: one series, the total


def test_revenue_gives_the_unit_price(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "lines.csv", [
        ["TRANSACTION_DT", "PRODUCT_ID", "AMOUNT", "SALES_PRICE", "UNIT"],
        ["11/1/2000", "A", "2", "30", ""],     # a line of 2 for 30: 15 each
        ["11/1/2000", "A", "3", "10", ""],
        ["11/1/2000", "A", "-1", "-15", ""],   # a return: its price is still positive
        ["11/1/2000", "A", "0", "15", ""],     # no units: no price (the validator rejects the zero sale)
        ["11/1/2000", "A", "2", "30", "14"],   # a price column wins over revenue
    ])
    columns = parse_columns("ts=TRANSACTION_DT,sku=PRODUCT_ID,qty=AMOUNT,revenue=SALES_PRICE")
    events = list(read_events(path, columns, date_format="%m/%d/%Y"))
    assert [e.get("price") for e in events] == [15, 3.333333, 15, None, 15]
    assert all("revenue" not in e for e in events)
    with_price = list(read_events(path, {**columns, "price": "UNIT"}, date_format="%m/%d/%Y"))
    assert [e.get("price") for e in with_price] == [15, 3.333333, 15, None, 14]


def test_open_and_event_columns_are_carried_in_the_record(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rossmann.csv", [
        ["date", "store", "sales", "open", "state_holiday"],
        ["2013-01-01", "1", "0", "0", "a"],
        ["2013-01-02", "1", "5530", "1", "0"],
        ["2013-01-03", "1", "4327", "1.0", ""],
        ["2013-01-04", "1", "0", "no", "c"],
        ["2013-01-05", "1", "10", "maybe", "0.0"],
    ])
    events = list(read_events(path, parse_columns("ts=date,store=store,qty=sales,open=open,event=state_holiday")))
    assert [e.get("open") for e in events] == [False, True, True, False, "maybe"]
    assert [e.get("event") for e in events] == ["a", None, None, "c", None]
    assert validate_dict(events[1]).qty == 5530  # extra fields: carried, ignored by the validator
    jsonl = write_jsonl(tmp_path / "r.jsonl", [
        {"ts": "2013-01-02", "store": "1", "sku": "x", "qty": 1, "open": 1, "event": 0},
        {"ts": "2013-01-03", "store": "1", "sku": "x", "qty": 1, "open": False, "event": "b"}])
    docs = list(read_events(jsonl))
    assert [(d.get("open"), d.get("event")) for d in docs] == [(True, None), (False, "b")]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_files_read_like_comma_ones_with_decimal_commas(tmp_path: Path, sep: str) -> None:
    text = "\ufeff" + sep.join(["day", "store", "item", "units", "price"]) + "\r\n"
    text += sep.join(["2024-01-01", "S1", "A", "3", "2,5"]) + "\r\n" + sep.join(["2024-01-02", "S1", "B", "1", ""])
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    events = list(read_events(path, parse_columns("ts=day,store=store,sku=item,qty=units,price=price")))
    assert [(e["store"], e["sku"], e["qty"], e.get("price")) for e in events] == [("S1", "A", 3, 2.5),
                                                                                ("S1", "B", 1, None)]


def test_missing_markers_leave_an_optional_field_out_and_ids_are_trimmed(tmp_path: Path) -> None:
    rows = [["date", "store", "sku", "qty", "price", "promo"],
            ["2024-01-01", " S1 ", "A1  ", "2", "NA", "n/a"],
            ["2024-01-02", "S1", "A1", "1", "-", "NULL"],
            ["2024-01-03", "S1", "A1", "4", "1.5", "1"]]
    columns = parse_columns("ts=date,store=store,sku=sku,qty=qty,price=price,promo=promo")
    events = list(read_events(write_csv(tmp_path / "f.csv", rows), columns))
    for event in events:
        assert isinstance(event, dict)
        validate_dict(event)  # raises on an invalid event
    assert [(e["store"], e["sku"], e.get("price"), e.get("promo")) for e in events] == [
        ("S1", "A1", None, None), ("S1", "A1", None, None), ("S1", "A1", 1.5, True)]


def test_small_numbers_are_no_epoch_times_and_are_refused_with_their_value(tmp_path: Path) -> None:
    """An Excel serial day (45292) or a year-week (202301) once read as seconds after 1970: every row in
    one bucket of 1970-01-01, silently. Now the validator refuses them and says the value."""
    rows = [["date", "sku", "qty"], ["45292", "A", "2"], ["202301", "A", "1"]]
    events = list(read_events(write_csv(tmp_path / "serial.csv", rows), parse_columns("ts=date,sku=sku,qty=qty")))
    for event, value in zip(events, ("45292", "202301"), strict=True):
        assert isinstance(event, dict) and event["ts"] == value
        with pytest.raises(InvalidEvent, match=value):
            validate_dict(event)


def test_a_windows_1252_file_keeps_its_accented_names_apart(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("date,sku,qty\n2024-01-01,Café,1\n2024-01-01,Cafè,2\n".encode("cp1252"))
    events = list(read_events(path, parse_columns("ts=date,sku=sku,qty=qty")))
    assert [e["sku"] for e in events if isinstance(e, dict)] == ["Café", "Cafè"]
