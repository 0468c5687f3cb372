"""Signatures: inference from a frame, round trips, and validation errors that name the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidInput
from modelloop.registry.signature import ColumnSpec, Signature


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31.5, 42.0, 57.25],
            "visits": np.array([1, 4, 9], dtype="int64"),
            "small": np.array([1, 2, 3], dtype="int32"),
            "city": ["paris", "lyon", "nice"],
            "plan": pd.Series(["free", "pro", "free"], dtype="category"),
            "active": [True, False, True],
            "seen": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )


@pytest.fixture
def sig(frame) -> Signature:
    return Signature.from_frame(frame)


def test_from_frame_infers_mlflow_column_types(sig):
    assert [(c.name, c.type) for c in sig.columns] == [
        ("age", "double"),
        ("visits", "long"),
        ("small", "integer"),
        ("city", "string"),
        ("plan", "string"),
        ("active", "boolean"),
        ("seen", "datetime"),
    ]
    assert all(c.required for c in sig.columns)


def test_dict_and_mlflow_round_trips(sig):
    assert Signature.from_dict(sig.to_dict()) == sig
    assert Signature.from_mlflow_columns(sig.to_mlflow_columns()) == sig
    optional = Signature.from_frame(pd.DataFrame({"a": [1.0], "b": ["x"]}), optional=["b"])
    assert Signature.from_dict(optional.to_dict())["b"].required is False


def test_bad_signatures_are_refused():
    with pytest.raises(InvalidInput, match="column 'a' has unknown type 'number'"):
        ColumnSpec("a", "number")
    with pytest.raises(InvalidInput, match="column 'a' twice"):
        Signature((ColumnSpec("a", "double"), ColumnSpec("a", "long")))
    with pytest.raises(InvalidInput, match="'t' has type 'tensor'"):
        Signature.from_mlflow_columns([{"name": "t", "type": "tensor"}])


def test_valid_frame_comes_back_in_signature_order(sig, frame):
    shuffled = frame[list(reversed(frame.columns))]
    out = sig.validate(shuffled)
    assert list(out.columns) == sig.names
    pd.testing.assert_frame_equal(out, frame)


def test_missing_required_column_is_named(sig, frame):
    with pytest.raises(InvalidInput, match="missing required column 'visits'"):
        sig.validate(frame.drop(columns=["visits"]))


def test_extra_column_is_named_unless_allowed(sig, frame):
    with pytest.raises(InvalidInput, match="column 'debug'.*does not take"):
        sig.validate(frame.assign(debug=1))
    assert list(sig.validate(frame.assign(debug=1), allow_extra=True).columns) == sig.names


def test_wrong_type_names_the_column(sig, frame):
    with pytest.raises(InvalidInput, match="column 'age' must be double, got 'old'"):
        sig.validate(frame.assign(age=["old", "young", "old"]))
    with pytest.raises(
        InvalidInput, match="column 'visits' must be long \\(whole numbers\\), got 1.5"
    ):
        sig.validate(frame.assign(visits=[1.5, 2.0, 3.0]))
    with pytest.raises(InvalidInput, match="column 'active' must be boolean"):
        sig.validate(frame.assign(active=[1.0, 0.0, 1.0]))
    with pytest.raises(InvalidInput, match="column 'city' must be string"):
        sig.validate(frame.assign(city=[1, 2, 3]))


def test_values_from_json_are_coerced_to_the_declared_types(sig, frame):
    as_json = frame.assign(
        age=pd.Series(["31.5", "42", "57.25"], dtype=object),
        visits=[1.0, 4.0, 9.0],
        seen=["2024-01-01", "2024-02-01", "2024-03-01"],
    )
    out = sig.validate(as_json)
    assert out["age"].dtype == "float64" and out["age"].tolist() == [31.5, 42.0, 57.25]
    assert out["visits"].dtype == "int64"
    assert out["seen"].dtype.kind == "M"
    ints = sig.validate(frame.assign(age=[31, 42, 57]))
    assert ints["age"].dtype == "float64"  # the model was trained on doubles


def test_optional_columns_may_be_left_out():
    sig = Signature(
        (
            ColumnSpec("a", "double"),
            ColumnSpec("b", "string", required=False),
            ColumnSpec("c", "double", required=False),
        )
    )
    out = sig.validate(pd.DataFrame({"a": [1.0, 2.0]}))
    assert list(out.columns) == ["a", "b", "c"]
    assert out["b"].isna().all() and out["c"].isna().all()


def test_records_and_dicts_are_accepted(sig, frame):
    records = frame.to_dict("records")
    pd.testing.assert_frame_equal(
        sig.validate(records), frame, check_dtype=False, check_categorical=False
    )
    one = sig.validate(records[0])
    assert len(one) == 1 and one["city"].iloc[0] == "paris"
    with pytest.raises(InvalidInput, match="cannot read model input of type str"):
        sig.validate("age=3")


def test_numeric_array_in_signature_order_passes_through_untouched():
    sig = Signature((ColumnSpec("a", "double"), ColumnSpec("b", "long")))
    arr = np.arange(6, dtype="float64").reshape(3, 2)
    assert sig.validate(arr) is arr
    with pytest.raises(InvalidInput, match=r"shape \(3, 3\); the model takes 2 columns"):
        sig.validate(np.zeros((3, 3)))


def test_numeric_array_cannot_fill_a_string_column(sig):
    with pytest.raises(
        InvalidInput, match="column 'city' must be string, but the input array is numeric"
    ):
        sig.validate(np.zeros((2, len(sig))))


def test_object_array_is_checked_column_by_column():
    sig = Signature((ColumnSpec("a", "double"), ColumnSpec("city", "string")))
    out = sig.validate(np.array([[1.5, "paris"], [2.0, "lyon"]], dtype=object))
    assert list(out.columns) == ["a", "city"] and out["a"].dtype == "float64"
    with pytest.raises(InvalidInput, match="column 'a' must be double, got 'x'"):
        sig.validate(np.array([["x", "paris"]], dtype=object))
