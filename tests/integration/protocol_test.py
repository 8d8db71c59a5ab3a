#!/usr/bin/python3
"""Ingest protocol v1 (docs/protocol.md) against a real alertd process, over real sockets.

    /usr/bin/python3 tests/integration/protocol_test.py build/dev/tools/alertd [unittest args]

The alertd binary is the first argument when it names a file, else $ALERT_ALERTD. Every
test starts its own node on a free port with a fresh data directory and stops it with
SIGTERM, expecting exit code 0. Nothing sleeps to wait for behaviour: replies and process
events are awaited with deadlines.

Not covered here: `overloaded` (journal queue full) and `unavailable` (the journal failed
to write) cannot be provoked reliably from outside the process; they are tested in C++
against a controllable backend. `unauthorized` is reserved and never sent yet.
"""
import math
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import zmq
import zmq.utils.monitor

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "tools", "examples")
sys.path.insert(0, EXAMPLES)
import ingest_client  # noqa: E402  (the example client for integrators, proven here)

ALERTD = os.environ.get("ALERT_ALERTD")
READY_TIMEOUT_S = 15
STOP_TIMEOUT_S = 20
REPLY_TIMEOUT_MS = 5000
ABSENT = object()  # "the reply must not carry a batch" / "leave this field out"
ANY = object()  # "do not check the batch"


def now_ms():
    return int(time.time() * 1000)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


