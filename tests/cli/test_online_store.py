"""The local twin of scoring by id: the SQLite online store, the local endpoint, the front's environment, the CLI.

Every config here is written into the test's own directory (project ``shop``, dataset ``web_orders``), so the
tests never depend on the model line-up of ``config/``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_cli.local import online_store
from mlops_cli.local.online_store import (
    STORE_FILE,
    LocalEndpoint,
    LocalOnlineStore,
    _as_text,
    fill_from_features,
    local_environ,
    local_feature_group,
    main,
)
from mlops_cli.local.registry import LocalRegistry
from mlops_loop.config import load_config as load_app_config
from pipeline_code.core.online_features import front_environment

GROUP = "shop-dev-web-orders"
ID, EVENT = "order_id", "ordered_at"
UTC = dt.timezone.utc

WEB_ORDERS = {
    "description": "Web shop orders; label: chargeback within 60 days.",
    "record_identifier": ID,
    "event_time": EVENT,
    "labels": ["charged_back"],
    "columns": {
        ID: {"type": "string", "nullable": False},
        EVENT: {"type": "timestamp", "nullable": False},
        "amount": {"type": "double", "min": 0},
        "items": {"type": "integer", "nullable": False, "min": 0, "max": 50},  # a required feature
        "channel": {"type": "string", "allowed": ["web", "app"]},
        "region": {"type": "string", "allowed": ["north", "south"]},
        "charged_back": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"amount": "amount", "items": "items", "channel": "channel", "region": "region"},
}


def _model(features: List[str], serving: Dict[str, Any] | None = None) -> Dict[str, Any]:
    model: Dict[str, Any] = {"dataset": "web_orders", "target": "charged_back", "features": features,
                             "sensitive_attribute": "region"}
    if serving is not None:
        model["serving"] = serving
    return model


def _raw_config() -> Dict[str, Any]:
    """``returns`` is scored by id (policy compute, 48 h, 20 ids) in dev and prod; ``plain`` (dev) is not;
    ``other`` runs in prod only, where the environment turns scoring by id on for it."""
    return {
        "project": "shop",
        "datasets": {"web_orders": WEB_ORDERS},
        "models": {
            "returns": _model(["amount", "items", "channel"], {
                "mode": "serverless", "by_id": {"enabled": True, "missing": "compute", "max_age_hours": 48, "max_ids": 20}}),
            "plain": _model(["amount", "items"]),
            "other": _model(["amount"]),
        },
        "environments": {
            "dev": {"tier": "dev", "account": "123456789012", "region": "eu-west-1", "models": ["returns", "plain"],
                    "feature_store": {"online_ttl_days": 7}},
            "prod": {"tier": "prod", "account": "210987654321", "region": "eu-west-1", "models": ["returns", "other"],
                     "serving": {"other": {"mode": "serverless", "by_id": {"enabled": True}}}},
        },
    }


def _write_config(directory: Path) -> str:
    path = directory / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(_raw_config()))
    return str(path)


@pytest.fixture()
def config_path(tmp_path) -> str:
    return _write_config(tmp_path)


@pytest.fixture()
def store(tmp_path):
    opened = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    yield opened
    opened.close()


def _get(store: LocalOnlineStore, ids: List[str], *, group: str = GROUP, names=None, expiration: str | None = None):
    identifier: Dict[str, Any] = {"FeatureGroupName": group, "RecordIdentifiersValueAsString": ids}
    if names is not None:
        identifier["FeatureNames"] = names
    kwargs = {} if expiration is None else {"ExpirationTimeResponse": expiration}
    return store.batch_get_record(Identifiers=[identifier], **kwargs)


def _values(response: Dict[str, Any]) -> Dict[str, Dict[str, str]]:
    """record id -> {feature name: value as string} of a BatchGetRecord response."""
    return {item["RecordIdentifierValueAsString"]: {f["FeatureName"]: f["ValueAsString"] for f in item["Record"]}
            for item in response["Records"]}


def _put(store: LocalOnlineStore, rows, *, group: str = GROUP, ttl_days=None) -> int:
    return store.put_records(group, rows, record_identifier=ID, event_time=EVENT, ttl_days=ttl_days)


# ---- put_records / batch_get_record ---------------------------------------------------------------


def test_a_stored_record_is_answered_in_the_batch_get_record_shape(store):
    assert _put(store, [
        {ID: "o-1", EVENT: "2026-05-01T10:00:00Z", "amount": 12.5, "items": 3, "channel": "web"},
        {ID: "o-2", EVENT: "2026-05-02T11:00:00Z", "amount": 40.0, "items": 1, "channel": "app"},
    ]) == 2

    got = _get(store, ["o-1", "o-2"])

    assert set(got) == {"Records", "Errors", "UnprocessedIdentifiers"}
    assert got["Errors"] == [] and got["UnprocessedIdentifiers"] == []
    records = sorted(got["Records"], key=lambda item: item["RecordIdentifierValueAsString"])
    assert [set(item) for item in records] == [{"FeatureGroupName", "RecordIdentifierValueAsString", "Record"}] * 2
    assert [item["FeatureGroupName"] for item in records] == [GROUP, GROUP]
    assert {f["FeatureName"]: f for f in records[0]["Record"]} == {
        ID: {"FeatureName": ID, "ValueAsString": "o-1"},
        EVENT: {"FeatureName": EVENT, "ValueAsString": "2026-05-01T10:00:00Z"},
        "amount": {"FeatureName": "amount", "ValueAsString": "12.5"},
        "items": {"FeatureName": "items", "ValueAsString": "3"},
        "channel": {"FeatureName": "channel", "ValueAsString": "web"},
    }
    assert _values(got)["o-2"] == {ID: "o-2", EVENT: "2026-05-02T11:00:00Z", "amount": "40", "items": "1", "channel": "app"}


def test_one_record_per_id_a_newer_event_time_replaces_it_and_an_older_or_equal_one_does_not(store):
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": 1.5, "channel": "web"}]) == 1
    # Older: a historic record (offline store only); the online record stays.
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 9.5, "channel": "app"}]) == 0
    assert _values(_get(store, ["o-1"]))["o-1"] == {ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": "1.5", "channel": "web"}
    # Equal: PutRecord writes the online store only when the new EventTime is greater.
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": 7.5}]) == 0
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "1.5"
    # Newer: a full overwrite (a feature the new record lacks is gone).
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-03T00:00:00Z", "amount": 2.5}]) == 1
    got = _get(store, ["o-1"])
    assert len(got["Records"]) == 1
    assert _values(got) == {"o-1": {ID: "o-1", EVENT: "2026-05-03T00:00:00Z", "amount": "2.5"}}


def test_the_count_is_of_rows_that_became_current_within_one_batch_too(store):
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-05T00:00:00Z", "amount": 5.5}]) == 1
    rows = [
        {ID: "o-1", EVENT: "2026-05-04T00:00:00Z", "amount": 4.5},  # older than the stored one: no
        {ID: "o-2", EVENT: "2026-05-01T00:00:00Z", "amount": 1.5},  # new id: yes
        {ID: "o-2", EVENT: "2026-05-03T00:00:00Z", "amount": 3.5},  # newer than the previous row: yes
        {ID: "o-2", EVENT: "2026-05-02T00:00:00Z", "amount": 2.5},  # older than the previous row: no
        {ID: "o-1", EVENT: "2026-05-06T00:00:00Z", "amount": 6.5},  # newer than the stored one: yes
    ]
    assert _put(store, rows) == 3
    assert {k: v["amount"] for k, v in _values(_get(store, ["o-1", "o-2"])).items()} == {"o-1": "6.5", "o-2": "3.5"}


def test_expires_at_is_the_event_time_plus_the_ttl_and_only_returned_when_asked_for(store):
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-01T10:30:00Z", "amount": 1.0},
                        # An offset event time: the expiry is in UTC.
                        {ID: "o-2", EVENT: "2026-05-01T12:30:00+02:00", "amount": 2.0}], ttl_days=7) == 2

    enabled = _get(store, ["o-1", "o-2"], expiration="Enabled")
    assert {i["RecordIdentifierValueAsString"]: i["ExpiresAt"] for i in enabled["Records"]} == {
        "o-1": "2026-05-08T10:30:00Z", "o-2": "2026-05-08T10:30:00Z"}
    assert _values(enabled)["o-2"][EVENT] == "2026-05-01T12:30:00+02:00"  # the value is kept as written
    for response in (_get(store, ["o-1", "o-2"]), _get(store, ["o-1", "o-2"], expiration="Disabled")):
        assert len(response["Records"]) == 2
        assert all("ExpiresAt" not in item for item in response["Records"])

    # A newer record expires TTL after its own event time; expired records are still answered (deleted lazily).
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-20T00:00:00Z", "amount": 3.0}], ttl_days=30) == 1
    assert _get(store, ["o-1"], expiration="Enabled")["Records"][0]["ExpiresAt"] == "2026-06-19T00:00:00Z"


def test_without_a_ttl_no_expiry_is_returned_even_when_asked_for(store):
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-01T10:30:00Z", "amount": 1.0}], ttl_days=None) == 1
    (item,) = _get(store, ["o-1"], expiration="Enabled")["Records"]
    assert set(item) == {"FeatureGroupName", "RecordIdentifierValueAsString", "Record"}


def test_feature_names_filter_the_returned_features(store):
    _put(store, [{ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 1.25, "items": 2, "channel": "web"}])
    assert _values(_get(store, ["o-1"], names=["amount", "channel"])) == {"o-1": {"amount": "1.25", "channel": "web"}}
    assert _values(_get(store, ["o-1"], names=[ID, EVENT, "items"])) == {
        "o-1": {ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "items": "2"}}
    # A name the record holds no value for (a null) is simply not in the record.
    assert _values(_get(store, ["o-1"], names=["amount", "region"])) == {"o-1": {"amount": "1.25"}}


def test_unknown_ids_are_absent_from_records_and_not_errors(store):
    _put(store, [{ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 1.0}])
    got = _get(store, ["nobody", "o-1", "nobody-else"], expiration="Enabled")
    assert [i["RecordIdentifierValueAsString"] for i in got["Records"]] == ["o-1"]
    assert got["Errors"] == [] and got["UnprocessedIdentifiers"] == []
    assert _get(store, ["nobody"]) == {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}


@pytest.mark.parametrize(
    "value, text",
    [
        (21, "21"),
        (0, "0"),
        (-3, "-3"),
        (np.int64(21), "21"),
        (21.0, "21"),
        (-4.0, "-4"),
        (np.float64(21.0), "21"),
        (21.5, "21.5"),
        (0.1, "0.1"),
        (-0.25, "-0.25"),
        (True, "1"),
        (False, "0"),
        ("web", "web"),
        ("", ""),
        (dt.datetime(2026, 5, 1, 12, 30, 15, tzinfo=UTC), "2026-05-01T12:30:15Z"),
        (dt.datetime(2026, 5, 1, 12, 30, 15, 999_000, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2026-05-01T10:30:15Z"),
        (pd.Timestamp("2026-05-01T12:30:15Z"), "2026-05-01T12:30:15Z"),
        (pd.Timestamp("2026-01-01 00:30:00", tz="Europe/Paris"), "2025-12-31T23:30:00Z"),
    ],
    ids=lambda v: repr(v),
)
def test_values_are_stored_as_feature_store_text(value, text):
    assert _as_text(value) == text


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, np.float64("nan"), pd.NA, pd.NaT], ids=repr)
def test_a_missing_value_has_no_text(value):
    assert _as_text(value) is None


def test_a_naive_datetime_is_read_as_utc_whatever_the_machine_time_zone(monkeypatch):
    # A naive time is UTC everywhere in the loop, never the machine's local time.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert _as_text(dt.datetime(2026, 5, 1, 12, 0, 0)) == "2026-05-01T12:00:00Z"
    finally:
        monkeypatch.undo()  # the process's own TZ back, then re-read by the C library
        time.tzset()


def test_values_in_a_record_are_text_and_nulls_are_left_out(store):
    row = {
        ID: "o-1",
        EVENT: pd.Timestamp("2026-05-01T12:00:00", tz="UTC"),
        "items": 21,
        "whole": 21.0,
        "amount": 21.25,
        "flag": True,
        "off": False,
        "shipped_at": dt.datetime(2026, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "channel": "web",
        "none": None,
        "nan": float("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
    }
    assert _put(store, [row]) == 1
    assert _values(_get(store, ["o-1"])) == {"o-1": {
        ID: "o-1", EVENT: "2026-05-01T12:00:00Z", "items": "21", "whole": "21", "amount": "21.25", "flag": "1", "off": "0",
        "shipped_at": "2026-05-01T12:00:00Z", "channel": "web",
    }}
    # Asked for by name, a null feature is still absent (Feature Store keeps no value for it).
    assert _values(_get(store, ["o-1"], names=["none", "nan", "na", "nat", "items"])) == {"o-1": {"items": "21"}}


def test_a_row_without_its_record_id_or_event_time_is_skipped(store):
    rows = [
        {EVENT: "2026-05-01T00:00:00Z", "amount": 1.0},                 # no id at all
        {ID: None, EVENT: "2026-05-01T00:00:00Z", "amount": 1.0},
        {ID: float("nan"), EVENT: "2026-05-01T00:00:00Z", "amount": 1.0},
        {ID: pd.NA, EVENT: "2026-05-01T00:00:00Z", "amount": 1.0},
        {ID: "o-1", "amount": 1.0},                                    # no event time at all
        {ID: "o-2", EVENT: None, "amount": 1.0},
        {ID: "o-3", EVENT: pd.NaT, "amount": 1.0},
        {ID: "o-4", EVENT: float("nan"), "amount": 1.0},
        {ID: "o-5", EVENT: "2026-05-01T00:00:00Z", "amount": 5.0},      # the only complete row
    ]
    assert _put(store, rows) == 1
    got = _get(store, ["o-1", "o-2", "o-3", "o-4", "o-5", "nan", "None", "<NA>"])
    assert _values(got) == {"o-5": {ID: "o-5", EVENT: "2026-05-01T00:00:00Z", "amount": "5"}}


def test_records_of_two_feature_groups_do_not_mix(store):
    assert _put(store, [{ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 1.0}], group="shop-dev-a") == 1
    # Same id, older event time, other group: its own current record (not compared with the other group's).
    assert _put(store, [{ID: "o-1", EVENT: "2026-04-01T00:00:00Z", "amount": 2.0},
                        {ID: "o-2", EVENT: "2026-04-01T00:00:00Z", "amount": 3.0}], group="shop-dev-b") == 2

    assert _values(_get(store, ["o-1", "o-2"], group="shop-dev-a")) == {"o-1": {ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": "1"}}
    assert _values(_get(store, ["o-1", "o-2"], group="shop-dev-b")) == {
        "o-1": {ID: "o-1", EVENT: "2026-04-01T00:00:00Z", "amount": "2"},
        "o-2": {ID: "o-2", EVENT: "2026-04-01T00:00:00Z", "amount": "3"},
    }
    assert _get(store, ["o-1"], group="shop-dev-c")["Records"] == []
    both = store.batch_get_record(Identifiers=[
        {"FeatureGroupName": "shop-dev-a", "RecordIdentifiersValueAsString": ["o-1"]},
        {"FeatureGroupName": "shop-dev-b", "RecordIdentifiersValueAsString": ["o-1"]},
    ])
    assert sorted((i["FeatureGroupName"], i["RecordIdentifierValueAsString"], _values({"Records": [i]})["o-1"]["amount"])
                  for i in both["Records"]) == [("shop-dev-a", "o-1", "1"), ("shop-dev-b", "o-1", "2")]


def test_the_store_survives_reopening_the_file(tmp_path):
    path = tmp_path / "nested" / "dir" / STORE_FILE  # the folder is created
    first = LocalOnlineStore(str(path))
    assert _put(first, [{ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": 1.5}], ttl_days=7) == 1
    first.close()
    assert path.exists()

    again = LocalOnlineStore(str(path))
    try:
        got = _get(again, ["o-1"], expiration="Enabled")
        assert _values(got) == {"o-1": {ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": "1.5"}}
        assert got["Records"][0]["ExpiresAt"] == "2026-05-09T00:00:00Z"
        # The stored event time still decides after reopening.
        assert _put(again, [{ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 9.0}], ttl_days=7) == 0
        assert _put(again, [{ID: "o-1", EVENT: "2026-05-03T00:00:00Z", "amount": 3.0}], ttl_days=7) == 1
    finally:
        again.close()
    final = LocalOnlineStore(str(path))
    try:
        assert _values(_get(final, ["o-1"]))["o-1"]["amount"] == "3"
    finally:
        final.close()


# ---- fill_from_features --------------------------------------------------------------------------


def _write_features(directory: Path, frame: pd.DataFrame) -> str:
    directory.mkdir(parents=True)
    frame.to_parquet(directory / "part-00000.parquet", index=False)
    return str(directory)


def test_fill_from_features_keeps_the_newest_row_per_entity(tmp_path):
    frame = pd.DataFrame({
        ID: ["o-1", "o-2", "o-1", "o-1", "o-3"],
        EVENT: ["2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", "2026-05-05T00:00:00Z", "2026-05-03T00:00:00Z",
                "2026-05-04T06:00:00Z"],
        "amount": [1.5, 2.0, 5.5, 3.5, None],
        "items": pd.array([1, 2, 5, None, 4], dtype="Int64"),
        "channel": ["web", "app", None, "web", "app"],
    })
    features = _write_features(tmp_path / "features", frame)
    path = str(tmp_path / "work" / STORE_FILE)

    # o-1 at 05-01 (new), o-2 (new), o-1 at 05-05 (newer), o-1 at 05-03 (older: no), o-3 (new)
    assert fill_from_features(path, features, feature_group=GROUP, record_identifier=ID, event_time=EVENT, ttl_days=7) == 4

    reopened = LocalOnlineStore(path)
    try:
        got = _get(reopened, ["o-1", "o-2", "o-3"], expiration="Enabled")
    finally:
        reopened.close()
    assert _values(got) == {
        "o-1": {ID: "o-1", EVENT: "2026-05-05T00:00:00Z", "amount": "5.5", "items": "5"},
        "o-2": {ID: "o-2", EVENT: "2026-05-02T00:00:00Z", "amount": "2", "items": "2", "channel": "app"},
        "o-3": {ID: "o-3", EVENT: "2026-05-04T06:00:00Z", "items": "4", "channel": "app"},
    }
    assert {i["RecordIdentifierValueAsString"]: i["ExpiresAt"] for i in got["Records"]} == {
        "o-1": "2026-05-12T00:00:00Z", "o-2": "2026-05-09T00:00:00Z", "o-3": "2026-05-11T06:00:00Z"}

    # A later run's features: only the rows newer than the stored records become current.
    later = pd.DataFrame({ID: ["o-1", "o-2"], EVENT: ["2026-05-04T00:00:00Z", "2026-05-06T00:00:00Z"], "amount": [4.0, 6.0]})
    assert fill_from_features(path, _write_features(tmp_path / "features-2", later), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=7) == 1
    reopened = LocalOnlineStore(path)
    try:
        assert {k: v.get("amount") for k, v in _values(_get(reopened, ["o-1", "o-2", "o-3"])).items()} == {
            "o-1": "5.5", "o-2": "6", "o-3": None}
    finally:
        reopened.close()


@pytest.mark.parametrize("times", [
    # A tz-aware timestamp column: stored as the same UTC text the feature job writes.
    pd.to_datetime(["2026-05-02T00:00:00Z", "2026-05-01T00:00:00Z"], utc=True),
    # pandas' default timestamp column is tz-naive: UTC, never the machine's local time.
    pd.to_datetime(["2026-05-02T00:00:00", "2026-05-01T00:00:00"]),
], ids=["tz-aware", "naive"])
def test_fill_from_features_with_a_timestamp_event_time_column(tmp_path, times):
    frame = pd.DataFrame({ID: ["o-1", "o-1"], EVENT: times, "amount": [2.0, 1.0]})
    path = str(tmp_path / STORE_FILE)
    assert fill_from_features(path, _write_features(tmp_path / "features", frame), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=None) == 1
    reopened = LocalOnlineStore(path)
    try:
        assert _values(_get(reopened, ["o-1"])) == {"o-1": {ID: "o-1", EVENT: "2026-05-02T00:00:00Z", "amount": "2"}}
    finally:
        reopened.close()


# ---- delete_record (DeleteRecord as the API reference documents it) ------------------------------
def _delete(store: LocalOnlineStore, record_id: str, when: str, mode: str | None = None, targets=None):
    request: Dict[str, Any] = {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": record_id, "EventTime": when}
    if mode is not None:
        request["DeletionMode"] = mode
    if targets is not None:
        request["TargetStores"] = targets
    return store.delete_record(**request)


ORIGINAL = {ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 1.5}
CORRECTED = {ID: "o-1", EVENT: "2026-05-01T00:00:00Z", "amount": 9.5}


def test_a_put_with_the_same_event_time_does_not_replace_the_online_record(store):
    # GIVEN a stored record; WHEN a correction with the same event time is put; THEN it is not the online one
    assert _put(store, [ORIGINAL]) == 1
    assert _put(store, [CORRECTED]) == 0
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "1.5"


def test_a_hard_delete_later_than_the_record_removes_it_and_a_put_of_the_same_event_time_then_lands(store):
    _put(store, [ORIGINAL])
    assert _delete(store, "o-1", "2026-05-01T00:00:00.001Z", "HardDelete", ["OnlineStore"]) == {}
    assert _get(store, ["o-1"])["Records"] == []
    assert _put(store, [CORRECTED]) == 1
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "9.5"


@pytest.mark.parametrize("when", ["2026-05-01T00:00:00Z", "2026-04-30T00:00:00Z"], ids=["same", "earlier"])
def test_a_hard_delete_not_later_than_the_record_is_refused_and_deletes_nothing(store, when):
    from botocore.exceptions import ClientError

    _put(store, [ORIGINAL])
    with pytest.raises(ClientError) as refused:
        _delete(store, "o-1", when, "HardDelete")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "1.5"


def test_a_soft_delete_hides_the_record_and_keeps_its_event_time_so_only_a_later_put_lands(store):
    _put(store, [ORIGINAL])
    _delete(store, "o-1", "2026-05-01T00:00:00.001Z")  # SoftDelete is the default
    assert _get(store, ["o-1"])["Records"] == []
    assert _put(store, [CORRECTED]) == 0, "older than the delete's event time: not written to the online store"
    assert _get(store, ["o-1"])["Records"] == []
    assert _put(store, [dict(CORRECTED, **{EVENT: "2026-05-01T00:00:01Z"})]) == 1
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "9.5"


def test_a_soft_delete_not_later_than_the_record_leaves_it_and_offline_only_targets_leave_the_online_store(store):
    _put(store, [ORIGINAL])
    _delete(store, "o-1", "2026-05-01T00:00:00Z", "SoftDelete")
    _delete(store, "o-1", "2026-06-01T00:00:00Z", "HardDelete", ["OfflineStore"])
    assert _values(_get(store, ["o-1"]))["o-1"]["amount"] == "1.5"


def test_fill_from_features_makes_a_same_event_time_correction_the_online_record(tmp_path):
    # GIVEN a filled store; WHEN a later run's features correct a record keeping its id and event time
    path = str(tmp_path / STORE_FILE)
    first = pd.DataFrame([ORIGINAL, {ID: "o-2", EVENT: "2026-05-02T00:00:00Z", "amount": 2.0}])
    assert fill_from_features(path, _write_features(tmp_path / "f1", first), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=7) == 2
    corrected = pd.DataFrame([CORRECTED, {ID: "o-2", EVENT: "2026-05-02T00:00:00Z", "amount": 2.0}])
    # THEN the corrected record is the online one (counted), with its TTL, and the unchanged one is left alone
    assert fill_from_features(path, _write_features(tmp_path / "f2", corrected), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=7) == 1
    reopened = LocalOnlineStore(path)
    try:
        got = _get(reopened, ["o-1", "o-2"], expiration="Enabled")
    finally:
        reopened.close()
    assert {k: v["amount"] for k, v in _values(got).items()} == {"o-1": "9.5", "o-2": "2"}
    assert {i["RecordIdentifierValueAsString"]: i["ExpiresAt"] for i in got["Records"]}["o-1"] == "2026-05-08T00:00:00Z"


def test_fill_from_features_corrects_exactly_the_records_the_feature_jobs_correction_would(tmp_path):
    # GIVEN a filled store
    path = str(tmp_path / STORE_FILE)
    first = pd.DataFrame({ID: ["o-1", "o-2", "o-3", "o-4", "o-6"],
                          EVENT: ["2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", "2026-05-03T00:00:00Z",
                                  "2026-05-04T00:00:00Z", "2026-05-06T00:00:00Z"],
                          "amount": [1.0, 2.0, 3.0, 4.0, 6.0]})
    assert fill_from_features(path, _write_features(tmp_path / "f1", first), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=None) == 5
    # WHEN a run's features hold: o-1 twice at its stored event time (the second row the one that stays), o-2 at its
    # event time written another way with its values, o-3 at its event time written another way with another value,
    # o-4 an older row with another value and its stored row unchanged, a new id o-5 twice at one event time, and o-6
    # twice at its stored event time, the second row (the one that counts) its stored values
    second = pd.DataFrame({ID: ["o-1", "o-2", "o-3", "o-4", "o-6", "o-1", "o-5", "o-4", "o-5", "o-6"],
                           EVENT: ["2026-05-01T00:00:00Z", "2026-05-02T00:00:00.000Z", "2026-05-03T00:00:00.000Z",
                                   "2026-04-01T00:00:00Z", "2026-05-06T00:00:00Z", "2026-05-01T00:00:00Z",
                                   "2026-05-05T00:00:00Z", "2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z",
                                   "2026-05-06T00:00:00Z"],
                           "amount": [7.0, 2.0, 8.0, 9.0, 7.0, 6.0, 5.0, 4.0, 5.5, 6.0]})
    # THEN o-5 is new (1), and o-1 (the last of its rows), o-3 and o-5 (its last row) are corrected (3)
    assert fill_from_features(path, _write_features(tmp_path / "f2", second), feature_group=GROUP,
                              record_identifier=ID, event_time=EVENT, ttl_days=None) == 4
    reopened = LocalOnlineStore(path)
    try:
        got = _values(_get(reopened, ["o-1", "o-2", "o-3", "o-4", "o-5", "o-6"]))
    finally:
        reopened.close()
    assert {k: (v[EVENT], v["amount"]) for k, v in got.items()} == {
        "o-1": ("2026-05-01T00:00:00Z", "6"), "o-2": ("2026-05-02T00:00:00Z", "2"),
        "o-3": ("2026-05-03T00:00:00.000Z", "8"), "o-4": ("2026-05-04T00:00:00Z", "4"),
        "o-5": ("2026-05-05T00:00:00Z", "5.5"), "o-6": ("2026-05-06T00:00:00Z", "6")}


def test_the_local_feature_group_is_the_clouds_name():
    assert local_feature_group("shop", "dev", "web_orders") == GROUP


# ---- local_environ ------------------------------------------------------------------------------


def test_local_environ_is_the_front_functions_environment(config_path):
    environ = local_environ(config_path, "dev", "returns")
    assert environ == {
        "ENVIRONMENT_NAME": "dev",
        "MODEL_NAME": "returns",
        "ENDPOINT_NAME": "shop-dev-returns",
        "FEATURE_GROUP": "shop-dev-web-orders",
        "METRIC_NAMESPACE": "shop/serving",  # the project's, not another project's in the account
        "RECORD_IDENTIFIER": ID,
        "EVENT_TIME": EVENT,
        "FEATURES": "amount:Fractional,items:Integral,channel:String",
        "MISSING_POLICY": "compute",
        "MAX_AGE_SECONDS": "172800",
        "MAX_IDS": "20",
        "REQUIRED_FEATURES": "items",  # a nullable: false column unchanged: serving refuses it missing
        # Under compute, the raw fields serving refuses a raw record without (a nullable: false column a feature reads).
        "REQUIRED_RAW_FIELDS": "items",
        # The rules serving holds the features' values to (the dataset's min / max / allowed of each column as such).
        "FEATURE_RULES": '{"amount":{"min":0},"items":{"min":0,"max":50},"channel":{"allowed":["web","app"]}}',
    }
    app = load_app_config(config_path)
    model = app.models["returns"]
    spec = model.lookup_spec(app.serving_of(app.environments["dev"], model).by_id)
    assert environ == front_environment(environment="dev", model="returns", endpoint="shop-dev-returns", feature_group="shop-dev-web-orders", spec=spec,
                                        namespace="shop/serving")


def test_local_environ_follows_the_environments_serving_override(config_path):
    # ``other`` is scored by id only because prod's serving block turns it on (defaults: reject, no max age, 100 ids).
    environ = local_environ(config_path, "prod", "other")
    assert environ == {
        "ENVIRONMENT_NAME": "prod",
        "MODEL_NAME": "other",
        "ENDPOINT_NAME": "shop-prod-other",
        "FEATURE_GROUP": "shop-prod-web-orders",
        "METRIC_NAMESPACE": "shop/serving",
        "RECORD_IDENTIFIER": ID,
        "EVENT_TIME": EVENT,
        "FEATURES": "amount:Fractional",
        "MISSING_POLICY": "reject",
        "MAX_AGE_SECONDS": "",
        "MAX_IDS": "100",
        "REQUIRED_FEATURES": "",
        "FEATURE_RULES": '{"amount":{"min":0}}',
    }
    app = load_app_config(config_path)
    spec = app.models["other"].lookup_spec(app.serving_of(app.environments["prod"], app.models["other"]).by_id)
    assert environ == front_environment(environment="prod", model="other", endpoint="shop-prod-other", feature_group="shop-prod-web-orders", spec=spec,
                                        namespace="shop/serving")
    assert local_environ(config_path, "prod", "returns")["ENDPOINT_NAME"] == "shop-prod-returns"


@pytest.mark.parametrize(
    "environment, model, message",
    [
        ("qa", "returns", "unknown environment 'qa'; known: ['dev', 'prod']"),
        ("dev", "other", "model 'other' is not in environment 'dev'; it runs ['returns', 'plain']"),
        ("dev", "fraud", "model 'fraud' is not in environment 'dev'; it runs ['returns', 'plain']"),
        ("dev", "plain", "model 'plain': serving.by_id.enabled is false in environment 'dev'; "
                         "turn it on in the config to score it by id"),
    ],
)
def test_local_environ_refuses_what_is_not_scored_by_id(config_path, environment, model, message):
    with pytest.raises(ValueError) as error:
        local_environ(config_path, environment, model)
    assert str(error.value) == message


# ---- the CLI ------------------------------------------------------------------------------------


def _fake_model_dir(root: Path) -> str:
    """A model directory as the registry sees it (its content is opaque to it; the CLI's checks come first)."""
    directory = root / "fake-model"
    directory.mkdir()
    (directory / "model.json").write_text("{}")
    return str(directory)


@pytest.fixture()
def approved_workdir(tmp_path) -> Path:
    workdir = tmp_path / "local-run"
    registry = LocalRegistry(str(workdir / "registry"))
    version = registry.register("returns", _fake_model_dir(tmp_path))
    registry.approve("returns", version.version)
    return workdir


def _cli(config_path: str, workdir: Path, *extra: str) -> List[str]:
    return ["--config", config_path, "--workdir", str(workdir), "--model", "returns", "--ids", "o-1", *extra]


def test_without_an_approved_version_the_cli_fails_naming_the_registry(config_path, tmp_path, capsys):
    workdir = tmp_path / "local-run"
    assert main(_cli(config_path, workdir)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ERROR: model 'returns' has no approved version in {workdir}/registry: run the local loop first\n"
    assert not (workdir / STORE_FILE).exists()

    # A version awaiting approval is not served either.
    LocalRegistry(str(workdir / "registry")).register("returns", _fake_model_dir(tmp_path))
    assert main(_cli(config_path, workdir)) == 2
    assert capsys.readouterr().err == f"ERROR: model 'returns' has no approved version in {workdir}/registry: run the local loop first\n"


def test_an_unknown_version_is_refused(config_path, approved_workdir, capsys):
    assert main(_cli(config_path, approved_workdir, "--version", "5")) == 2
    assert capsys.readouterr() == ("", "ERROR: model package group 'returns' has no version 5\n")


@pytest.mark.parametrize("now", ["next tuesday", "2026-13-01T00:00:00Z", "inf"])
def test_a_now_that_is_not_a_time_is_refused(config_path, approved_workdir, capsys, now):
    assert main(_cli(config_path, approved_workdir, "--now", now)) == 2
    assert capsys.readouterr() == ("", f"ERROR: --now {now!r}: not an ISO-8601 time\n")
    assert not (approved_workdir / STORE_FILE).exists()


@pytest.mark.parametrize("fields", ['[{"amount": 1}]', '"web"', "3", "null"])
def test_fields_that_are_not_a_json_object_are_refused(config_path, approved_workdir, capsys, fields):
    assert main(_cli(config_path, approved_workdir, "--fields", fields)) == 2
    assert capsys.readouterr() == ("", "ERROR: --fields: a JSON object of raw fields\n")


def test_fields_that_are_not_json_are_refused_with_the_parsers_message(config_path, approved_workdir, capsys):
    with pytest.raises(ValueError) as parse_error:
        json.loads('{"amount": ')
    assert main(_cli(config_path, approved_workdir, "--fields", '{"amount": ')) == 2
    assert capsys.readouterr() == ("", f"ERROR: {parse_error.value}\n")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--environment", "qa"], "unknown environment 'qa'; known: ['dev', 'prod']"),
        (["--model", "plain"], "model 'plain': serving.by_id.enabled is false in environment 'dev'; "
                               "turn it on in the config to score it by id"),
    ],
)
def test_the_cli_reports_the_environment_errors(config_path, approved_workdir, capsys, extra, message):
    assert main(_cli(config_path, approved_workdir, *extra)) == 2
    assert capsys.readouterr() == ("", f"ERROR: {message}\n")


