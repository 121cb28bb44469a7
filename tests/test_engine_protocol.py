"""The wire protocol without a server: framing, validation, limits, and that the modules a
Blender add-on imports need no torch."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from engine import protocol as P
from engine.security import EndpointError, check_bind, is_loopback
from tests.conftest import ROOT


def request(op, payloads=(), **fields):
    return P.encode({"protocol": P.PROTOCOL_VERSION, "op": op, "id": "r1", **fields}, payloads)


def error_of(parts, limits=P.Limits()):
    with pytest.raises(P.ProtocolError) as info:
        P.decode_request(parts, limits)
    return info.value


def test_arrays_round_trip_without_copies():
    images = [np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8),
              np.random.default_rng(1).random((4, 3, 3), dtype=np.float32)]
    parts = request("stylize", images, preset="tiny", dtype="float32")
    assert parts[1] is images[0]  # C-contiguous arrays go out as their own buffers
    req = P.decode_request(parts)
    assert req.op == "stylize" and req.id == "r1"
    assert req.fields == {"protocol": 2, "op": "stylize", "id": "r1", "preset": "tiny", "dtype": "float32",
                          "precision": "auto", "events": False}
    for sent, got in zip(images, req.payloads):
        assert got.dtype == sent.dtype and np.array_equal(got, sent)
    assert np.shares_memory(req.payloads[0], images[0])


def test_defaults_and_nested_objects():
    req = P.decode_request(request("synthesize", preset="tiny", width=64, height=32,
                                   noise={"kind": "perlin", "scale": 16}, period={"width": 32, "height": 32}))
    f = req.fields
    assert (f["seed"], f["tileable"], f["dtype"], f["precision"]) == (0, True, "uint8", "auto")
    assert f["noise"] == {"kind": "perlin", "scale": 16} and f["period"] == {"width": 32, "height": 32}


def test_defaults_are_not_shared_between_requests():
    a = P.decode_request(request("synthesize", preset="tiny", width=8, height=8))
    a.fields["noise"]["scale"] = 3.0
    b = P.decode_request(request("synthesize", preset="tiny", width=8, height=8))
    assert b.fields["noise"] == {}


@pytest.mark.parametrize("header, code, words", [
    (b"\xff{}", P.BAD_JSON, "not UTF-8"),
    (b"{", P.BAD_JSON, "not valid JSON"),
    (b"[1, 2]", P.BAD_JSON, "must be a JSON object"),
    (b'{"protocol": 2, "op": "hello", "op": "hello"}', P.BAD_JSON, "repeats the key 'op'"),
    (b'{"protocol": 2, "op": "hello", "id": NaN}', P.BAD_JSON, "NaN"),
    (b"[" * 5000 + b"]" * 5000, P.BAD_JSON, ""),
    (b'{"op": "hello"}', P.MISSING_FIELD, "'protocol' is required"),
    (b'{"protocol": 3, "op": "hello"}', P.PROTOCOL_MISMATCH, "speaks protocol 2"),
    # a client from before PBR maps is told what to update, in words
    (b'{"protocol": 1, "op": "synthesize", "preset": "a", "width": 8, "height": 8}', P.PROTOCOL_MISMATCH,
     "this engine speaks protocol 2, the client sent protocol 1: update the older side"),
    (b'{"protocol": "1", "op": "hello"}', P.BAD_FIELD, "must be an integer"),
    (b'{"protocol": 2, "op": "pickle"}', P.UNKNOWN_OP, "known: hello, presets"),
    (b'{"protocol": 2, "op": "hello", "debug": true}', P.UNKNOWN_FIELD, "'debug'"),
    (b'{"protocol": 2, "op": "synthesize", "width": 8, "height": 8}', P.MISSING_FIELD, "'preset'"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "../etc", "width": 8, "height": 8}', P.BAD_FIELD, "preset"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": true, "height": 8}', P.BAD_FIELD, "integer"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 8.5, "height": 8}', P.BAD_FIELD, "integer"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 4, "height": 8}', P.BAD_FIELD, "8..16384"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 8, "height": 8, "noise": {"hue": 1}}',
     P.UNKNOWN_FIELD, "'noise.hue'"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 8, "height": 8, "noise": {"scale": "big"}}',
     P.BAD_FIELD, "'noise.scale'"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 8, "height": 8, "dtype": "float64"}',
     P.BAD_FIELD, "uint8, float32"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 64, "height": 64, "tileable": false, '
     b'"period": {"width": 32, "height": 32}}', P.BAD_FIELD, "tileable"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 64, "height": 64, '
     b'"period": {"width": 30, "height": 32}}', P.BAD_FIELD, "multiple of 8"),
    (b'{"protocol": 2, "op": "synthesize", "preset": "a", "width": 16300, "height": 64, "tileable": false}',
     P.BAD_FIELD, "limited to 16256"),
    (b'{"protocol": 2, "op": "cancel"}', P.MISSING_FIELD, "'job'"),
    (b'{"protocol": 2, "op": "status", "job": "a b"}', P.BAD_FIELD, "'job'"),
])
def test_bad_headers_are_specific_errors(header, code, words):
    err = error_of([header])
    assert err.code == code and words in err.message, err.message


def test_an_error_keeps_a_valid_request_id():
    err = error_of([b'{"protocol": 2, "op": "hello", "id": "abc", "x": 1}'])
    assert err.request_id == "abc"
    assert P.error_header(err, "hello")["id"] == "abc"
    assert error_of([b'{"protocol": 2, "op": "hello", "id": "no spaces", "x": 1}']).request_id is None


def test_frames_must_match_their_descriptors():
    good = request("stylize", [np.zeros((4, 4, 3), np.uint8)], preset="tiny")
    header = json.loads(good[0])
    assert "carries 47 bytes" in error_of([good[0], good[1].tobytes()[:-1]]).message  # truncated
    assert "declares 1 data frame(s) but the message carries 2" in error_of(good + [b"x"]).message  # extra
    assert "carries 0" in error_of(good[:1]).message  # missing
    for descriptor, words in [({"kind": "array", "dtype": "float64", "shape": [4, 4, 3]}, "dtype"),
                              ({"kind": "array", "dtype": "uint8", "shape": [4, 4, 4]}, "[height, width, 3]"),
                              ({"kind": "array", "dtype": "uint8", "shape": [4, 4]}, "[height, width, 3]"),
                              ({"kind": "array", "dtype": "uint8", "shape": [4, 4, 3], "x": 1}, "exactly the keys"),
                              ({"kind": "pickle"}, "kind"), ("4x4", "must be an object")]:
        header["frames"] = [descriptor]
        err = error_of([json.dumps(header).encode(), good[1]])
        assert err.code == P.BAD_FRAME and words in err.message, err.message


def test_huge_declared_shapes_are_refused_before_reading_frames():
    header = {"protocol": 2, "op": "stylize", "preset": "tiny",
              "frames": [{"kind": "array", "dtype": "float32", "shape": [16384, 16384, 3]}]}
    err = error_of([json.dumps(header).encode(), b"\0" * 12])
    assert err.code == P.TOO_LARGE and "max_message_bytes" in err.message
    header["frames"][0]["shape"] = [10 ** 12, 1, 3]
    assert error_of([json.dumps(header).encode(), b"\0" * 12]).code == P.TOO_LARGE


def test_pixel_and_reply_size_limits():
    small = P.Limits(max_pixels=64 * 64, max_message_bytes=64 * 64 * 3)
    assert P.decode_request(request("synthesize", preset="a", width=64, height=64), small)
    err = error_of(request("synthesize", preset="a", width=64, height=72), small)
    assert err.code == P.TOO_LARGE and "max_pixels" in err.message
    err = error_of(request("synthesize", preset="a", width=64, height=64, dtype="float32"), small)
    assert err.code == P.TOO_LARGE and "ask for uint8" in err.message
    two = [np.zeros((64, 40, 3), np.uint8), np.zeros((64, 40, 3), np.uint8)]
    assert error_of(request("stylize", two, preset="a"), small).code == P.TOO_LARGE


def test_frame_kinds_per_op():
    png = P.EncodedImage("png", b"\x89PNG\r\n\x1a\n....")
    assert "must be an array" in error_of(request("stylize", [png], preset="a")).message
    assert "takes 1 data frame(s), got 0" in error_of(request("train", name="a")).message
    assert "takes 0 data frame(s)" in error_of(request("hello", [np.zeros((1, 1, 3), np.uint8)])).message
    req = P.decode_request(request("train", [png], name="a", steps=10))
    assert req.payloads[0].format == "png" and bytes(req.payloads[0].data) == png.data
    assert "at most one" in error_of(request("train", [png], name="a", resume=True, fresh=True)).message
    assert P.decode_request(request("train", [png], name="a", minutes=2.5)).fields["minutes"] == 2.5
    err = error_of(request("train", [png], name="a", steps=10, minutes=1))
    assert err.code == P.BAD_FIELD and "at most one" in err.message


def test_replies_are_checked_too():
    reply = P.decode_reply(P.encode(P.reply_header("synthesize", "r1", width=2),
                                    [np.ones((2, 2, 3), np.float32)]))
    assert reply.id == "r1" and reply.payloads[0].dtype == np.float32 and not reply.is_event
    with pytest.raises(P.ProtocolError, match="'ok'"):
        P.decode_reply([b'{"protocol": 2}'])
    with pytest.raises(P.ProtocolError, match="error.code"):
        P.decode_reply([b'{"protocol": 2, "ok": false}'])
    assert P.decode_reply(P.encode(P.event_header("r1", "j", "running", {"done": 1}))).is_event


def test_schema_mirrors_the_engine_dataclasses():
    """The protocol cannot import torch-side modules; these copies must not drift."""
    from engine.noise import NoiseParams
    from engine.presets import NAME_RE
    from engine.synth import MAX_SIDE, TILE_HALO
    from training.texture import AUGMENTS, TrainConfig

    assert set(P.NOISE_FIELDS) == {f.name for f in dataclasses.fields(NoiseParams)}
    assert set(P.TRAIN_CONFIG_FIELDS) <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert P.MAX_SIDE == MAX_SIDE and P.NAME_RE.pattern == NAME_RE.pattern and P.UNTILEABLE_MARGIN == TILE_HALO
    assert P.AUGMENTS == AUGMENTS
    for name, spec in P.TRAIN_CONFIG_FIELDS.items():  # the defaults are inside the wire ranges
        default = getattr(TrainConfig(), name)
        assert default is None or P.check_field(name, spec, default) == default


def test_client_side_modules_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import engine.protocol, engine.client, engine.security\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5757", "tcp://127.0.0.2:1", "tcp://localhost:5757",
                                      "tcp://[::1]:5757", "tcp://127.0.0.1:*", "ipc:///tmp/x.sock"])
def test_loopback_binds_are_allowed(endpoint):
    assert is_loopback(endpoint)
    check_bind(endpoint, curve=False)


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5757", "tcp://*:5757", "tcp://192.168.1.2:5757",
                                      "tcp://eth0:5757", "tcp://[::]:5757"])
def test_other_interfaces_need_curve_keys(endpoint):
    with pytest.raises(EndpointError, match="refusing to bind .*--curve-secret"):
        check_bind(endpoint, curve=False)
    check_bind(endpoint, curve=True)


@pytest.mark.parametrize("endpoint", ["udp://127.0.0.1:5", "127.0.0.1:5757", "tcp://127.0.0.1", "inproc://x"])
def test_unsupported_addresses(endpoint):
    with pytest.raises(EndpointError, match="cannot bind"):
        check_bind(endpoint, curve=True)


def test_maps_fields_and_frames():
    req = P.decode_request(request("synthesize", preset="a", width=8, height=8, maps=["normal", "height"],
                                   map_settings={"height_scale": -1, "normal_convention": "directx"}))
    assert req.fields["maps"] == ["normal", "height"] and req.fields["map_settings"]["height_scale"] == -1
    assert P.decode_request(request("synthesize", preset="a", width=8, height=8)).fields["maps"] == []
    for maps, settings, words in [("all", {}, "must be a JSON list"), (["height", "height"], {}, "lists an item twice"),
                                  (["albedo"], {}, "maps[0]' must be one of"), ([1], {}, "maps[0]' must be a string"),
                                  (["ao"], {"ao_radius": 64}, "ao_radius' must be in"),
                                  (["ao"], {"depth": 1}, "unknown field 'map_settings.depth'"),
                                  (["ao"], {"roughness_min": 0.9, "roughness_max": 0.1}, "above roughness_max")]:
        err = error_of(request("synthesize", preset="a", width=8, height=8, maps=maps, map_settings=settings))
        assert err.code in (P.BAD_FIELD, P.UNKNOWN_FIELD) and words in err.message, err.message
    # the reply size counts the maps: uint8 RGB (3 B) + height (2) + normal (3) + roughness + ao (1 + 1)
    limits = P.Limits(max_message_bytes=64 * 64 * 10 - 1)
    assert P.decode_request(request("synthesize", preset="a", width=64, height=64, maps=["height"]), limits)
    err = error_of(request("synthesize", preset="a", width=64, height=64, maps=list(P.MAP_NAMES)), limits)
    assert err.code == P.TOO_LARGE and "fewer maps" in err.message


def test_map_frames_travel_in_replies_not_requests():
    height = np.arange(12, dtype=np.uint16).reshape(3, 4, 1)
    parts = P.encode(P.reply_header("synthesize", "r1", maps=["height"]), [np.zeros((3, 4, 3), np.uint8), height])
    reply = P.decode_reply(parts)
    assert reply.payloads[1].dtype == np.uint16 and np.array_equal(reply.payloads[1], height)
    err = error_of(request("stylize", [np.zeros((4, 4, 1), np.uint8)], preset="tiny"))
    assert err.code == P.BAD_FRAME and "[height, width, 3]" in err.message
    err = error_of(request("stylize", [np.zeros((4, 4, 3), np.uint16)], preset="tiny"))
    assert err.code == P.BAD_FRAME and "uint8 or float32" in err.message


def test_map_setting_fields_mirror_the_engine():
    from engine.maps import MapSettings

    assert set(P.MAP_SETTING_FIELDS) == {f.name for f in dataclasses.fields(MapSettings)}
    with pytest.raises(ValueError, match="ao_radius"):
        MapSettings(ao_radius=P.MAP_SETTING_FIELDS["ao_radius"].hi + 1).validate()
    MapSettings(ao_radius=P.MAP_SETTING_FIELDS["ao_radius"].hi).validate()

