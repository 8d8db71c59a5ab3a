#!/usr/bin/python3
"""Writes the seed corpus of fuzz_ingest_decode into corpus/ingest_decode/.

Uses Debian's python3-msgpack (apt-get install python3-msgpack). The generated files are
committed: the fuzz smoke test needs no generation step. Run it again after editing the
seeds below; files it did not write (e.g. crash inputs added by hand as crash-<sha1>) are
left alone.

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""

import math
import os
import struct

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ingest_decode")

NOW = 1_700_000_000_000  # the harness's fixed node time, in ms


def pack(obj):
    # Python floats are written as float64, ints in their smallest MessagePack form.
    return msgpack.packb(obj, use_bin_type=True)


def f64(d):
    """A float64 exactly as encode_request writes `value` (also for integral values)."""
    return b"\xcb" + struct.pack(">d", d)


def f32(d):
    return b"\xca" + struct.pack(">f", d)


def s(text):
    return pack(text)


def raw_map(pairs):
    """A map from (key, already-packed value) pairs, keys may repeat; keys are str."""
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(pack(k) + v for k, v in pairs)


def raw_array(items):
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(items)


def reading(device="oxi-0042", metric="spo2", value=97.0, ts=NOW - 1000, seq=1, **extra):
    r = {"device": device, "metric": metric, "value": value, "ts": ts, "seq": seq}
    r.update(extra)
    return r


def request(readings, batch="b-1", v=1, type_="telemetry", **extra):
    req = {"v": v, "type": type_, "batch": batch, "readings": readings}
    req.update(extra)
    return req


def client_request(batch, readings):
    """Byte for byte what encode_request (ingest_client) sends: key order v, type, batch,
    readings; value always float64; patient / unit only when set."""
    items = []
    for r in readings:
        pairs = [("device", s(r["device"])), ("metric", s(r["metric"])), ("value", f64(r["value"])),
                 ("ts", pack(r["ts"])), ("seq", pack(r["seq"]))]
        for opt in ("patient", "unit"):
            if r.get(opt) is not None:
                pairs.append((opt, s(r[opt])))
        items.append(raw_map(pairs))
    return raw_map([("v", pack(1)), ("type", s("telemetry")), ("batch", pack(batch)),
                    ("readings", raw_array(items))])


SEEDS = {}

# ---- valid requests ----------------------------------------------------------------------
SEEDS["ok_single_reading"] = pack(request([reading()]))
SEEDS["ok_several_readings_int_batch"] = pack(request([
    reading("mon-7", "heart_rate", 72.0, NOW - 3000, 10, patient="P-100234", unit="{beats}/min"),
    reading("mon-7", "temperature", 98.6, NOW - 2000, 11, patient="P-100234", unit="[degF]"),
    reading("mon-7", "systolic_bp", 16.0, NOW - 1000, 12, patient="P-100234", unit="kPa"),
    reading("gluc-1", "glucose", 90.0, NOW, 1, unit="mg/dL"),
    reading("mon-7", "consciousness", 0, NOW, 13),
], batch=42))
SEEDS["ok_client_style_string_batch"] = client_request("sim-0001-000017", [
    reading("oxi-0042", "spo2", 97.0, NOW - 500, 17, patient="P-1"),
    reading("oxi-0042", "heart_rate", 88.0, NOW - 500, 18, unit="/min"),
    reading("pump-3", "o2_flow", 2000.0, NOW, 5, unit="mL/min"),
])
SEEDS["ok_uint64_batch"] = pack(request([reading(seq=2**64 - 1)], batch=2**64 - 1))
# nil patient / unit count as absent; empty strings are present (and must stay so).
SEEDS["ok_nil_and_empty_patient_unit"] = pack(request([
    reading(patient=None, unit=None),
    reading(seq=2, patient="", unit=""),
], batch="b-nil"))
SEEDS["ok_empty_readings"] = pack(request([], batch=""))
SEEDS["ok_value_int_and_float32"] = raw_map([
    ("v", pack(1)), ("type", s("telemetry")), ("batch", pack(-7)),
    ("readings", raw_array([
        raw_map([("device", s("d1")), ("metric", s("resp_rate")), ("value", pack(-1)),
                 ("ts", pack(NOW)), ("seq", pack(1))]),
        raw_map([("device", s("d1")), ("metric", s("battery")), ("value", f32(55.5)),
                 ("ts", pack(NOW)), ("seq", pack(2))]),
        raw_map([("device", s("d1")), ("metric", s("spo2")), ("value", f64(-0.0)),
                 ("ts", pack(-1)), ("seq", pack(0))]),
    ])),
])
# Unknown keys at both levels, a repeated key (its first occurrence wins), keys out of order.
SEEDS["ok_extra_and_repeated_keys"] = raw_map([
    ("readings", raw_array([raw_map([
        ("seq", pack(9)), ("ts", pack(NOW)), ("value", f64(36.6)), ("metric", s("temperature")),
        ("device", s("t-1")), ("device", s("ignored")), ("note", pack({"a": [1, 2]})), ("unit", s("Cel")),
    ])])),
    ("trace", pack("abc")), ("batch", s("b-2")), ("type", s("telemetry")), ("v", pack(1)), ("v", pack(2)),
])
# Decodes, but make_reading refuses every reading, each for another reason.
SEEDS["ok_semantic_rejections"] = pack(request([
    reading(device=""),                              # invalid_id
    reading(device="bad device"),                    # invalid_id
    reading(patient="-x"),                           # invalid_id
    reading(metric="spo3"),                          # unknown_metric
    reading(metric="temperature", value=300.0, unit="K"),  # unit_mismatch
    reading(value=math.nan),                         # not_finite
    reading(value=math.inf),                         # not_finite
    reading(value=101.0),                            # value_out_of_range
    reading(metric="consciousness", value=1.5),      # value_out_of_range (whole)
    reading(ts=-5),                                  # value_out_of_range (before epoch)
    reading(ts=NOW + 10 * 60 * 1000),                # timestamp_in_future
    reading(ts=2**63 - 1),                           # timestamp_in_future, largest ts
], batch="b-sem"))
# Decodes, with per-reading decode errors (missing_field, wrong_type) next to a good one.
SEEDS["ok_decode_rejections"] = pack(request([
    reading(),
    "not a map",
    {"metric": "spo2", "value": 1.0, "ts": 1, "seq": 1},      # device missing
    {"device": "d", "metric": "spo2", "ts": 1, "seq": 1},     # value missing
    reading(device=5),                                      # wrong_type
    reading(value="97"),                                    # wrong_type
    reading(value=True),                                    # wrong_type
    reading(ts=1.5),                                        # wrong_type
    reading(ts=2**63),                                      # wrong_type (above INT64_MAX)
    reading(seq=-1),                                        # wrong_type
    reading(patient=12),                                    # wrong_type
    reading(unit=[]),                                       # wrong_type
    reading(ts=msgpack.Timestamp(1_700_000_000, 0)),        # ext -1: wrong_type
    reading(value=b"\x00\x01"),                             # bin: wrong_type
], batch="b-rej"))

# ---- malformed or refused requests -------------------------------------------------------
good = SEEDS["ok_several_readings_int_batch"]
SEEDS["bad_truncated_half"] = good[: len(good) // 2]
SEEDS["bad_trailing_bytes"] = SEEDS["ok_single_reading"] + b"\xc0"
SEEDS["bad_not_msgpack"] = b"\xc1\xff{\"v\":1}"
SEEDS["bad_top_level_array"] = pack([1, "telemetry", "b", []])
SEEDS["bad_version_2"] = pack(request([reading()], v=2, batch="b-v2"))
SEEDS["bad_version_string"] = pack(request([reading()], v="1"))
SEEDS["bad_type_control"] = pack(request([reading()], type_="control"))
SEEDS["bad_batch_float"] = pack(request([reading()], batch=1.5))
SEEDS["bad_missing_readings"] = pack({"v": 1, "type": "telemetry", "batch": "b"})
SEEDS["bad_readings_map"] = pack(request({"0": reading()}))
SEEDS["bad_deep_nesting"] = pack(request([reading()], extra=[[[[[[[[["deep"]]]]]]]]]))
# Headers that promise far more than follows: must be refused without allocating it all.
REQUEST_HEAD = b"\x84" + s("v") + pack(1) + s("type") + s("telemetry")  # a 4-entry map, 2 given
SEEDS["bad_huge_array_header"] = REQUEST_HEAD + s("batch") + s("h") + s("readings") + b"\xdd\xff\xff\xff\xff"
SEEDS["bad_huge_str_header"] = b"\x81\xa5batch\xdb\xff\xff\xff\xf0abc"
SEEDS["bad_huge_map_header"] = b"\xdf\x7f\xff\xff\xff\xa1v\x01"
# One reading over max_readings (10000): still parsed, so the batch id is echoed (too_large).
SEEDS["bad_too_many_readings"] = REQUEST_HEAD + s("batch") + s("big") + s("readings") \
    + b"\xdc" + struct.pack(">H", 10001) + b"\xc0" * 10001
SEEDS["bad_map_65_entries"] = pack({**request([reading()]), **{f"k{i}": i for i in range(61)}})
SEEDS["bad_bin_too_long"] = pack(request([reading(value=b"x" * 100)]))

# ---- replies (decode_reply) --------------------------------------------------------------
SEEDS["reply_ack"] = pack({"v": 1, "type": "ack", "batch": "b-1", "accepted": 3, "duplicates": 1,
                           "rejected": [{"index": 4, "code": "unknown_metric", "message": "metric 'x'"},
                                        {"index": 9, "code": "some_future_code", "message": ""}]})
SEEDS["reply_error"] = pack({"v": 1, "type": "error", "batch": 2**64 - 1, "code": "overloaded",
                             "message": "try later"})
SEEDS["reply_error_no_batch"] = pack({"v": 1, "type": "error", "batch": None, "code": "ok", "message": "m"})


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