# ---- a trained model: the endpoint twin and the CLI's answer ------------------------------------------


@pytest.fixture(scope="module")
def trained_returns(tmp_path_factory) -> Dict[str, Any]:
    """``returns`` trained (briefly) on generated ``web_orders`` rows with the project's prepare and train jobs."""
    from mlops_cli.local.run_loop import load_config as load_local_config
    from pipeline_code.training import prepare
    from pipeline_code.training.spec import parse_model_spec
    from tests.support.training import train_model, write_inputs

    root = tmp_path_factory.mktemp("online-store-model")
    config = _write_config(root)
    spec = parse_model_spec(load_local_config(config, "dev")["models"]["returns"])
    dataset = load_app_config(config).models["returns"].catalog_dataset
    inputs = write_inputs(root / "inputs", dataset, 1500, seed=11)
    out = root / "prepared"
    assert prepare.main([
        "--model-spec", spec.to_json(), "--features-dir", inputs["features"], "--labels-dir", inputs["labels"],
        "--frozen-test-dir", str(out / "no-frozen-test"), "--output-dir", str(out),
        "--min-group-rows", "50",  # 1,500 rows: a test set of 225, whose groups the gate's default would not compare
    ]) == 0
    model_dir = train_model(spec, {s: str(out / s) for s in ("train", "validation", "test")}, root / "model", "--num-round", "10")
    return {"model_dir": model_dir, "config": config}


