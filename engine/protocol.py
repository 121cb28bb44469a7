"""The engine's wire protocol: constants, framing, validation and error codes.

One implementation, shared by the server, the client, the CLI, the tests and the Blender
add-on, so it must stay importable without torch: only the standard library, numpy and
pyzmq. The written spec is docs/protocol.md; this module is its executable form.

A message is a ZeroMQ multipart message: (after the REQ-style empty delimiter) frame 0 is a
UTF-8 JSON object, the header; every further frame is a raw buffer described, in order, by
``header["frames"]``. Nothing is ever pickled, and nothing read from the network is trusted
before it has passed ``decode_request`` / ``decode_reply``: those raise ``ProtocolError``
(never ``AssertionError``) with a code from ``ERROR_CODES`` and a message a user can act on.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

PROTOCOL_VERSION = 2  # docs/protocol.md, section 8: what changed in each version
DEFAULT_PORT = 5757
DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PORT}"

OPS = ("hello", "presets", "synthesize", "stylize", "train", "status", "cancel", "release", "shutdown")
# Arrays travel little-endian whatever the hosts are; only these pixel types exist (uint16:
# the height map of ``maps``).
DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"), "float32": np.dtype("<f4")}
# The pixel types a client may ask the base colour in (``dtype`` of synthesize / stylize).
OUTPUT_DTYPES = ("uint8", "float32")
FILE_FORMATS = ("png", "jpeg")
PRECISIONS = ("auto", "bf16", "fp32")
AUGMENTS = ("flips", "dihedral", "mirror", "none")
NOISE_KINDS = ("brown", "perlin")
# PBR maps that synthesize can add to the base colour, and each one's frame: (dtype, channels).
# Colour spaces: the base colour is sRGB; every map is non-colour data.
MAP_NAMES = ("height", "normal", "roughness", "ao")
MAP_FRAMES = {"height": ("uint16", 1), "normal": ("uint8", 3), "roughness": ("uint8", 1), "ao": ("uint8", 1)}
NORMAL_CONVENTIONS = ("opengl", "directx")
MAX_AO_RADIUS = 31.0  # px: engine.maps keeps its integer box sums exact up to here
JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")

MAX_SIDE = 16384                    # engine.synth.MAX_SIDE (that module needs torch)
UNTILEABLE_MARGIN = 64              # engine.synth.TILE_HALO: added per side for tileable: false
MAX_HEADER_BYTES = 64 * 1024
MAX_IMAGES = 64                     # frames in one stylize request
MAX_SEED = 2 ** 63 - 1
MAX_FILE_BYTES = 64 * 1024 * 1024   # one encoded exemplar image
DEFAULT_MAX_PIXELS = 8192 * 8192    # an 8K texture, the largest Blender users ask for
# An 8K uint8 texture with all four maps (640 MiB) fits.
DEFAULT_MAX_MESSAGE_BYTES = 768 * 1024 * 1024

# Request ids and job ids: short, printable, safe in file names and logs.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# engine.presets.NAME_RE (the server checks names again with engine.presets.check_name).
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REPEAT_RE = re.compile(r"^(auto|\d{1,4}(\.\d{1,3})?x\d{1,4}(\.\d{1,3})?)$")  # "auto" or WIDTHxHEIGHT px

# Error codes: stable strings that clients may branch on.
BAD_MESSAGE = "bad_message"        # the multipart envelope is wrong
BAD_JSON = "bad_json"              # frame 0 is not a UTF-8 JSON object
PROTOCOL_MISMATCH = "protocol_version"
UNKNOWN_OP = "unknown_op"
MISSING_FIELD = "missing_field"
UNKNOWN_FIELD = "unknown_field"
BAD_FIELD = "bad_field"            # wrong type, out of range, conflicting
BAD_FRAME = "bad_frame"            # descriptor and frame disagree, dtype not allowed
TOO_LARGE = "too_large"            # over max_pixels or max_message_bytes
UNKNOWN_PRESET = "unknown_preset"
BAD_PRESET = "bad_preset"          # the preset exists but cannot be loaded
BAD_IMAGE = "bad_image"            # an exemplar file that is not a readable image
UNKNOWN_JOB = "unknown_job"
CONFLICT = "conflict"              # duplicate id, a run that already exists or is busy
# A conflict's ``reason`` (error.reason), so that clients need not parse the message:
ID_IN_USE, TRAINING, HAS_CHECKPOINT = "id_in_use", "training", "checkpoint"
CANCELLED = "cancelled"
SHUTTING_DOWN = "shutting_down"
ENGINE_ERROR = "engine_error"      # a bug or resource failure inside the engine
TIMEOUT = "timeout"                # client side: no answer within the deadline
ERROR_CODES = (BAD_MESSAGE, BAD_JSON, PROTOCOL_MISMATCH, UNKNOWN_OP, MISSING_FIELD, UNKNOWN_FIELD,
               BAD_FIELD, BAD_FRAME, TOO_LARGE, UNKNOWN_PRESET, BAD_PRESET, BAD_IMAGE, UNKNOWN_JOB,
               CONFLICT, CANCELLED, SHUTTING_DOWN, ENGINE_ERROR, TIMEOUT)


class ProtocolError(Exception):
    """A message or request that breaks the protocol, with the code sent back to the peer."""

    def __init__(self, code: str, message: str, request_id: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.code, self.message, self.request_id, self.reason = code, message, request_id, reason

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class Limits:
    """What one engine accepts; ``hello`` reports them so clients can check before sending."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_side: int = MAX_SIDE
    max_images: int = MAX_IMAGES
    max_header_bytes: int = MAX_HEADER_BYTES

    def to_dict(self) -> dict:
        return {"max_message_bytes": self.max_message_bytes, "max_pixels": self.max_pixels,
                "max_side": self.max_side, "max_images": self.max_images,
                "max_header_bytes": self.max_header_bytes}


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes (PNG/JPEG) carried as one frame: exemplars, thumbnails."""
    format: str
    data: bytes | memoryview


Payload = np.ndarray | EncodedImage


# ---- field schema ------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One header field: its JSON type, whether it is required, its default and range."""
    type: str                        # "int", "number", "bool", "str", "object", "list"
    required: bool = False
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    pattern: re.Pattern | None = None
    max_len: int = 256
    fields: dict[str, "Field"] | None = None  # for "object": its own schema
    item: "Field | None" = None                # for "list": each item's schema (no duplicates)


