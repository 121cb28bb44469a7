"""Thousands of malformed and hostile messages at a live engine: each gets an error reply
with the right code, and the engine serves a valid request afterwards.

Messages go through a plain REQ socket (what any third-party client would use), so the
test also holds the server to strict one-reply-per-request behaviour: a missing reply
stalls the socket and fails the test.
"""
import io
import json

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine import protocol as P
from engine.client import EngineClient
from tests.engine_proc import EngineProcess, engine_home

MAX_MESSAGE_BYTES = 200_000
EXAMPLES = 2000


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


# One valid request per op, small and harmless: a mutation that failed to break one would
# at worst synthesize 16x16 pixels (and the test would fail on its ok reply).
BASES = {
    "hello": ({}, []), "presets": ({}, []), "status": ({}, []), "shutdown": ({}, []),
    "cancel": ({"job": "job-none"}, []),
    "synthesize": ({"preset": "tiny", "width": 16, "height": 16, "noise": {"scale": 8.0}}, []),
    "stylize": ({"preset": "tiny"}, [np.zeros((8, 8, 3), np.uint8)]),
    "train": ({"name": "fuzz", "steps": 1}, [P.EncodedImage("png", _png())]),
}
ANY_ERROR = set(P.ERROR_CODES)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def fits(kind: str, value) -> bool:
    if kind == "int":
        return type(value) is int
    if kind == "number":
        return type(value) in (int, float)
    return type(value) is {"bool": bool, "str": str, "object": dict, "list": list}[kind]


def schema(op: str) -> dict:
    return {**P.ENVELOPE_FIELDS, **P.SPECS[op].fields}


class Msg:
    """A hostile message: its frames, the error codes it may get, the id to echo (None: no
    valid id to echo; ... : not checked)."""

    def __init__(self, header, payloads, codes, expect_id=...):
        self.header, self.payloads, self.codes, self.expect_id = header, payloads, codes, expect_id

    def frames(self) -> list[bytes]:
        if isinstance(self.header, bytes):
            return [self.header, *self.payloads]
        if all(isinstance(p, bytes) for p in self.payloads):  # the header's own (hostile) descriptors
            return [json.dumps(self.header).encode(), *self.payloads]
        return [bytes(memoryview(p).cast("B")) for p in P.encode(self.header, self.payloads)]


