#!/usr/bin/python3
"""Example client for the alertd ingest protocol v1 (see docs/protocol.md).

Sends telemetry readings to a node and waits for the node's acknowledgement. Needs pyzmq
and msgpack (Debian: apt-get install python3-zmq python3-msgpack).

As a script, it sends a small demo batch:

    /usr/bin/python3 tools/examples/ingest_client.py --endpoint tcp://127.0.0.1:7600

As a module:

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect("tcp://127.0.0.1:7600")
    ack = send_batch(sock, "batch-1", readings, timeout_ms=5000, attempts=5)
"""
import argparse
import sys
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1


class IngestError(Exception):
    """The node refused the whole request (an error reply, e.g. malformed or too_large)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def encode_request(batch_id, readings):
    """One request frame. `value` should be a float; Python floats pack as float64."""
    request = {"v": PROTOCOL_VERSION, "type": "telemetry", "batch": batch_id, "readings": readings}
    return msgpack.packb(request, use_bin_type=True)


def send_batch(socket, batch_id, readings, timeout_ms=5000, attempts=5):
    """Sends `readings` on a connected DEALER socket and returns the ack (a dict).

    Raises IngestError for an error reply, TimeoutError when no reply came after
    `attempts` sends of `timeout_ms` each. Use a DEALER: a REQ socket cannot send again
    before it has received a reply.
    """
    frame = encode_request(batch_id, readings)
    busy = None  # the last overloaded / unavailable reply, if any
    for _ in range(attempts):
        # Resending the SAME batch is safe: the node identifies a reading by (device, seq)
        # and journals it once. If our first send was stored but its ack got lost, the
        # resend comes back with those readings counted as `duplicates`, never doubled.
        socket.send(frame)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not socket.poll(left_ms):
                break  # no reply in time: send again
            reply = msgpack.unpackb(socket.recv(), raw=False)
            batch = reply.get("batch")
            if batch is not None and batch != batch_id:
                continue  # a late reply to an earlier batch: not ours
            if reply.get("type") == "ack":
                return reply  # possibly the late ack of an earlier send: just as good
            # overloaded and unavailable mean "retry later" (same batch id); the other codes
            # mean the request itself is wrong, and sending it again would not help.
            error = IngestError(reply.get("code"), reply.get("message"))
            if error.code not in ("overloaded", "unavailable"):
                raise error
            busy = error
            time.sleep(0.2)  # give the node time before the resend
            break
    if busy is not None:
        raise busy
    raise TimeoutError(f"no ack for batch {batch_id!r} after {attempts} attempts")


def print_ack(ack):
    print(f"ack batch={ack['batch']!r} accepted={ack['accepted']} duplicates={ack['duplicates']} "
          f"rejected={len(ack['rejected'])}")
    for r in ack["rejected"]:
        print(f"  rejected reading #{r['index']}: {r['code']}: {r['message']}")


def demo_readings(now_ms):
    # seq must grow per device and survive device restarts; the demo derives it from the
    # clock so that running it again sends new readings rather than duplicates.
    seq = now_ms * 10
    common = {"device": "monitor-bed-12", "patient": "P-100234", "ts": now_ms - 1000}
    return [
        dict(common, metric="heart_rate", value=72.0, seq=seq + 1),
        dict(common, metric="spo2", value=96.0, unit="%", seq=seq + 2),
        dict(common, metric="temperature", value=98.6, unit="[degF]", seq=seq + 3),
        dict(common, metric="respiration", value=16.0, seq=seq + 4),  # refused: unknown_metric
    ]


def key_field(path, name):
    """The `name = "Z85"` line of a key file written by `alertctl keygen`."""
    with open(path, encoding="ascii") as f:
        for line in f:
            field, _, value = line.partition("=")
            if field.strip() == name:
                return value.strip().strip('"').encode("ascii")
    raise ValueError(f"{path} has no {name} line")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Send a demo telemetry batch to alertd.")
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:7600", help="the node's ingest endpoint")
    parser.add_argument("--timeout-ms", type=int, default=2000, help="wait for a reply before resending")
    parser.add_argument("--attempts", type=int, default=3, help="sends of the batch in all")
    parser.add_argument("--key", help="this integrator's CURVE key pair (alertctl keygen)")
    parser.add_argument("--server-key", help="the node's public key (its .pub file)")
    args = parser.parse_args(argv)
    if bool(args.key) != bool(args.server_key):
        parser.error("CURVE needs both --key and --server-key")

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)  # do not hang on exit when the node is down
    if args.key:  # CURVE, as every node runs unless it is a plaintext test bench
        socket.curve_publickey = key_field(args.key, "public-key")
        socket.curve_secretkey = key_field(args.key, "secret-key")
        socket.curve_serverkey = key_field(args.server_key, "public-key")
    socket.connect(args.endpoint)
    now_ms = int(time.time() * 1000)
    try:
        ack = send_batch(socket, f"demo-{now_ms}", demo_readings(now_ms), args.timeout_ms, args.attempts)
    except (IngestError, TimeoutError) as e:
        print(f"ingest_client: {e}", file=sys.stderr)
        return 1
    finally:
        socket.close()
    print_ack(ack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