@dataclass(frozen=True)
class OpSpec:
    """What a request of one op may carry: its fields and how many frames of which kind."""
    fields: dict[str, Field] = field(default_factory=dict)
    frame_kind: str | None = None    # "array" or "file"
    min_frames: int = 0
    max_frames: int = 0


def _int(lo: int, hi: int, default: int | None = None, required: bool = False) -> Field:
    return Field("int", required=required, default=default, lo=lo, hi=hi)


def _num(lo: float, hi: float, default: float | None = None) -> Field:
    return Field("number", default=default, lo=lo, hi=hi)


def _choice(choices: tuple, default: str | None = None) -> Field:
    return Field("str", default=default, choices=choices)


# engine.noise.NoiseParams's fields (tests/test_engine_protocol.py checks they agree). Types
# are checked here; ranges by NoiseParams.validate on the engine, their single home.
NOISE_FIELDS = {"kind": _choice(NOISE_KINDS), "beta": Field("number"), "scale": Field("number"),
                "octaves": Field("int"), "contrast": Field("number")}
_PRESET = Field("str", required=True, pattern=NAME_RE)
# engine.maps.MapSettings's fields; absent ones take the preset's defaults, then the engine's.
# Ranges are checked here and again by MapSettings.validate (presets carry them too).
MAP_SETTING_FIELDS = {"height_scale": _num(-8.0, 8.0), "normal_strength": _num(0.0, 16.0),
                      "normal_convention": _choice(NORMAL_CONVENTIONS),
                      "roughness_min": _num(0.0, 1.0), "roughness_max": _num(0.0, 1.0),
                      "ao_radius": _num(1.0, MAX_AO_RADIUS), "ao_strength": _num(0.0, 8.0)}
