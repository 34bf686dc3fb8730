"""Unit self-tests of the fixture relay's parts that need no server: binding, encoding, knobs, seed."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from relaycheck.errors import RelaycheckError
from relaycheck.fixture import behaviours, faults, gojson, gotime, knobs, parse_fund, seed
from relaycheck.fixture.binding import BindError, Param, RequestData, bind, convert, parse_query, struct
from relaycheck.signing import Signer, derive_private_key

NODES_DATA = struct(
    "network.GetAllNodesDataParams",
    Param("Start", "int", json="start", query="start", validate="min=0"),
    Param("Total", "int", json="total", query="total", validate="required,max=100,min=1"),
)
JOIN = struct(
    "nodes.NodeJoinInputWithSignature",
    Param("Timestamp", "int64", json="timestamp", validate="required"),
    Param("Signature", "string", json="signature", validate="required"),
    embed=(
        struct(
            "nodes.NodeJoinInput",
            Param("Address", "string", json="address", path="address", validate="required"),
            Param("GPUVram", "uint64", json="gpu_vram", validate="required"),
            Param("ModelIDs", "strings", json="model_ids", validate="required"),
        ),
    ),
)


def _query(text: str) -> BindError | dict[str, object]:
    try:
        return bind(NODES_DATA, RequestData("GET", parse_query(text.encode()), {})).values
    except BindError as exc:
        return exc


def _body(body: bytes, content_type: str = "application/json") -> BindError | dict[str, object]:
    try:
        return bind(JOIN, RequestData("POST", {}, {"address": "0xabc"}, content_type, body)).values
    except BindError as exc:
        return exc


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("", "total", "required"),
        ("total=", "total", "required"),  # an empty value counts as absent
        ("total=0", "total", "required"),  # validator.v9: 0 has no value, so "required" fails first
        ("total=101", "total", "max"),
        ("total=-5", "total", "min"),
        ("start=-1&total=5", "start", "min"),
        ("start=-1", "start", "min"),  # fields are validated in declaration order
        ("total=abc", "Total", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("total=1.5", "Total", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ("total=99999999999999999999", "Total", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
        ("total=1&total=2", "Total", "multiple values not supported"),
        ("start=x&total=y", "Start", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ],
)
def test_nodes_data_query_errors_match_tonic(query: str, field: str, message: str) -> None:
    outcome = _query(query)
    assert isinstance(outcome, BindError), f"GET /v1/network/nodes/data?{query} MUST fail binding"
    assert outcome.v1_field_and_message == (field, message), (
        f"the v1 error body for ?{query} MUST name field {field!r} with message {message!r}"
    )


def test_valid_query_binds_go_values() -> None:
    assert _query("start=3&total=100") == {"Start": 3, "Total": 100}
    assert _query("total=%2B7") == {"Start": 0, "Total": 7}, "Go's ParseInt MUST accept a leading +"
    plus = _query("total=+7")  # a raw '+' in a query string decodes to a space, as in Go
    assert isinstance(plus, BindError) and plus.message == 'strconv.ParseInt: parsing " 7": invalid syntax'


def test_v2_error_text_is_go_bind_error_text() -> None:
    parse = _query("total=abc")
    assert isinstance(parse, BindError)
    assert str(parse) == (
        "binding error on field 'Total' of type 'GetAllNodesDataParams': "
        'strconv.ParseInt: parsing "abc": invalid syntax'
    )
    missing = _query("")
    assert isinstance(missing, BindError)
    assert str(missing) == (
        "binding error: Key: 'GetAllNodesDataParams.total' "
        "Error:Field validation for 'total' failed on the 'required' tag"
    )


def test_enum_and_optional_pointer_fields() -> None:
    spec = struct(
        "stats.P",
        Param("Period", "string", query="period", validate="required", enum=("Day", "Week")),
        Param("Count", "int", query="count", pointer=True),
    )
    with pytest.raises(BindError) as bad:
        bind(spec, RequestData("GET", parse_query(b"period=Year"), {}))
    assert bad.value.v1_field_and_message == ("Period", "parameter has not an acceptable value, enum=[Day Week]")
    assert bind(spec, RequestData("GET", parse_query(b"period=Day"), {})).values == {"Period": "Day", "Count": None}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{bad", "error parsing request body: invalid character 'b' looking for beginning of object key string"),
        (b'{"timestamp": 1,', "error parsing request body: unexpected EOF"),
        (b"[1]", "error parsing request body: json: cannot unmarshal array into Go value of type "
                 "nodes.NodeJoinInputWithSignature"),
        (b'{"gpu_vram": "big"}', "error parsing request body: json: cannot unmarshal string into Go struct field "
                                 "NodeJoinInputWithSignature.gpu_vram of type uint64"),
        (b'{"gpu_vram": -1}', "error parsing request body: json: cannot unmarshal number -1 into Go struct field "
                              "NodeJoinInputWithSignature.gpu_vram of type uint64"),
        (b'{"gpu_vram": 1e3}', "error parsing request body: json: cannot unmarshal number 1e3 into Go struct field "
                               "NodeJoinInputWithSignature.gpu_vram of type uint64"),
        (b'{"model_ids": [1]}', "error parsing request body: json: cannot unmarshal number into Go struct field "
                                "NodeJoinInputWithSignature.model_ids of type string"),
    ],
)
def test_json_body_errors_match_go(body: bytes, message: str) -> None:
    outcome = _body(body)
    assert isinstance(outcome, BindError)
    assert outcome.v1_field_and_message == ("", message), "a body parse error MUST have an empty field_name"


def test_json_body_binds_case_insensitively_and_path_wins() -> None:
    outcome = _body(b'{"TIMESTAMP": 5, "signature": "0x1", "gpu_vram": 8, "model_ids": [], "address": "0xother"}')
    assert isinstance(outcome, dict)
    assert outcome["Timestamp"] == 5, "Go's decoder MUST match keys case-insensitively"
    assert outcome["Address"] == "0xabc", "the path parameter MUST override the body value (bound later)"
    assert outcome["ModelIDs"] == [], "an empty (non-nil) slice MUST pass validate:required"


def test_form_body_binds_by_go_field_name() -> None:
    outcome = _body(b"Timestamp=7&Signature=0x1&GPUVram=8&ModelIDs=a&ModelIDs=b", "application/x-www-form-urlencoded")
    assert isinstance(outcome, BindError), "form bodies need parsing by the app first"
    request = RequestData("POST", {}, {"address": "0xabc"}, "application/x-www-form-urlencoded", b"x=1",
                          form={"Timestamp": ["7"], "Signature": ["0x1"], "GPUVram": ["8"], "ModelIDs": ["a", "b"]})
    assert bind(JOIN, request).values["ModelIDs"] == ["a", "b"]


def test_signed_payload_is_go_marshal_minus_signature_fields() -> None:
    bound = bind(JOIN, RequestData("POST", {}, {"address": "0xabc"}, "application/json",
                                   b'{"timestamp": 1, "signature": "0x1", "gpu_vram": 8, "model_ids": ["m"]}'))
    assert bound.payload() == {"address": "0xabc", "gpu_vram": 8, "model_ids": ["m"]}, (
        "the signed payload MUST hold every json field of the inner struct, path fields included"
    )
    optional = struct("x.In", Param("IDs", "strings", json="ids"), Param("Note", "string", json="note"))
    assert bind(optional, RequestData("POST", {}, {}, "application/json", b"{}")).payload() == {
        "ids": None, "note": ""
    }, "absent fields MUST marshal as Go zero values: a nil slice is null"


@pytest.mark.parametrize(
    ("text", "kind", "error"),
    [
        ("-1", "uint64", 'strconv.ParseUint: parsing "-1": invalid syntax'),
        ("2147483648", "int32", 'strconv.ParseInt: parsing "2147483648": value out of range'),
        ("yes", "bool", 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ],
)
def test_go_conversions(text: str, kind: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        convert(text, kind)  # type: ignore[arg-type]


def test_go_json_encoding() -> None:
    assert gojson.dumps({"b": 1.0, "a": [1e21, 1e-7, 0.5], "s": "<&>"}) == (
        b'{"b":1,"a":[1e+21,1e-07,0.5],"s":"\\u003c\\u0026\\u003e"}'
    ), "responses MUST keep struct order and use Go's float and HTML escaping"
    assert gojson.dumps({"n": gojson.RawJSON("123456789012345678901234")}) == b'{"n":123456789012345678901234}'


def test_go_week_truncation_is_monday_aligned() -> None:
    thursday_noon = 1_700_136_000  # 2023-11-16 12:00 UTC, a Thursday
    monday = gotime.truncate(thursday_noon, gotime.WEEK)
    assert gotime.rfc3339(monday) == "2023-11-13T00:00:00Z", "time.Truncate(7*24h) MUST land on a Monday"
    assert gotime.month_start(2024, 0) == gotime.month_start(2023, 12), "Go normalises month 0 to December"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5ms", knobs.Latency("fixed", 0.005)),
        ("normal:5ms,1ms", knobs.Latency("normal", 0.005, 0.001)),
        ("lognormal:10ms,2ms", knobs.Latency("lognormal", 0.01, 0.002)),
        ("uniform:1ms,3ms", knobs.Latency("uniform", 0.001, 0.003)),
    ],
)
def test_latency_specs(text: str, expected: knobs.Latency) -> None:
    assert knobs.parse_latency(text) == expected


@pytest.mark.parametrize("bad", ["5", "normal:5ms", "gamma:1ms,2ms", "uniform:3ms,1ms", "lognormal:0ms,1ms"])
def test_bad_latency_is_one_clear_error(bad: str) -> None:
    with pytest.raises(RelaycheckError, match="--latency"):
        knobs.parse_latency(bad)


def test_knob_validation() -> None:
    assert knobs.parse_stall("1s/5s") == knobs.Stall(1.0, 5.0)
    for bad_stall in ("1s", "5s/1s", "0s/1s"):
        with pytest.raises(RelaycheckError, match="--stall"):
            knobs.parse_stall(bad_stall)
    for bad_rate in ("1.5", "-0.1", "x", "nan"):
        with pytest.raises(RelaycheckError, match="--error-rate"):
            knobs.parse_error_rate(bad_rate)
    with pytest.raises(RelaycheckError, match="--concurrency"):
        knobs.parse_concurrency("0")
    rng = __import__("random").Random(1)
    samples = [knobs.parse_latency("lognormal:10ms,2ms").sample(rng) for _ in range(4000)]
    mean = sum(samples) / len(samples)
    assert 0.0095 < mean < 0.0105, f"lognormal latency MUST have the requested mean (got {mean:.5f})"


def _digest(path: Path) -> str:
    conn = sqlite3.connect(path)
    digest = hashlib.sha256()
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY 1'):
            digest.update(repr(row).encode())
    conn.close()
    return digest.hexdigest()


def test_seed_is_deterministic_and_scales(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    seed.build(a, seed=7, nodes=40, anchor=1_700_000_000)
    seed.build(b, seed=7, nodes=40, anchor=1_700_000_000)
    seed.build(c, seed=8, nodes=40, anchor=1_700_000_000)
    assert _digest(a) == _digest(b), "the same seed MUST give the same database"
    assert _digest(a) != _digest(c), "another seed MUST give other data"
    big = tmp_path / "big.db"
    seed.build(big, seed=1, nodes=1500)
    conn = sqlite3.connect(big)
    assert conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] == 1500, "--nodes MUST set the node count"
    conn.close()


def test_seeded_accounts_are_derivable_and_consistent(tmp_path: Path) -> None:
    funded = Signer.generate().address
    path = tmp_path / "s.db"
    seed.build(path, seed=3, nodes=30, fund={funded: 12345})
    conn = sqlite3.connect(path)
    first = conn.execute("SELECT address FROM nodes ORDER BY id LIMIT 1").fetchone()[0]
    assert first == Signer(derive_private_key(3, 0)).address, "node 0's key MUST be derive_private_key(seed, 0)"
    assert conn.execute("SELECT balance FROM balances WHERE address = ?", (funded,)).fetchone()[0] == "12345"
    busy = conn.execute("SELECT address, current_task_id_commitment FROM nodes WHERE status = 2").fetchall()
    for address, commitment in busy:
        row = conn.execute("SELECT selected_node, status FROM inference_tasks WHERE task_id_commitment = ?",
                           (commitment,)).fetchone()
        assert row is not None and row[0] == address and 1 <= row[1] <= 6, "a busy node MUST run exactly its task"
    assert conn.execute("SELECT COUNT(*) FROM task_counts WHERE success_count + aborted_count > total_count"
                        ).fetchone()[0] == 0, "hourly aggregates MUST satisfy success + aborted <= total"
    conn.close()


def test_fault_registry_is_documented_and_checked() -> None:
    for name, fault in faults.FAULTS.items():
        assert fault.name == name and len(fault.doc) > 20, f"fault {name} MUST carry its documentation"
    assert faults.check_names(["null-lists", "nope"]) == ["nope"]
    _, active = behaviours.resolve("as-is-2.5", ["busy-gt-active"])
    assert set(faults.REAL_2_5_DEFECTS) <= set(active) and "busy-gt-active" in active
    with pytest.raises(RelaycheckError, match="unknown behaviour"):
        behaviours.resolve("strict", [])


def test_fund_parsing() -> None:
    address = "0x" + "Ab" * 20
    assert parse_fund([f"{address}=10", f"{address}=5"]) == {address: 15}, "repeated --fund MUST add up"
    assert parse_fund({address: 7}) == {address: 7}
    for bad in ("0xabc=1", f"{address}", f"{address}=1.5", f"{address}=-1", f"{'0x' + 'zz' * 20}=1"):
        with pytest.raises(RelaycheckError, match="--fund"):
            parse_fund([bad])