@st.composite
def messages(draw) -> Msg:
    op = draw(st.sampled_from(sorted(BASES)))
    fields, payloads = BASES[op]
    rid = f"fz-{draw(st.integers(0, 10 ** 6))}"
    header = {"protocol": P.PROTOCOL_VERSION, "op": op, "id": rid, **fields}
    kind = draw(st.sampled_from(["raw", "not_object", "drop", "unknown", "wrong_type", "out_of_range",
                                 "version", "op", "frames", "encoding", "noise"]))
    specs = schema(op)
    if kind == "raw":
        return Msg(draw(st.binary(max_size=120)), draw(st.lists(st.binary(max_size=20), max_size=2)), ANY_ERROR)
    if kind == "not_object":
        return Msg(draw(json_values.filter(lambda v: not isinstance(v, dict))), [], {P.BAD_JSON}, None)
    if kind == "drop":
        name = draw(st.sampled_from(sorted(n for n, f in specs.items() if f.required)))
        del header[name]
        return Msg(header, payloads, {P.MISSING_FIELD}, rid)
    if kind == "unknown":
        name = draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in specs and n != "frames"))
        header[name] = draw(json_values)
        return Msg(header, payloads, {P.UNKNOWN_FIELD}, rid)
    if kind == "wrong_type":
        name = draw(st.sampled_from(sorted(specs)))
        header[name] = draw(json_values.filter(lambda v: not fits(specs[name].type, v)))
        # null reads as absent for the two fields checked before the schema
        codes = {"op": {P.UNKNOWN_OP, P.MISSING_FIELD}, "protocol": {P.BAD_FIELD, P.MISSING_FIELD}}
        return Msg(header, payloads, codes.get(name, {P.BAD_FIELD}), None if name == "id" else rid)
    if kind == "out_of_range":
        bounded = sorted(n for n, f in specs.items() if f.lo is not None or f.choices or f.pattern)
        if not bounded:
            header["protocol"] = draw(st.integers().filter(lambda v: v != P.PROTOCOL_VERSION))
            return Msg(header, payloads, {P.PROTOCOL_MISMATCH}, rid)
        name = draw(st.sampled_from(bounded))
        f = specs[name]
        if f.lo is not None:
            value = draw(st.integers(max_value=int(f.lo) - 1) | st.integers(min_value=int(f.hi) + 1))
        else:
            value = draw(st.text(max_size=80).filter(
                lambda v: (f.choices and v not in f.choices) or (f.pattern and not f.pattern.match(v))))
        header[name] = value
        return Msg(header, payloads, {P.BAD_FIELD}, None if name == "id" else rid)
    if kind == "version":
        header["protocol"] = draw(st.integers().filter(lambda v: v != P.PROTOCOL_VERSION))
        return Msg(header, payloads, {P.PROTOCOL_MISMATCH}, rid)
    if kind == "op":
        header["op"] = draw(st.text(max_size=20).filter(lambda v: v not in P.OPS))
        return Msg(header, payloads, {P.UNKNOWN_OP}, rid)
    if kind == "frames":
        return draw(frame_attacks(op, header, payloads, rid))
    if kind == "encoding":
        text = json.dumps(header)
        broken = draw(st.sampled_from([
            b"\xff\xfe" + text.encode(),                                      # not UTF-8
            text.replace('"op"', '"op": "hello", "op"', 1).encode(),          # a repeated key
            text.replace('"protocol": 2', '"protocol": NaN', 1).encode(),     # not JSON
            text[:-1].encode(),                                               # truncated
            b"[" * 3000 + b"]" * 3000,                                        # deep nesting
        ]))
        return Msg(broken, [], {P.BAD_JSON}, None)
    # "noise": valid types, values only NoiseParams.validate refuses (checked by the engine).
    bad = draw(st.sampled_from([{"scale": 1.0}, {"scale": 1e9}, {"beta": -1.0}, {"octaves": 99},
                                {"contrast": 0.0}, {"kind": "brown", "beta": 7}]))
    base = {**BASES["synthesize"][0], "protocol": P.PROTOCOL_VERSION, "op": "synthesize", "id": rid}
    return Msg({**base, "noise": bad}, [], {P.BAD_FIELD}, rid)