_EVENTS = Field("bool", default=False)
_OUTPUT = {"dtype": _choice(OUTPUT_DTYPES, "uint8"), "precision": _choice(PRECISIONS, "auto"),
           "events": _EVENTS}
# training.texture.TrainConfig's user-facing fields. TrainConfig.validate adds the
# cross-field rules (crop a multiple of 8); the bounds here keep a request from asking
# for absurd memory (batch) or time. The budget is ``steps`` or ``minutes`` of training
# time (at most one; neither: TrainConfig's default time budget).
TRAIN_CONFIG_FIELDS = {
    "steps": _int(1, 1_000_000), "minutes": _num(0.01, 10_080.0),
    "batch": _int(1, 64), "crop": _int(32, 1024),
    "exemplar_size": _int(16, 4096), "augment": _choice(AUGMENTS),
    "lr_g": _num(1e-8, 1.0), "lr_d": _num(1e-8, 1.0), "adv_ratio": _num(0.0, 100.0),
    "checkpoint_every": _int(1, 1_000_000), "preview_every": _int(1, 1_000_000),
    "seed": _int(0, MAX_SEED), "precision": _choice(PRECISIONS),
    "repeat": Field("str", pattern=REPEAT_RE),  # -> TrainConfig.repeat through engine.layout.parse_repeat
}
_JOB = Field("str", required=True, pattern=ID_RE)

SPECS: dict[str, OpSpec] = {
    "hello": OpSpec(),
    "presets": OpSpec(),
    "synthesize": OpSpec({
        "preset": _PRESET, "width": _int(8, MAX_SIDE, required=True),
        "height": _int(8, MAX_SIDE, required=True), "seed": _int(0, MAX_SEED, 0),
        "noise": Field("object", default={}, fields=NOISE_FIELDS),
        "tileable": Field("bool", default=True),
        "period": Field("object", fields={"width": _int(8, MAX_SIDE, required=True),
                                          "height": _int(8, MAX_SIDE, required=True)}),
        "maps": Field("list", default=[], item=_choice(MAP_NAMES)),
        "map_settings": Field("object", default={}, fields=MAP_SETTING_FIELDS),
        **_OUTPUT}),
    "stylize": OpSpec({"preset": _PRESET, **_OUTPUT}, "array", 1, MAX_IMAGES),
    "train": OpSpec({
        "name": _PRESET, **TRAIN_CONFIG_FIELDS,
        "noise": Field("object", default={}, fields=NOISE_FIELDS),
        "source": Field("str", default="", max_len=500), "licence": Field("str", default="", max_len=200),
        "resume": Field("bool", default=False), "fresh": Field("bool", default=False),
        "events": _EVENTS}, "file", 1, 1),
    "status": OpSpec({"job": Field("str", pattern=ID_RE)}),
    "cancel": OpSpec({"job": _JOB}),
    "release": OpSpec(),
    "shutdown": OpSpec(),
}
# Fields every request header carries besides its op's own (and "frames", the descriptors
# of its data frames, checked by decode_frames).
ENVELOPE_FIELDS = {"protocol": Field("int", required=True), "op": Field("str", required=True),
                   "id": Field("str", pattern=ID_RE)}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"bool": bool, "str": str, "object": dict, "list": list}[kind])


def check_field(name: str, spec: Field, value: Any) -> Any:
    """The value if it fits ``spec``, else ProtocolError(BAD_FIELD) saying what was expected."""
    if not _type_ok(spec.type, value):
        raise ProtocolError(BAD_FIELD, f"field {name!r} must be {_EXPECTED[spec.type]}, got {_describe(value)}")
    if spec.type in ("int", "number"):
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            raise ProtocolError(BAD_FIELD, f"field {name!r} must be in {spec.lo}..{spec.hi}, "
                                           f"got {str(value)[:40]}")
    elif spec.type == "str":
        if len(value) > spec.max_len:
            raise ProtocolError(BAD_FIELD, f"field {name!r} is longer than {spec.max_len} characters")
        if spec.choices is not None and value not in spec.choices:
            raise ProtocolError(BAD_FIELD, f"field {name!r} must be one of {', '.join(spec.choices)}; got {value!r}")
        if spec.pattern is not None and not spec.pattern.match(value):
            raise ProtocolError(BAD_FIELD, f"field {name!r} = {value[:80]!r} is not allowed: use 1-64 "
                                           f"characters matching {spec.pattern.pattern}")
    elif spec.type == "object" and spec.fields is not None:
        return check_fields(value, spec.fields, where=f"{name}.")
    elif spec.type == "list" and spec.item is not None:
        if len(value) > 64:
            raise ProtocolError(BAD_FIELD, f"field {name!r} has more than 64 items")
        items = [check_field(f"{name}[{i}]", spec.item, v) for i, v in enumerate(value)]
        if len(set(map(json.dumps, items))) != len(items):
            raise ProtocolError(BAD_FIELD, f"field {name!r} lists an item twice: {items!r}"[:200])
        return items
    return value