class Alertd:
    """One alertd process; stderr (its log) goes to a file shown when a test fails."""

    def __init__(self, data_dir, args=(), log_path=None):
        self.data_dir, self.args = data_dir, list(args)
        self.log_path = log_path or data_dir + ".log"
        self.proc, self.endpoint = None, None

    def command(self):
        return [ALERTD, "--data-dir", self.data_dir, "--ingest.endpoint", "tcp://127.0.0.1:*",
                "--pager.endpoint", "tcp://127.0.0.1:*",
                "--control.endpoint", "tcp://127.0.0.1:*", "--metrics.endpoint", "127.0.0.1:0", "--security.plaintext", "--security.plaintext-storage",
                "--stats-interval", "0", *self.args]

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log)
        deadline, out = time.monotonic() + READY_TIMEOUT_S, b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"alertd not ready after {READY_TIMEOUT_S} s\n{self.log()}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(STOP_TIMEOUT_S)
                    raise AssertionError(f"alertd exited {self.proc.returncode} before ready\n{self.log()}")
                out += chunk
        line = out.split(b"\n", 1)[0].decode()
        m = re.fullmatch(r"alertd ready ingest=(tcp://127\.0\.0\.1:\d+) pager=tcp://127\.0\.0\.1:\d+ control=tcp://127\.0\.0\.1:\d+ metrics=http://127\.0\.0\.1:\d+/metrics", line)
        if not m:
            self.kill()
            raise AssertionError(f"unexpected ready line {line!r}")
        self.endpoint = m.group(1)
        return self.endpoint

    def stop(self):
        """SIGTERM, then the exit code (None when it had to be killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.proc.stdout.close()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc and not self.proc.stdout.closed:
            self.proc.stdout.close()


class NodeTest(unittest.TestCase):
    """Starts a node per test; subclasses set `node_args`."""

    node_args = ()

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="alertd-protocol-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.data_dir = os.path.join(self.tmp, "data")
        self.node = self.start_node()
        self.ctx = zmq.Context()
        self.sockets = []
        self.sock = self.socket()
        self.seq = 0
        self.ts = now_ms() - 60_000  # a minute ago: well inside every limit

    def tearDown(self):
        for s in self.sockets:
            s.close(linger=0)
        self.ctx.destroy(linger=0)
        rc = self.node.stop()
        self.assertEqual(rc, 0, f"alertd did not stop cleanly\n{self.node.log()}")

    def start_node(self):
        node = Alertd(self.data_dir, self.node_args, os.path.join(self.tmp, "alertd.log"))
        node.start()
        self.addCleanup(node.kill)  # only does something when a test failed half-way
        return node

    def socket(self, kind=zmq.DEALER):
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.node.endpoint)
        self.sockets.append(s)
        return s

    # ---- building requests ----

    def reading(self, **fields):
        """A valid reading; keyword arguments override fields, ABSENT removes one."""
        self.seq += 1
        r = {"device": "oxi-1", "metric": "spo2", "value": 97.0, "ts": self.ts, "seq": self.seq}
        r.update(fields)
        return {k: v for k, v in r.items() if v is not ABSENT}

    @staticmethod
    def request(readings, batch="b-1", **fields):
        r = {"v": 1, "type": "telemetry", "batch": batch, "readings": readings}
        r.update(fields)
        return {k: v for k, v in r.items() if v is not ABSENT}

    # ---- talking to the node ----

    def exchange(self, frame, sock=None):
        sock = self.sock if sock is None else sock
        sock.send(frame)
        if not sock.poll(REPLY_TIMEOUT_MS):
            self.fail(f"no reply within {REPLY_TIMEOUT_MS} ms\n{self.node.log()}")
        return msgpack.unpackb(sock.recv(), raw=False)

    def send(self, readings, batch="b-1", sock=None):
        return self.exchange(pack(self.request(readings, batch)), sock)

    def assert_ack(self, reply, batch, accepted, duplicates=0, rejected=(), readings=None):
        """`rejected`: (index, code) pairs, in index order."""
        self.assertEqual(reply.get("type"), "ack", reply)
        self.assertEqual(reply["v"], 1)
        self.assertEqual(reply["batch"], batch)
        self.assertEqual(type(reply["batch"]), type(batch))
        self.assertEqual((reply["accepted"], reply["duplicates"]), (accepted, duplicates), reply)
        self.assertEqual([(r["index"], r["code"]) for r in reply["rejected"]], list(rejected), reply)
        for r in reply["rejected"]:
            self.assertEqual(set(r), {"index", "code", "message"})
            self.assertIsInstance(r["message"], str)
            self.assertTrue(r["message"])
        if readings is not None:  # every reading is accounted for exactly once
            self.assertEqual(accepted + duplicates + len(rejected), len(readings))

    def assert_error(self, reply, code, batch=ABSENT, message=None):
        self.assertEqual(reply.get("type"), "error", reply)
        self.assertEqual(reply["v"], 1)
        self.assertEqual(reply["code"], code, reply)
        if batch is ABSENT:
            self.assertNotIn("batch", reply)
        elif batch is not ANY:
            self.assertEqual(reply.get("batch"), batch)
            self.assertEqual(type(reply["batch"]), type(batch))
        self.assertIsInstance(reply["message"], str)
        if message:
            self.assertIn(message, reply["message"])

    def assert_rejected(self, bad_readings, code, good=None):
        """Sends `bad_readings` (after one good reading) and expects each refused with `code`."""
        readings = [good or self.reading()] + list(bad_readings)
        reply = self.send(readings, batch=code)
        self.assert_ack(reply, code, 1, 0, [(i, code) for i in range(1, len(readings))], readings)
        return reply["rejected"]


class AckTest(NodeTest):
    def test_ack_counts_accepted_readings(self):
        readings = [self.reading(), self.reading(metric="heart_rate", value=72.0),
                    self.reading(device="bp-7", patient="P-100234", metric="systolic_bp", value=121.0)]
        reply = self.send(readings, "first")
        self.assert_ack(reply, "first", 3, readings=readings)
        self.assertEqual(set(reply), {"v", "type", "batch", "accepted", "duplicates", "rejected"})

    def test_example_client_send_batch(self):
        readings = [self.reading(), self.reading(metric="temperature", value=98.6, unit="[degF]")]
        ack = ingest_client.send_batch(self.sock, "example-1", readings, timeout_ms=REPLY_TIMEOUT_MS, attempts=2)
        self.assert_ack(ack, "example-1", 2)
        # What the client does after a timeout: the same batch again, counted as duplicates.
        ack = ingest_client.send_batch(self.sock, "example-1", readings, timeout_ms=REPLY_TIMEOUT_MS, attempts=2)
        self.assert_ack(ack, "example-1", 0, 2)
        with self.assertRaises(ingest_client.IngestError) as err:
            ingest_client.send_batch(self.sock, "example-2", [self.reading()] * 10001, REPLY_TIMEOUT_MS, 1)
        self.assertEqual(err.exception.code, "too_large")

    def test_example_client_script(self):
        script = os.path.join(EXAMPLES, "ingest_client.py")
        run = subprocess.run([sys.executable, script, "--endpoint", self.node.endpoint],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("accepted=3 duplicates=0 rejected=1", run.stdout)
        self.assertIn("rejected reading #3: unknown_metric", run.stdout)

    def test_resent_batch_and_resent_readings_are_duplicates(self):
        readings = [self.reading(), self.reading(), self.reading(device="oxi-2", seq=1)]
        self.assert_ack(self.send(readings, "b-1"), "b-1", 3)
        self.assert_ack(self.send(readings, "b-1"), "b-1", 0, 3)
        # Identity is (device, seq), not the batch: the same readings in a new batch, plus a new one.
        again = readings + [self.reading()]
        self.assert_ack(self.send(again, "b-2"), "b-2", 1, 3)
        # A (device, seq) repeated inside one batch is stored once, even with another value.
        twice = [self.reading(seq=100, value=90.0), self.reading(seq=100, value=91.0)]
        self.assert_ack(self.send(twice, "b-3"), "b-3", 1, 1)

    def test_mixed_batch_keeps_indexes(self):
        readings = [self.reading(), self.reading(metric="nope"), self.reading(),
                    self.reading(value=101.0), self.reading(seq=ABSENT), self.reading()]
        reply = self.send(readings, "mixed")
        self.assert_ack(reply, "mixed", 3, 0,
                        [(1, "unknown_metric"), (3, "value_out_of_range"), (4, "missing_field")], readings)
        # Only the good ones were stored: resending gives 3 duplicates and the same rejections.
        self.assert_ack(self.send(readings, "mixed"), "mixed", 0, 3,
                        [(1, "unknown_metric"), (3, "value_out_of_range"), (4, "missing_field")])

    def test_all_rejected_batch_is_an_ack(self):
        self.assert_ack(self.send([self.reading(metric="x")], "bad"), "bad", 0, 0, [(0, "unknown_metric")])
        self.assert_ack(self.send([], "empty"), "empty", 0)

    def test_late_and_out_of_order_readings_are_accepted(self):
        readings = [self.reading(seq=10, ts=self.ts), self.reading(seq=11, ts=self.ts - 3_600_000),
                    self.reading(seq=5, ts=self.ts - 86_400_000)]
        self.assert_ack(self.send(readings, "late"), "late", 3)

    def test_optional_and_unknown_fields(self):
        readings = [self.reading(patient=None, unit=None), self.reading(unit=""), self.reading(unit="%"),
                    self.reading(value=97), self.reading(extra={"k": [1, 2]}, note="ignored"),
                    self.reading(ts=now_ms() + 60_000)]  # within the 5 min clock-skew allowance
        reply = self.exchange(pack(self.request(readings, "opt", meta="ignored")))
        self.assert_ack(reply, "opt", 6)

    def test_batch_id_echoes_as_string_and_as_int(self):
        for batch in ["b-1", "", "ünïcode ✓", 0, 7, -3, 2**63 - 1, 2**64 - 1]:
            with self.subTest(batch=batch):
                self.assert_ack(self.send([self.reading()], batch), batch, 1)
                reply = self.exchange(pack(self.request([], batch, v=2)))
                self.assert_error(reply, "unsupported_version", batch)

    def test_pipelined_batches_each_get_their_ack(self):
        for i in range(50):
            self.sock.send(pack(self.request([self.reading(), self.reading()], i)))
        seen, deadline = [], time.monotonic() + REPLY_TIMEOUT_MS / 1000
        while len(seen) < 50:
            left = int((deadline - time.monotonic()) * 1000)
            self.assertTrue(left > 0 and self.sock.poll(left), f"only {len(seen)} replies")
            reply = msgpack.unpackb(self.sock.recv(), raw=False)
            self.assert_ack(reply, reply["batch"], 2)
            seen.append(reply["batch"])
        self.assertEqual(sorted(seen), list(range(50)))

    def test_req_socket_gets_a_reply(self):
        req = self.socket(zmq.REQ)
        self.assert_ack(self.send([self.reading()], "via-req", req), "via-req", 1)
        self.assert_ack(self.send([self.reading()], "via-req-2", req), "via-req-2", 1)
        # A DEALER may add its own envelope frames: they come back before the reply.
        self.sock.send_multipart([b"my-tag", b"", pack(self.request([self.reading()], "env"))])
        self.assertTrue(self.sock.poll(REPLY_TIMEOUT_MS))
        tag, empty, payload = self.sock.recv_multipart()
        self.assertEqual((tag, empty), (b"my-tag", b""))
        self.assert_ack(msgpack.unpackb(payload, raw=False), "env", 1)


class PerReadingCodeTest(NodeTest):
    def test_missing_field(self):
        bad = [self.reading(**{f: ABSENT}) for f in ("device", "metric", "value", "ts", "seq")]
        rejected = self.assert_rejected(bad, "missing_field")
        for r, f in zip(rejected, ("device", "metric", "value", "ts", "seq")):
            self.assertEqual(r["message"], f"field '{f}' is missing")

    def test_wrong_type(self):
        bad = [self.reading(device=7), self.reading(device=b"oxi-1"), self.reading(metric=["spo2"]),
               self.reading(value="97"), self.reading(value=True), self.reading(value=None),
               self.reading(ts=float(self.ts)), self.reading(ts=str(self.ts)), self.reading(ts=2**64 - 1),
               self.reading(ts=msgpack.Timestamp.from_unix_nano(self.ts * 1_000_000)),
               self.reading(seq=-1), self.reading(seq=1.0), self.reading(patient=42),
               self.reading(unit=False), "not a map", [1, 2]]
        self.assert_rejected(bad, "wrong_type")

    def test_unknown_metric(self):
        rejected = self.assert_rejected([self.reading(metric="SpO2"), self.reading(metric="respiration"),
                                         self.reading(metric="")], "unknown_metric")
        self.assertEqual(rejected[0]["message"], "metric 'SpO2' is not in the vocabulary")

    def test_unit_mismatch_and_accepted_conversions(self):
        rejected = self.assert_rejected([self.reading(unit="kPa"), self.reading(unit="percent"),
                                         self.reading(metric="temperature", value=98.6, unit="degF"),
                                         self.reading(metric="temperature", value=37.0, unit="cel")],
                                        "unit_mismatch")
        self.assertIn("expected '%' or '%{O2}'", rejected[0]["message"])
        ok = [self.reading(metric="temperature", value=98.6, unit="[degF]"),
              self.reading(metric="temperature", value=37.0, unit="Cel"),
              self.reading(metric="systolic_bp", value=16.0, unit="kPa"),
              self.reading(metric="glucose", value=90.0, unit="mg/dL"),
              self.reading(metric="o2_flow", value=2000.0, unit="mL/min"),
              self.reading(metric="lead_impedance", value=5000.0, unit="Ohm"),
              self.reading(metric="heart_rate", value=72.0, unit="{beats}/min"),
              self.reading(metric="resp_rate", value=16.0, unit="{breaths}/min"),
              self.reading(unit="%{O2}")]
        self.assert_ack(self.send(ok, "units"), "units", len(ok))
        # 120 [degF] is 48.9 Cel: converted first, then checked against 10..47 Cel.
        reply = self.send([self.reading(metric="temperature", value=120.0, unit="[degF]")], "hot")
        self.assert_ack(reply, "hot", 0, 0, [(0, "value_out_of_range")])
        self.assertIn("Cel", reply["rejected"][0]["message"])

    def test_not_finite(self):
        bad = [self.reading(value=math.nan), self.reading(value=math.inf), self.reading(value=-math.inf),
               self.reading(metric="temperature", value=math.nan, unit="[degF]")]
        frame = pack(self.request([self.reading()] + bad, "not_finite"))
        for v in (math.inf, -math.inf):  # really sent as MessagePack float64
            self.assertIn(struct.pack(">Bd", 0xCB, v), frame)
        self.assertIn(b"\xcb\x7f\xf8", frame)  # a float64 quiet NaN
        reply = self.exchange(frame)
        self.assert_ack(reply, "not_finite", 1, 0, [(i, "not_finite") for i in range(1, 5)])

    def test_value_out_of_range(self):
        bad = [self.reading(value=100.5), self.reading(value=-0.5), self.reading(metric="heart_rate", value=351),
               self.reading(metric="consciousness", value=1.5), self.reading(metric="consciousness", value=5),
               self.reading(metric="o2_supplement", value=2), self.reading(ts=-1)]
        rejected = self.assert_rejected(bad, "value_out_of_range")
        self.assertEqual(rejected[0]["message"], "spo2 value 100.5 % is outside the measurable range 0..100")
        self.assertEqual(rejected[-1]["message"], "ts is before the Unix epoch")
        edges = [self.reading(value=0.0), self.reading(value=100.0), self.reading(metric="consciousness", value=4),
                 self.reading(ts=0)]
        self.assert_ack(self.send(edges, "edges"), "edges", len(edges))

    def test_timestamp_in_future(self):
        rejected = self.assert_rejected([self.reading(ts=now_ms() + 3_600_000), self.reading(ts=2**63 - 1)],
                                        "timestamp_in_future")
        self.assertIn("ahead of the node clock (allowed 300000 ms)", rejected[0]["message"])

    def test_invalid_id(self):
        bad = [self.reading(device="oxi\x01-1"), self.reading(device="oxi\n1"), self.reading(device="x" * 65),
               self.reading(device=""), self.reading(device="-oxi"), self.reading(device="oxi 1"),
               self.reading(device="oxi/1"), self.reading(device="öxi"), self.reading(patient="P 1"),
               self.reading(patient=""), self.reading(patient="P" * 65)]
        rejected = self.assert_rejected(bad, "invalid_id")
        self.assertIn("forbidden byte 0x01 at offset 3", rejected[0]["message"])
        self.assertEqual(rejected[2]["message"], "device id is 65 bytes, longer than 64")
        self.assertTrue(rejected[8]["message"].startswith("patient id"))
        ok = [self.reading(device="d" * 64), self.reading(device="a-b_c.d:e@f", patient="0.P_1-x:y@z")]
        self.assert_ack(self.send(ok, "ids"), "ids", 2)


class RequestCodeTest(NodeTest):
    def test_malformed(self):
        good = self.request([self.reading()], "m")
        cases = [
            ("not msgpack", b"\xc1", ABSENT, "not valid MessagePack"),
            ("empty frame", b"", ABSENT, "empty or truncated"),
            ("truncated", pack(good)[:-3], ABSENT, "empty or truncated"),
            ("not a map", pack([1, "telemetry", "m", []]), ABSENT, "must be a MessagePack map"),
            ("trailing bytes", pack(good) + b"\xc0", "m", "1 trailing bytes"),
            ("missing v", pack(self.request([], "m", v=ABSENT)), "m", "'v'"),
            ("v not an integer", pack(self.request([], "m", v="1")), "m", "'v'"),
            ("missing type", pack(self.request([], "m", type=ABSENT)), "m", "'type'"),
            ("wrong type", pack(self.request([], "m", type="ack")), "m", "'type'"),
            ("missing batch", pack(self.request([], ABSENT)), ABSENT, "'batch' is missing"),
            ("batch a float", pack(self.request([], 1.5)), ABSENT, "'batch' must be"),
            ("batch nil", pack(self.request([], None)), ABSENT, "'batch' must be"),
            ("batch a list", pack(self.request([], ["m"])), ABSENT, "'batch' must be"),
            ("missing readings", pack(self.request(ABSENT, "m")), "m", "'readings' is missing"),
            ("readings a map", pack(self.request({"0": self.reading()}, "m")), "m", "'readings' must be"),
        ]
        for name, frame, batch, message in cases:
            with self.subTest(name):
                self.assert_error(self.exchange(frame), "malformed", batch, message)
        # More than 8 frames in one message: the node wants one MessagePack frame per request.
        self.sock.send_multipart([b"x"] * 8 + [pack(good)])
        self.assertTrue(self.sock.poll(REPLY_TIMEOUT_MS))
        self.assert_error(msgpack.unpackb(self.sock.recv_multipart()[-1], raw=False), "malformed",
                          message="too many frames")
        self.assert_ack(self.exchange(pack(good)), "m", 1)  # and the node still answers

    def test_unsupported_version(self):
        for v in (0, 2, 255, -1):
            with self.subTest(v=v):
                reply = self.exchange(pack(self.request([self.reading()], f"v{v}", v=v)))
                self.assert_error(reply, "unsupported_version", f"v{v}", f"protocol version {v} is not supported")

    def test_decode_limits_are_too_large(self):
        # Fixed decode limits (cluster/ingest_wire.hpp): strings, map sizes, nesting depth.
        big_string = self.request([self.reading(device="d" * 4097)], "s")
        wide_map = self.request([dict(self.reading(), **{f"k{i}": i for i in range(60)})], "w")
        deep = self.request([self.reading(extra=[[[[1]]]])], "d")
        for name, req, message in [("string", big_string, "string longer than 4096 bytes"),
                                   ("map", wide_map, "map with more than 64 entries"),
                                   ("depth", deep, "deeper than 6 levels")]:
            with self.subTest(name):
                self.assert_error(self.exchange(pack(req)), "too_large", ABSENT, message)
        self.assert_ack(self.exchange(pack(self.request([self.reading(extra=[[1]])], "ok"))), "ok", 1)

    def test_deeply_nested_frame_then_node_keeps_answering(self):
        bystander = self.socket()
        bystander.send(pack(self.request([self.reading()], "before")))
        self.sock.send(b"\x91" * 500_000 + b"\xc0")  # half a million nested arrays
        self.assertTrue(bystander.poll(REPLY_TIMEOUT_MS))
        self.assert_ack(msgpack.unpackb(bystander.recv(), raw=False), "before", 1)
        self.assertTrue(self.sock.poll(REPLY_TIMEOUT_MS), "no reply to the nested frame")
        self.assert_error(msgpack.unpackb(self.sock.recv(), raw=False), "too_large", ABSENT, "deeper than")
        for sock, batch in [(bystander, "after-1"), (self.sock, "after-2"), (self.socket(), "after-3")]:
            self.assert_ack(self.send([self.reading()], batch, sock), batch, 1)


class LimitsTest(NodeTest):
    node_args = ("--ingest.max-message-bytes", "4096", "--ingest.max-batch-readings", "10")

    def padded(self, size, batch="pad"):
        """A valid one-reading request of exactly `size` bytes (an ignored 'pad' key)."""
        req = self.request([self.reading()], batch, pad="")
        req["pad"] = "p" * (size - len(pack(req)) - 2)  # str16 header: 3 bytes instead of 1
        frame = pack(req)
        self.assertEqual(len(frame), size)
        return frame

    def test_frame_over_max_message_bytes_is_too_large(self):
        self.assert_ack(self.exchange(self.padded(4096, "at-limit")), "at-limit", 1)
        reply = self.exchange(self.padded(4097, "over"))
        self.assert_error(reply, "too_large", ABSENT, "request frame is larger than 4096 bytes")
        self.assert_error(self.exchange(b"\x00" * 16384), "too_large", ABSENT)  # 4x: still answered

    def test_frame_over_four_times_the_limit_drops_the_connection(self):
        # libzmq closes the connection on a frame over 4 x max-message-bytes: no reply, and
        # the client sees a disconnect. The DEALER reconnects by itself; a batch queued behind
        # the big frame may be lost with the connection, and the client's resend (same batch
        # id) recovers it. Had the node answered the big frame, send_batch would raise.
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        self.sockets.append(sock)
        events = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.sockets.append(events)
        sock.connect(self.node.endpoint)
        self.assertEqual(self.next_event(events), zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.send(b"\x00" * (4 * 4096 + 1))
        self.assertEqual(self.next_event(events), zmq.EVENT_DISCONNECTED)
        ack = ingest_client.send_batch(sock, "after-drop", [self.reading()], timeout_ms=500, attempts=20)
        self.assert_ack(ack, "after-drop", 1)

    def next_event(self, monitor):
        self.assertTrue(monitor.poll(REPLY_TIMEOUT_MS), "no socket event in time")
        return zmq.utils.monitor.recv_monitor_message(monitor)["event"]

    def test_too_many_readings_is_too_large(self):
        ten = [self.reading() for _ in range(10)]
        self.assert_ack(self.send(ten, "ten"), "ten", 10)
        reply = self.send(ten + [self.reading()], "eleven")
        self.assert_error(reply, "too_large", "eleven", "request has 11 readings; at most 10 are allowed")
        # Further over, the readings array trips the decoder's array limit (max + 1) before the
        # request is read, so the reply may come without the batch id.
        reply = self.send([self.reading()] * 50, 12)
        self.assert_error(reply, "too_large", ANY, "at most 10 readings")


class LifecycleTest(NodeTest):
    def restart(self, how=signal.SIGTERM):
        if how == signal.SIGTERM:
            self.assertEqual(self.node.stop(), 0, self.node.log())
        else:
            self.node.proc.send_signal(how)
            self.assertEqual(self.node.proc.wait(STOP_TIMEOUT_S), -how)
            self.node.kill()
        self.node = self.start_node()
        self.sock = self.socket()

    def test_readings_survive_a_restart(self):
        readings = [self.reading(), self.reading(metric="heart_rate", value=60.0), self.reading(device="bp-1")]
        self.assert_ack(self.send(readings, "r-1"), "r-1", 3)
        self.restart()
        self.assert_ack(self.send(readings, "r-1"), "r-1", 0, 3)
        self.assert_ack(self.send(readings + [self.reading()], "r-2"), "r-2", 1, 3)

    def test_acked_readings_survive_sigkill(self):
        # An ack is sent only after the write-ahead log holds the readings.
        readings = [self.reading() for _ in range(5)]
        self.assert_ack(self.send(readings, "k-1"), "k-1", 5)
        self.restart(signal.SIGKILL)
        self.assert_ack(self.send(readings, "k-1"), "k-1", 0, 5)

    def test_second_node_on_same_data_dir_exits_3(self):
        second = Alertd(self.data_dir, log_path=os.path.join(self.tmp, "second.log"))
        run = subprocess.run(second.command(), capture_output=True, text=True, timeout=STOP_TIMEOUT_S)
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertNotIn("alertd ready", run.stdout)
        self.assertRegex(run.stderr, r"data directory .* is in use")
        self.assert_ack(self.send([self.reading()], "still-here"), "still-here", 1)


def main():
    global ALERTD
    if len(sys.argv) > 1 and os.path.isfile(sys.argv[1]):
        ALERTD = sys.argv.pop(1)
    if not ALERTD or not os.access(ALERTD, os.X_OK):
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/alertd [unittest args] (or set ALERT_ALERTD); got {ALERTD!r}")
    ALERTD = os.path.abspath(ALERTD)
    unittest.main()


if __name__ == "__main__":
    main()