NOW = dt.datetime(2026, 6, 1, 10, 15, tzinfo=UTC)


def test_the_local_endpoint_answers_through_the_serving_code_and_captures_each_request(trained_returns, tmp_path):
    capture = tmp_path / "capture"
    endpoint = LocalEndpoint(trained_returns["model_dir"], model="returns", capture_dir=str(capture), clock=lambda: NOW)
    body = json.dumps({"instances": [{"amount": 12.5, "items": 3, "channel": "web"}, {"amount": 99.0, "items": 1, "channel": "app"}]})
    answers = [endpoint.invoke_endpoint(EndpointName="shop-dev-returns", ContentType="application/json",
                                        Accept="application/json", Body=body) for _ in range(2)]

    assert [a["ContentType"] for a in answers] == ["application/json"] * 2
    payloads = [a["Body"].read().decode("utf-8") for a in answers]
    predictions = json.loads(payloads[0])["predictions"]
    assert len(predictions) == 2 and all(0.0 <= p["score"] <= 1.0 for p in predictions)
    assert payloads[0] == payloads[1]

    files = sorted(capture.rglob("*.jsonl"))
    assert {f.parent.relative_to(capture).as_posix() for f in files} == {"returns/AllTraffic/2026/06/01/10"}
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(lines) == 2  # one capture record per request
    for line in lines:
        assert line["captureData"]["endpointInput"] == {"observedContentType": "application/json", "mode": "INPUT",
                                                        "data": body, "encoding": "JSON"}
        assert line["captureData"]["endpointOutput"]["data"] == payloads[0]
        assert line["eventMetadata"]["inferenceTime"] == "2026-06-01T10:15:00Z"
    assert len({line["eventMetadata"]["eventId"] for line in lines}) == 2