@st.composite
def frame_attacks(draw, op, header, payloads, rid) -> Msg:
    frames = P.encode(header, payloads)
    head = json.loads(frames[0])
    data = [bytes(memoryview(p).cast("B")) for p in frames[1:]]
    attack = draw(st.sampled_from(["extra", "truncate", "huge", "dtype", "garbage", "missing", "swap"]))
    if attack == "extra" or not data:
        data.append(draw(st.binary(min_size=1, max_size=64)))
        return Msg(head, data, {P.BAD_FRAME}, rid)
    d = head["frames"][0]
    if attack == "truncate":
        data[0] = data[0][:draw(st.integers(0, len(data[0]) - 1))]
        return Msg(head, data, {P.BAD_FRAME}, rid)
    if attack == "huge":
        side = st.integers(1, 10 ** 12)
        h, w = draw(st.tuples(side, side).filter(lambda s: s[0] * s[1] * 3 * 4 > MAX_MESSAGE_BYTES))
        head["frames"][0] = {"kind": "array", "dtype": draw(st.sampled_from(sorted(P.DTYPES))), "shape": [h, w, 3]}
        return Msg(head, data, {P.TOO_LARGE, P.BAD_FRAME}, rid)
    if attack == "dtype":
        head["frames"][0] = {"kind": "array", "shape": [8, 8, 3],
                             "dtype": draw(st.sampled_from(["float64", "<f8", "int16", "object", "O", "V8"])
                                           | st.text(max_size=8).filter(lambda t: t not in P.DTYPES))}
        return Msg(head, data, {P.BAD_FRAME}, rid)
    if attack == "garbage":
        if draw(st.booleans()):
            head["frames"] = draw(json_values)
        else:
            head["frames"][0] = draw(json_values)
        return Msg(head, data, {P.BAD_FRAME}, rid)
    if attack == "missing":
        return Msg(head, [], {P.BAD_FRAME}, rid)
    # "swap": an image where a file belongs, or the reverse, described truthfully.
    other = P.EncodedImage("png", _png()) if d["kind"] == "array" else np.zeros((8, 8, 3), np.uint8)
    return Msg({k: v for k, v in head.items() if k != "frames"}, [other], {P.BAD_FRAME}, rid)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = EngineProcess(engine_home(tmp_path_factory.mktemp("home")), "tcp://127.0.0.1:*",
                         "--max-message-bytes", str(MAX_MESSAGE_BYTES), "--max-pixels", "65536").start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def req_socket(engine):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger, sock.rcvtimeo, sock.sndtimeo = 0, 15000, 15000
    sock.connect(engine.endpoint)
    yield sock
    sock.close()


def test_hostile_messages_each_get_an_error_and_service_goes_on(engine, req_socket):
    sent = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(msg=messages())
    def attack(msg):
        frames = msg.frames()
        req_socket.send_multipart(frames)
        try:
            reply = P.decode_reply(req_socket.recv_multipart())
        except zmq.Again:
            pytest.fail(f"no reply within 15 s to {frames[:2]!r}:\n{engine.log()[-2000:]}")
        sent.append(msg)
        h = reply.header
        assert h["ok"] is False, (frames[:2], h)
        assert h["error"]["code"] in msg.codes, (frames[:2], h)
        assert h["error"]["message"] and "Traceback" not in h["error"]["message"]
        if msg.expect_id is not ...:
            assert h["id"] == msg.expect_id, (frames[:2], h)

    attack()
    assert len(sent) >= EXAMPLES
    with EngineClient(engine.endpoint) as client:
        assert client.hello()["limits"]["max_message_bytes"] == MAX_MESSAGE_BYTES
        assert client.synthesize("tiny", 32, 32).shape == (32, 32, 3)
        assert not [j for j in client.status() if j["kind"] == "train"]
    assert "Traceback" not in engine.log()


def test_envelope_errors_on_a_raw_dealer(engine):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger, sock.rcvtimeo = 0, 15000
    sock.connect(engine.endpoint)
    try:
        sock.send_multipart([b'{"protocol": 2, "op": "hello"}'])  # no empty delimiter
        delimiter, header = sock.recv_multipart()
        err = json.loads(header)["error"]
        assert delimiter == b"" and err["code"] == P.BAD_MESSAGE and "delimiter" in err["message"]
        sock.send_multipart([b""])  # a delimiter and nothing else
        assert json.loads(sock.recv_multipart()[1])["error"]["code"] == P.BAD_MESSAGE
    finally:
        sock.close()


def test_a_frame_over_the_message_limit_drops_only_that_connection(engine):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger, sock.rcvtimeo = 0, 2000
    sock.connect(engine.endpoint)
    try:
        header = {"protocol": 2, "op": "stylize", "preset": "tiny",
                  "frames": [{"kind": "array", "dtype": "uint8", "shape": [200, 400, 3]}]}
        sock.send_multipart([b"", json.dumps(header).encode(), bytes(240_000)])  # 240 kB > 200 kB
        with pytest.raises(zmq.Again):
            sock.recv_multipart()  # libzmq cut the connection before the engine saw a byte
    finally:
        sock.close()
    with EngineClient(engine.endpoint) as client:
        assert client.hello()["ok"]