def check_fields(data: dict, specs: dict[str, Field], where: str = "") -> dict:
    """Validate a JSON object against a schema: unknown keys, missing required keys and bad
    values are errors; absent optional keys take their defaults (if any)."""
    unknown = sorted(k for k in data if k not in specs)
    if unknown:
        allowed = ", ".join(sorted(specs)) or "none"
        raise ProtocolError(UNKNOWN_FIELD, f"unknown field {(where + unknown[0])[:80]!r}; allowed here: {allowed}")
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in data:
            out[name] = check_field(where + name, spec, data[name])
        elif spec.required:
            raise ProtocolError(MISSING_FIELD, f"field {(where + name)!r} is required")
        elif spec.default is not None:
            out[name] = dict(spec.default) if isinstance(spec.default, dict) else spec.default
    return out


_EXPECTED = {"int": "an integer", "number": "a finite number", "bool": "true or false", "str": "a string",
      "object": "a JSON object", "list": "a JSON list"}


def _describe(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), "null")


# ---- frames ------------------------------------------------------------------------------
def describe_payload(payload: Payload) -> dict:
    """The header descriptor of one frame."""
    if isinstance(payload, EncodedImage):
        return {"kind": "file", "format": payload.format, "nbytes": len(payload.data)}
    return {"kind": "array", "dtype": payload.dtype.name, "shape": list(payload.shape)}


