#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpus of each harness into
corpus/<harness>/ and the dictionary dealflow.dict. Run it from anywhere;
it replaces the generated files. Needs python3 only (its own msgpack
encoder, so that the bytes are exactly what is written here)."""
import hashlib
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1700000000000
DAY = 86400000


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**8:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v < 2**16:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        if -(2**7) <= v:
            return b"\xd0" + struct.pack(">b", v)
        if -(2**15) <= v:
            return b"\xd1" + struct.pack(">h", v)
        if -(2**31) <= v:
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
    if isinstance(v, bytes):
        n = len(v)
        if n < 32:
            return bytes([0xA0 | n]) + v
        if n < 256:
            return b"\xd9" + bytes([n]) + v
        return b"\xda" + struct.pack(">H", n) + v
    if isinstance(v, bytearray):  # bin
        return b"\xc4" + bytes([len(v)]) + bytes(v)
    if isinstance(v, list):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, (dict, Pairs)):
        items = v.items()
        n = len(items)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(x) for k, x in items)
    raise TypeError(v)


class Raw:
    """Bytes written as they are: malformed msgpack on purpose."""

    def __init__(self, data):
        self.data = data


class Pairs:
    """A map whose keys may repeat, in this order."""

    def __init__(self, *pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs


STAGES = [
    {"name": "new", "probability": 10, "rot_days": 3},
    {"name": "demo", "probability": 50, "rot_days": None},
    {"name": "closed", "probability": 100, "outcome": "won"},
    {"name": "dead", "probability": 0, "outcome": "lost", "rot_days": 1},
]

EVENTS = {
    "stage": {"id": "e1", "type": "stage", "deal": "d1", "stage": "lead", "at": T0},
    "stage_full": {"id": "e2", "type": "stage", "deal": "d1", "pipeline": "sales",
                   "stage": "demo", "reason": "asked", "amount": 1200, "owner": "ann",
                   "expect": 3, "at": T0 + DAY},
    "stage_float": {"id": "e3", "type": "stage", "deal": "d2", "stage": "won",
                    "amount": 99.5, "owner": None},
    "activity": {"id": "e4", "type": "activity", "deal": "d1", "kind": "call",
                 "actor": "bob", "note": "left a message", "at": T0 + 2 * DAY},
    "update": {"id": "e5", "type": "update", "deal": "d1", "amount": None, "owner": "cy",
               "name": "Acme \u00e9", "product": "widgets", "close_date": T0 + 30 * DAY},
    "update_nil": {"id": "e6", "type": "update", "deal": "d3", "name": None, "product": None,
                   "close_date": None, "expect": 0},
    "pipeline": {"id": "p1", "type": "pipeline", "pipeline": "sales", "stages": STAGES},
    "unknown_key": {"id": "e7", "type": "activity", "deal": "d1", "kind": "email",
                    "extra": [1, {"x": None}], "at": -5},
    "dup_key": Pairs(("id", "e8"), ("type", "stage"), ("deal", "d"), ("stage", "a"),
                     ("x", 1), ("x", 2)),
    "many_keys": Pairs(("id", "e9"), ("type", "activity"), ("deal", "d"), ("kind", "k"),
                       *[("k%d" % i, i) for i in range(20)], ("k3", 0)),
    "empty_keys": Raw(b"\x82\xa0\xa0\xa0\x7f"),  # two empty keys
    "reserved_seq": {"id": "e10", "type": "stage", "deal": "d", "stage": "a", "seq": 1},
    "bad_utf8": {"id": b"e\xff", "type": "stage", "deal": "d", "stage": "a"},
    "long_id": {"id": "i" * 129, "type": "stage", "deal": "d", "stage": "a"},
    "big_amount": {"id": "e11", "type": "update", "deal": "d", "amount": 2**63 + 5},
    "nan_amount": {"id": "e12", "type": "update", "deal": "d", "amount": float("nan")},
}

RECORDED = {
    "stage": {"id": "e1", "type": "stage", "deal": "d1", "stage": "lead", "seq": 1,
              "recv": T0, "at": T0},
    "pipeline": {"id": "p1", "type": "pipeline", "pipeline": "sales", "stages": STAGES,
                 "seq": 2, "recv": T0, "at": T0 - DAY},
    "update": {"id": "e5", "type": "update", "deal": "d1", "owner": "cy", "seq": 9,
               "recv": T0, "at": -1},
    "no_at": {"id": "e1", "type": "stage", "deal": "d1", "stage": "lead", "seq": 1,
              "recv": T0},
}

REQUESTS = [
    {"op": "ping"},
    {"op": "stats"},
    {"op": "deal", "deal": "deal-a"},
    {"op": "deal", "deal": "deal-a", "as_of": T0 + DAY},
    {"op": "deal", "deal": "deal-a", "as_of": T0 - 5 * DAY, "now": T0},
    {"op": "deal", "deal": "nobody"},
    {"op": "history", "deal": "deal-a", "after": 1, "limit": 2},
    {"op": "list"},
    {"op": "list", "pipeline": "sales", "stage": "new", "limit": 1},
    {"op": "list", "owner": "ann", "status": "open", "stale": False, "idle_days": 2,
     "now": T0 + 10 * DAY},
    {"op": "list", "limit": 1, "cursor": "6465616c2d61"},
    {"op": "list", "status": "won", "stale": True, "now": -(2**63)},
    {"op": "board"},
    {"op": "board", "pipeline": "sales", "now": 2**63 - 1},
    {"op": "metrics", "pipeline": "sales", "owner": "bob", "from": T0, "to": T0 + 9 * DAY},
    {"op": "metrics", "from": 2**63 - 1, "to": -(2**63)},
    {"op": "replay", "after": 0, "limit": 3},
    {"op": "rejected"},
    {"op": "moves", "after": 1},
    {"op": "append", "events": [EVENTS["stage"]]},
    {"op": "nosuchop"},
    {"op": 5},
    [1, 2],
    Raw(b"\x81\xa2op"),
    {"op": "forecast", "pipeline": "sales", "by": "week", "from": T0, "to": T0 + 30 * DAY,
     "now": T0 + 9 * DAY},
    {"op": "forecast", "by": "quarter", "from": -(2**63), "to": 2**63 - 1},
    {"op": "calibration", "pipeline": "sales", "owner": "bob", "from": T0 + DAY // 2},
    {"op": "metrics", "by": "month", "from": T0, "to": T0 + 90 * DAY},
]


def deal_record(format=2):
    """A stored deal (daemon/record.c) with every field set: format 2, its
    integers as 8 bytes, or format 4, as varints of zigzag + 1 and with the
    source, last open stage and reason after the stage times."""
    def name(s):
        s = s.encode()
        return bytes([len(s)]) + s

    def u64(v):
        return struct.pack("<Q", v & (2**64 - 1))

    def varint(v):
        z = (((v << 1) ^ (v >> 63)) + 1) & (2**64 - 1)
        out = b""
        while z >= 0x80:
            out += bytes([(z & 0x7F) | 0x80])
            z >>= 7
        return out + bytes([z])

    num = u64 if format == 2 else varint
    r = bytes([format, 0x3F]) + name("sales") + name("demo") + num(T0) + bytes([0, 50])
    r += num(T0 + DAY) + num(T0 - DAY) + bytes([1]) + num(1200)
    r += name("ann") + name("Acme") + name("widgets") + num(T0 + 30 * DAY)
    r += num(3) + num(7) + num(1) + num(0) + num(2) + num(T0 + DAY) + num(7)
    for i in range(5):
        r += num(T0 + i) + num(i + 1)
    r += bytes([2]) + name("new") + num(DAY) + name("demo") + num(2 * DAY)
    if format >= 3:
        r += bytes([7]) + name("web") + num(-(2**63)) + num(0) + name("new") + name("price")
    return r


def log_record(event, check=8, redacted_from=None):
    """A log record (daemon/eventlog.c): a check of the event's bytes (the
    start of their BLAKE2b-256), then, when redacted, 0xc1 and the digest of
    the bytes first recorded, then the bytes."""
    digest = hashlib.blake2b(event, digest_size=32).digest()
    if redacted_from is None:
        return digest[:check] + event
    first = hashlib.blake2b(redacted_from, digest_size=32).digest()
    return digest[:check] + b"\xc1" + first + event


def minimal_deal_record():
    return bytes([2, 0, 0, 0]) + bytes(8) + bytes([0, 0]) + bytes(16) + bytes([0]) + \
        bytes([0, 0, 0]) + bytes(8 * 8) + bytes(16 * 5) + bytes([0])


def stored_move(status):
    return pack([3, T0, "d1", "sales", "new", "demo", 1200, "ann", status])


def write(harness, files):
    out = os.path.join(HERE, "corpus", harness)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def main():
    events = {"event_" + k: pack(v) for k, v in EVENTS.items()}
    append = {
        "append_all": pack({"op": "append", "events": list(EVENTS.values())[:7]}),
        "append_one": pack({"op": "append", "events": [EVENTS["stage"]]}),
        "append_bad_item": pack({"op": "append", "events": [EVENTS["stage"], 5, "x"]}),
        "array_of_events": pack([EVENTS["activity"], EVENTS["update"]]),
    }
    malformed = {
        "truncated_map": Raw(b"\x85\xa2id"),
        "huge_count": Raw(b"\xdf\xff\xff\xff\xff"),
        "deep": Raw(b"\x91" * 20 + b"\xc0"),
        "trailing": Raw(pack({"a": 1}) + b"\x00"),
        "int_key": Raw(b"\x81\x01\x02"),
        "ext": Raw(b"\xd4\x01\x02"),
        "never_used": Raw(b"\xc1"),
        "str32": Raw(b"\xdb\x00\x00\x00\x03abc"),
        "bin_float32": Raw(pack([bytearray(b"\x01\x02"), Raw(b"\xca\x3f\x80\x00\x00")])),
    }
    malformed = {"malformed_" + k: pack(v) for k, v in malformed.items()}

    write("fuzz_msgpack", {**malformed, **events, **append,
                           **{"request_%02d" % i: pack(r) for i, r in enumerate(REQUESTS)}})
    write("fuzz_event", {**events, **append, **malformed})
    write("fuzz_record", {
        "deal_record": deal_record(),
        "deal_record_minimal": minimal_deal_record(),
        "deal_record_cut": deal_record()[:40],
        "deal_record_varints": deal_record(4),
        "log_short": log_record(pack(RECORDED["stage"])),
        "log_long": log_record(pack(RECORDED["stage"]), check=32),
        "log_redacted": log_record(pack({"id": "e1", "deal": "d1"}),
                                   redacted_from=pack(RECORDED["stage"])),
        "deal_record_float": deal_record().replace(bytes([1]) + struct.pack("<Q", 1200),
                                                   bytes([2]) + struct.pack("<d", 0.5)),
        **{"recorded_" + k: pack(v) for k, v in RECORDED.items()},
        "pipeline": pack([["new", 10, 3, 0], ["won", 100, -1, 1], ["lost", 0, 2, 2]]),
        "pipeline_bad": pack([["new", 101, 3, 0]]),
        "move": stored_move(0),
        "move_won": stored_move(1),
        "move_no_from": pack([0, T0, "d1", "default", None, "lead", None, None, 0]),
        "malformed_empty_keys": pack(Raw(b"\x82\xa0\xa0\xa0\x7f")),
        # packed aggregate sums (daemon/record.c): a count; a C row's sums;
        # the floats; a varint that never ends
        "sums_count": bytes([0x01, 0x02]),
        "sums_current": bytes([0x1f, 0x02]) + bytes([0xd0, 0x0f]) * 2 + bytes([0x80, 0x01]) * 2,
        "sums_floats": bytes([0xc0, 0x03, 0x02]) + struct.pack("<d", 1.5) + struct.pack("<d", 0.5),
        "sums_endless": bytes([0x01]) + bytes([0xff]) * 24,
    })
    write("fuzz_request", {"request_%02d" % i: pack(r) for i, r in enumerate(REQUESTS)})

    words = ["op", "events", "append", "id", "type", "deal", "stage", "activity", "update",
             "pipeline", "stages", "name", "probability", "rot_days", "outcome", "open", "won",
             "lost", "at", "expect", "seq", "recv", "reason", "kind", "actor", "note",
             "amount", "owner", "product", "close_date", "ping", "stats", "history", "list",
             "board", "metrics", "replay", "rejected", "moves", "as_of", "now", "after",
             "limit", "cursor", "status", "stale", "idle_days", "from", "to", "default",
             "forecast", "calibration", "by", "week", "month", "quarter"]
    with open(os.path.join(HERE, "dealflow.dict"), "w") as f:
        f.write("# msgpack strings of the contract's keys and values (make_corpus.py)\n")
        for w in words:
            f.write('"%s"\n' % "".join("\\x%02x" % b for b in pack(w)))
        for raw in [b"\xc0", b"\xc2", b"\xc3", b"\xcf", b"\xd3", b"\xcb", b"\xde", b"\xdf",
                    b"\xdc", b"\xdd", b"\xd9", b"\xda", b"\xdb", b"\xc4"]:
            f.write('"%s"\n' % "".join("\\x%02x" % b for b in raw))


if __name__ == "__main__":
    main()