def test_without_a_capture_dir_nothing_is_captured(trained_returns, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    endpoint = LocalEndpoint(trained_returns["model_dir"], model="returns")
    answer = endpoint.invoke_endpoint(EndpointName="e", ContentType="application/json", Accept="application/json",
                                      Body=json.dumps({"instances": [{"amount": 1.0, "items": 1, "channel": "web"}]}))
    assert len(json.loads(answer["Body"].read())["predictions"]) == 1
    assert list(tmp_path.rglob("*.jsonl")) == []


@pytest.fixture()
def served_workdir(trained_returns, tmp_path) -> Path:
    """A workdir as the local run leaves it: ``returns`` v1 approved, the online store holding two orders."""
    workdir = tmp_path / "local-run"
    registry = LocalRegistry(str(workdir / "registry"))
    registry.approve("returns", registry.register("returns", trained_returns["model_dir"]).version)
    store = LocalOnlineStore(str(workdir / STORE_FILE))
    try:
        _put(store, [
            {ID: "o-1", EVENT: "2026-05-31T12:00:00Z", "amount": 12.5, "items": 3, "channel": "web"},
            {ID: "o-2", EVENT: "2026-05-01T00:00:00Z", "amount": 40.0, "items": 1, "channel": "app"},  # older than 48 h
        ], ttl_days=7)
    finally:
        store.close()
    return workdir


def test_the_cli_scores_ids_from_the_store_and_computes_the_rest_from_fields(trained_returns, served_workdir, tmp_path, capsys):
    capture = tmp_path / "capture"
    code = main(["--config", trained_returns["config"], "--workdir", str(served_workdir), "--model", "returns",
                 "--ids", "o-1", "o-2", "o-9", "--fields", json.dumps({"amount": 5.0, "items": 2, "channel": "app"}),
                 "--now", "2026-06-01T00:00:00Z", "--capture-dir", str(capture)])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    body = json.loads(out)  # stdout is the answer only; the handler's metric line goes to stderr
    assert [(p["id"], p["feature_source"], p["lookup"], p["feature_event_time"]) for p in body["predictions"]] == [
        ("o-1", "online_store", "fresh", "2026-05-31T12:00:00Z"),
        ("o-2", "computed", "expired", "2026-05-01T00:00:00Z"),  # expired 05-08 (dev's 7-day TTL as written here)
        ("o-9", "computed", "unknown", None),
    ]
    assert body["lookup"] == {"fresh": 1, "unknown": 1, "expired": 1, "stale": 0, "invalid": 0}
    assert all(0.0 <= p["score"] <= 1.0 for p in body["predictions"])
    # o-2 and o-9 were both computed from the same fields: the same score.
    assert math.isclose(body["predictions"][1]["score"], body["predictions"][2]["score"])
    metric = json.loads(err.strip().splitlines()[-1])
    assert metric["Model"] == "returns" and metric["Status"] == 200 and metric["ByIdFresh"] == 1
    (captured,) = list(capture.rglob("*.jsonl"))
    assert captured.relative_to(capture).parts[:2] == ("returns", "AllTraffic")
    sent = json.loads(json.loads(captured.read_text().splitlines()[0])["captureData"]["endpointInput"]["data"])["instances"]
    assert [(r["entity_id"], r["feature_source"]) for r in sent] == [("o-1", "online_store"), ("o-2", "computed"), ("o-9", "computed")]
    assert (sent[0]["amount"], sent[0]["items"], sent[0]["channel"]) == (12.5, 3, "web")


def test_the_cli_exits_1_with_the_fronts_refusal_when_an_id_cannot_be_scored(trained_returns, served_workdir, capsys):
    # Policy compute without raw fields: the unknown id is refused (422), naming it.
    code = main(["--config", trained_returns["config"], "--workdir", str(served_workdir), "--model", "returns",
                 "--ids", "o-1", "o-9", "--now", "2026-06-01T00:00:00Z"])
    out, err = capsys.readouterr()
    assert code == 1
    answer = json.loads(out)
    assert set(answer) == {"error"} and "o-9" in answer["error"]
    assert re.search(r"policy 'compute' needs the instance's raw fields", answer["error"])
    assert json.loads(err.strip().splitlines()[-1])["Status"] == 422


def test_the_cli_resolves_a_stored_record_lacking_a_required_feature_by_the_policy_and_scores_the_rest(
        trained_returns, served_workdir, capsys):
    """GIVEN o-3's online record written without ``items`` (nullable: false; the model's serving refuses it missing)
    WHEN scored by id with o-1 THEN the local twin's front calls o-3 invalid and its policy (compute) resolves it: from
    the raw fields sent, else refused naming it; o-1 is scored from the store either way, never failed by o-3."""
    store = LocalOnlineStore(str(served_workdir / STORE_FILE))
    try:
        _put(store, [{ID: "o-3", EVENT: "2026-05-31T12:00:00Z", "amount": 8.0, "items": None, "channel": "web"}], ttl_days=7)
    finally:
        store.close()
    command = ["--config", trained_returns["config"], "--workdir", str(served_workdir), "--model", "returns",
               "--ids", "o-1", "o-3", "--now", "2026-06-01T00:00:00Z"]

    assert main([*command, "--fields", json.dumps({"amount": 8.0, "items": 2, "channel": "web"})]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [(p["id"], p["feature_source"], p["lookup"]) for p in body["predictions"]] == [
        ("o-1", "online_store", "fresh"), ("o-3", "computed", "invalid")]
    assert body["lookup"] == {"fresh": 1, "unknown": 0, "expired": 0, "stale": 0, "invalid": 1}

    assert main(command) == 1
    assert json.loads(capsys.readouterr().out) == {"error": "no fresh online-store record (invalid: o-3); policy 'compute' "
                                                            "needs the instance's raw fields for these ids; o-3: feature "
                                                            "'items': absent from the stored record, but serving refuses "
                                                            "it missing (a required feature)"}


def test_the_module_runs_as_the_documented_command():
    assert online_store.build_parser().prog == "python -m mlops_cli.local.online_store"


def test_a_row_with_an_unreadable_event_time_is_skipped_and_the_others_are_stored(tmp_path):
    store = LocalOnlineStore(str(tmp_path / STORE_FILE))
    rows = [{ID: "o-1", EVENT: "yesterday", "amount": 1.0}, {ID: "o-2", EVENT: "2026-05-02T00:00:00Z", "amount": 2.0}]
    assert store.put_records(GROUP, rows, record_identifier=ID, event_time=EVENT, ttl_days=None) == 1
    got = store.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["o-1", "o-2"]}])
    assert [r["RecordIdentifierValueAsString"] for r in got["Records"]] == ["o-2"]