def _as_wire_array(a: np.ndarray) -> np.ndarray:
    if a.dtype.name not in DTYPES or a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ProtocolError(BAD_FRAME, f"images travel as HxWx3 (maps: HxWx1) {', '.join(DTYPES)} arrays, "
                                       f"got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a, dtype=DTYPES[a.dtype.name])


def encode(header: dict, payloads: Sequence[Payload] = ()) -> list:
    """Header + payloads -> the frames to send (``send_multipart(..., copy=False)``): the
    header gets its ``frames`` descriptors; arrays go out as their own buffers, uncopied."""
    buffers: list = []
    descriptors = []
    for p in payloads:
        if isinstance(p, EncodedImage):
            buffers.append(p.data)
        else:
            p = _as_wire_array(p)
            buffers.append(p)
        descriptors.append(describe_payload(p))
    if descriptors:
        header = {**header, "frames": descriptors}
    return [json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8"), *buffers]


def _buffer(frame) -> memoryview:
    """A zmq.Frame (recv copy=False), bytes or any buffer -> a byte memoryview, uncopied."""
    return memoryview(frame.buffer if hasattr(frame, "buffer") else frame).cast("B")


def _reject_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ProtocolError(BAD_JSON, f"header repeats the key {dup[:80]!r}")
    return dict(pairs)


def _reject_constant(name: str):
    raise ProtocolError(BAD_JSON, f"header contains {name}, which is not JSON")


def parse_header(frame, max_bytes: int = MAX_HEADER_BYTES) -> dict:
    """Frame 0 -> the header dict (UTF-8 JSON object, no NaN/Infinity, no repeated keys)."""
    raw = _buffer(frame)
    if len(raw) > max_bytes:
        raise ProtocolError(TOO_LARGE, f"header is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        header = json.loads(bytes(raw).decode("utf-8"), object_pairs_hook=_reject_duplicates,
                            parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ProtocolError(BAD_JSON, f"header is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "header nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise ProtocolError(BAD_JSON, f"header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError(BAD_JSON, f"header must be a JSON object, got {_describe(header)}")
    return header


def _check_descriptor(i: int, d: Any, limits: Limits) -> tuple[str, np.dtype | str, tuple | None, int]:
    """One frame descriptor -> (kind, dtype or file format, shape or None, byte length)."""
    where = f"frames[{i}]"
    if not isinstance(d, dict):
        raise ProtocolError(BAD_FRAME, f"{where} must be an object, got {_describe(d)}")
    kind = d.get("kind")
    expected = {"array": {"kind", "dtype", "shape"}, "file": {"kind", "format", "nbytes"}}.get(kind)
    if expected is None:
        raise ProtocolError(BAD_FRAME, f"{where}.kind must be 'array' or 'file', got {str(kind)[:40]!r}")
    if set(d) != expected:
        raise ProtocolError(BAD_FRAME, f"{where} ({kind}) must have exactly the keys {', '.join(sorted(expected))}")
    if kind == "file":
        fmt, nbytes = d["format"], d["nbytes"]
        if not isinstance(fmt, str) or fmt not in FILE_FORMATS:
            raise ProtocolError(BAD_FRAME, f"{where}.format must be one of {', '.join(FILE_FORMATS)}")
        if not _type_ok("int", nbytes) or not 1 <= nbytes <= MAX_FILE_BYTES:
            raise ProtocolError(BAD_FRAME, f"{where}.nbytes must be an integer in 1..{MAX_FILE_BYTES}")
        return kind, fmt, None, nbytes
    dtype, shape = d["dtype"], d["shape"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ProtocolError(BAD_FRAME, f"{where}.dtype must be one of {', '.join(DTYPES)}; "
                                       f"got {str(dtype)[:40]!r}")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_type_ok("int", n) for n in shape)
            and shape[2] in (1, 3) and shape[0] >= 1 and shape[1] >= 1):
        raise ProtocolError(BAD_FRAME, f"{where}.shape must be [height, width, 3] (or 1 channel for a map) "
                                       f"with positive sides")
    if max(shape[0], shape[1]) > limits.max_side:
        raise ProtocolError(TOO_LARGE, f"{where} is {shape[1]}x{shape[0]}; sides are limited to {limits.max_side}")
    return kind, DTYPES[dtype], tuple(shape), shape[0] * shape[1] * shape[2] * DTYPES[dtype].itemsize


def decode_frames(descriptors: Any, frames: Sequence, limits: Limits) -> list[Payload]:
    """The data frames, checked against their descriptors, as read-only arrays (views on
    the received buffers, not copies) or EncodedImage."""
    if not isinstance(descriptors, list):
        raise ProtocolError(BAD_FRAME, f"header field 'frames' must be a list, got {_describe(descriptors)}")
    if len(descriptors) != len(frames):
        raise ProtocolError(BAD_FRAME, f"header declares {len(descriptors)} data frame(s) but the message "
                                       f"carries {len(frames)}")
    if len(frames) > limits.max_images:
        raise ProtocolError(TOO_LARGE, f"{len(frames)} data frames; the limit is {limits.max_images}")
    checked = [_check_descriptor(i, d, limits) for i, d in enumerate(descriptors)]
    declared = sum(c[3] for c in checked)
    if declared > limits.max_message_bytes:
        raise ProtocolError(TOO_LARGE, f"the frames declare {declared} bytes; the limit is "
                                       f"{limits.max_message_bytes} (max_message_bytes)")
    out: list[Payload] = []
    for i, ((kind, dtype, shape, nbytes), frame) in enumerate(zip(checked, frames)):
        buf = _buffer(frame)
        if len(buf) != nbytes:
            what = f"{shape[1]}x{shape[0]}x{shape[2]} {dtype.name}" if kind == "array" else f"a {dtype} file"
            raise ProtocolError(BAD_FRAME, f"frames[{i}] declares {what} ({nbytes} bytes) but carries "
                                           f"{len(buf)} bytes")
        if kind == "file":
            out.append(EncodedImage(dtype, buf))
        else:
            out.append(np.frombuffer(buf, dtype=dtype).reshape(shape))
    return out


# ---- requests ----------------------------------------------------------------------------
@dataclass
class Request:
    """A request that passed validation: defaults filled in, frames decoded."""
    op: str
    id: str | None
    fields: dict
    payloads: list[Payload]


def _check_version(header: dict) -> None:
    version = header.get("protocol")
    if version is None:
        raise ProtocolError(MISSING_FIELD, f"field 'protocol' is required (this engine speaks "
                                           f"protocol {PROTOCOL_VERSION})")
    if not _type_ok("int", version):
        raise ProtocolError(BAD_FIELD, f"field 'protocol' must be an integer, got {_describe(version)}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(PROTOCOL_MISMATCH, f"this engine speaks protocol {PROTOCOL_VERSION}, the client "
                                               f"sent protocol {version}: update the older side")


def decode_request(parts: Sequence, limits: Limits = Limits()) -> Request:
    """Frames after the empty delimiter -> a validated Request, or ProtocolError carrying
    the request id when the header got far enough to have a valid one."""
    if not parts:
        raise ProtocolError(BAD_MESSAGE, "empty message: frame 0 must be the JSON header")
    header = parse_header(parts[0], limits.max_header_bytes)
    rid = header.get("id")
    rid = rid if isinstance(rid, str) and ID_RE.match(rid) else None
    try:
        _check_version(header)
        op = header.get("op")
        if op is None:
            raise ProtocolError(MISSING_FIELD, f"field 'op' is required; one of {', '.join(OPS)}")
        if not isinstance(op, str) or op not in SPECS:
            raise ProtocolError(UNKNOWN_OP, f"unknown op {str(op)[:40]!r}; known: {', '.join(OPS)}")
        spec = SPECS[op]
        fields = check_fields({k: v for k, v in header.items() if k != "frames"},
                              {**ENVELOPE_FIELDS, **spec.fields})
        payloads = decode_frames(header.get("frames", []), parts[1:], limits)
        _check_payload_kinds(op, spec, payloads)
        _check_request_limits(op, fields, payloads, limits)
    except ProtocolError as exc:
        exc.request_id = rid
        raise
    return Request(op, rid, fields, payloads)


def _check_payload_kinds(op: str, spec: OpSpec, payloads: list[Payload]) -> None:
    if not spec.min_frames <= len(payloads) <= spec.max_frames:
        wanted = (f"{spec.min_frames}" if spec.min_frames == spec.max_frames
                  else f"{spec.min_frames}..{spec.max_frames}")
        raise ProtocolError(BAD_FRAME, f"{op} takes {wanted} data frame(s), got {len(payloads)}")
    for i, p in enumerate(payloads):
        kind = "file" if isinstance(p, EncodedImage) else "array"
        if kind != spec.frame_kind:
            raise ProtocolError(BAD_FRAME, f"{op}: frames[{i}] must be an {spec.frame_kind}, got a {kind}")
        if kind == "array" and (p.shape[2] != 3 or p.dtype.name not in OUTPUT_DTYPES):
            # one-channel and uint16 frames are maps, which only replies carry
            raise ProtocolError(BAD_FRAME, f"{op}: frames[{i}] must be [height, width, 3] "
                                           f"{' or '.join(OUTPUT_DTYPES)}, got {list(p.shape)} {p.dtype.name}")


def _check_request_limits(op: str, fields: dict, payloads: list[Payload], limits: Limits) -> None:
    """Size rules across fields: pixels, the reply's bytes, periods."""
    if op == "synthesize":
        shapes = [(fields["height"], fields["width"])]
        if not fields["tileable"] and max(shapes[0]) > limits.max_side - 2 * UNTILEABLE_MARGIN:
            raise ProtocolError(BAD_FIELD, f"tileable: false synthesizes a canvas {2 * UNTILEABLE_MARGIN} px "
                                           f"larger and crops it; sides are limited to "
                                           f"{limits.max_side - 2 * UNTILEABLE_MARGIN} then")
        period = fields.get("period")
        if period is not None:
            if not fields["tileable"]:
                raise ProtocolError(BAD_FIELD, "field 'period' sets how a tileable texture repeats; "
                                               "it cannot be combined with tileable: false")
            if period["width"] % 8 or period["height"] % 8:
                raise ProtocolError(BAD_FIELD, f"period must be a multiple of 8 on each side, got "
                                               f"{period['width']}x{period['height']}")
    elif op == "stylize":
        shapes = [p.shape[:2] for p in payloads]
    else:
        if op == "train" and fields["resume"] and fields["fresh"]:
            raise ProtocolError(BAD_FIELD, "resume: true continues a run and fresh: true discards it; "
                                           "send at most one of them")
        if op == "train" and "steps" in fields and "minutes" in fields:
            raise ProtocolError(BAD_FIELD, "steps and minutes are two budgets for the same run; "
                                           "send at most one of them")
        return
    pixels = sum(h * w for h, w in shapes)
    if pixels > limits.max_pixels:
        raise ProtocolError(TOO_LARGE, f"{op} asks for {pixels / 1e6:.1f} Mpx; this engine's limit is "
                                       f"{limits.max_pixels / 1e6:.1f} Mpx (max_pixels)")
    per_pixel = 3 * DTYPES[fields["dtype"]].itemsize
    for name in fields.get("maps", ()):
        dtype, channels = MAP_FRAMES[name]
        per_pixel += channels * DTYPES[dtype].itemsize
    if fields.get("maps"):
        rs = fields["map_settings"]
        if rs.get("roughness_min", 0.0) > rs.get("roughness_max", 1.0):
            raise ProtocolError(BAD_FIELD, f"map_settings.roughness_min ({rs['roughness_min']}) is above "
                                           f"roughness_max ({rs['roughness_max']})")
    reply_bytes = pixels * per_pixel
    if reply_bytes > limits.max_message_bytes:
        raise ProtocolError(TOO_LARGE, f"the {fields['dtype']} reply would be {reply_bytes / 2**20:.0f} MiB; "
                                       f"the limit is {limits.max_message_bytes / 2**20:.0f} MiB "
                                       f"(max_message_bytes): ask for uint8, fewer maps or fewer pixels")


# ---- replies and events ------------------------------------------------------------------
def reply_header(op: str | None, request_id: str | None, **fields: Any) -> dict:
    """A success reply's header (``frames`` is added by ``encode``)."""
    return {"protocol": PROTOCOL_VERSION, "op": op, "id": request_id, "ok": True, **fields}


def error_header(error: ProtocolError, op: str | None = None) -> dict:
    return {"protocol": PROTOCOL_VERSION, "op": op, "id": error.request_id, "ok": False,
            "error": error.to_dict()}


def event_header(request_id: str | None, job: str, state: str, progress: dict) -> dict:
    """An unsolicited progress message for a job whose request asked for ``events``."""
    return {"protocol": PROTOCOL_VERSION, "event": "progress", "id": request_id, "job": job,
            "state": state, "progress": progress}


@dataclass
class Reply:
    """A decoded reply or event from the engine."""
    header: dict
    payloads: list[Payload]

    @property
    def id(self) -> str | None:
        return self.header.get("id")

    @property
    def is_event(self) -> bool:
        return "event" in self.header


def decode_reply(parts: Sequence, limits: Limits = Limits()) -> Reply:
    """Frames from the engine -> Reply. The client trusts the engine less than fully: a
    malformed reply is a ProtocolError, not a crash inside Blender."""
    if not parts:
        raise ProtocolError(BAD_MESSAGE, "empty reply from the engine")
    header = parse_header(parts[0], limits.max_header_bytes)
    _check_version(header)
    if "event" not in header:
        if not isinstance(header.get("ok"), bool):
            raise ProtocolError(BAD_MESSAGE, "reply header lacks the boolean field 'ok'")
        err = header.get("error")
        if header["ok"] is False and not (isinstance(err, dict) and isinstance(err.get("code"), str)
                                          and isinstance(err.get("message"), str)):
            raise ProtocolError(BAD_MESSAGE, "error reply lacks error.code / error.message")
    return Reply(header, decode_frames(header.get("frames", []), parts[1:], limits))
