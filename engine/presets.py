"""Preset folders: data, never code.

``<dir>/<name>/preset.json``  name, kind, format version, generator config, noise defaults,
                              training settings, exemplar source and licence
``<dir>/<name>/generator.safetensors``  G's weights and its fixed feature statistics
``<dir>/<name>/thumbnail.png``          a small tile, for pickers

Presets are found in the user's folder (``MGAN_PRESETS``, default
``$MGAN_HOME/presets`` = ``~/.local/share/mgan/presets``) and then in the built-in ``presets/`` folder.
Loading validates everything; a corrupt or foreign file raises ``PresetError`` with a message
that names the preset and what is wrong, whatever the bytes (tests/test_preset_mutation.py
feeds it over a thousand mutants). The listing checks each preset's JSON and its weights'
header (not the weights themselves: that is a load) and reports the broken ones with the
reason, so a damaged preset shows as broken instead of vanishing.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .generator import Generator, GeneratorConfig
from .maps import MapSettings
from .noise import NoiseParams

FORMAT = "mgan-preset"
FORMAT_VERSION = 1
KINDS = ("texture", "style")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "presets"
WEIGHTS = "generator.safetensors"
# A preset.json is a few KB; a bigger one is not a preset, and reading it whole could exhaust memory.
MAX_META_BYTES = 1 << 20
# safetensors' own limit on its JSON header.
MAX_HEADER_BYTES = 100_000_000
# The dtypes a generator's tensors may be stored in (write_preset writes F16, or F32 where
# F16 would overflow), with their sizes; loading casts them to float32.
WEIGHT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


class PresetError(ValueError):
    """A preset is missing, malformed or not a preset at all."""


class PresetNotFound(PresetError):
    """No preset of that name in the preset folders."""


def data_dir() -> Path:
    """The engine's own folder (runs, checkpoints, user presets): ``MGAN_HOME``."""
    return Path(os.environ.get("MGAN_HOME") or os.path.expanduser("~/.local/share/mgan"))


def user_dir() -> Path:
    return Path(os.environ.get("MGAN_PRESETS") or data_dir() / "presets")


def search_dirs() -> list[Path]:
    return [user_dir(), BUILTIN_DIR]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PresetError(f"invalid preset name {name!r}: use 1-64 of a-z, 0-9, '-', '_' "
                          "(starting with a letter or digit)")
    return name


@dataclass
class PresetInfo:
    name: str
    kind: str
    path: Path
    meta: dict = field(repr=False)

    @property
    def noise(self) -> NoiseParams:
        return NoiseParams.from_dict(self.meta.get("noise", {}))

    @property
    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig.from_dict(self.meta.get("generator", {}))

    @property
    def map_settings(self) -> MapSettings:
        """The preset's defaults for PBR maps (preset.json ``"maps"``) over the engine's."""
        return MapSettings().merged(self.meta.get("maps"))

    @property
    def thumbnail(self) -> Path | None:
        p = self.path / "thumbnail.png"
        return p if p.is_file() else None


@dataclass(frozen=True)
class BrokenPreset:
    """A folder with a preset.json that cannot be loaded: its folder name and why (one line)."""
    name: str
    path: Path
    reason: str


@dataclass
class PresetScan:
    """What the preset folders hold: the presets that load, and the broken ones."""
    presets: list[PresetInfo]
    broken: list[BrokenPreset]


def _short(value, limit: int = 60) -> str:
    """A value as a message shows it: its repr, cut short (a field may hold a megabyte)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _short_reason(exc: Exception, limit: int = 300) -> str:
    """A listing's reason: one line, short enough that many fit in one reply."""
    text = _one_line(exc)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_meta(folder: Path) -> dict:
    """preset.json, checked: the fields the engine reads have the right types and ranges."""
    path = folder / "preset.json"
    try:
        size = path.stat().st_size
        if size > MAX_META_BYTES:
            raise PresetError(f"{path} is {size} bytes, too big for a preset.json (at most {MAX_META_BYTES})")
        meta = json.loads(path.read_bytes().decode("utf-8-sig"))  # a BOM, as Windows editors write
    except FileNotFoundError:
        raise PresetError(f"{folder} is not a preset: preset.json is missing") from None
    except OSError as exc:
        raise PresetError(f"{path} cannot be read: {exc.strerror or exc}") from None
    # ValueError: JSON syntax, an integer of over 4300 digits; RecursionError: nesting.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PresetError(f"{path} is corrupt: {_one_line(exc)}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PresetError(f"{path} is not an MGAN preset (format field is not {FORMAT!r})")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # not True, not 1.0
        raise PresetError(f"{path} has format_version {_short(version)}; this engine reads format version "
                          f"{FORMAT_VERSION}")
    if meta.get("kind") not in KINDS:
        raise PresetError(f"{path}: kind must be one of {', '.join(KINDS)}, got {_short(meta.get('kind'))}")
    try:
        check_name(meta.get("name", ""))
    except PresetError as exc:
        raise PresetError(f"{path}: field 'name': {exc}") from None
    sections = (("generator", GeneratorConfig.from_dict), ("noise", NoiseParams.from_dict),
                ("maps", MapSettings().merged), ("exemplar", _check_exemplar))
    for key, parse in sections:
        if key not in meta:  # each has defaults
            continue
        try:
            parse(meta.get(key))
        # The parsers raise ValueError; TypeError and OverflowError are what a value of an
        # unforeseen type makes of a comparison or a conversion.
        except (TypeError, ValueError, OverflowError) as exc:
            raise PresetError(f"{path}: field {key!r}: {_one_line(exc)}") from None
    return meta


def _check_exemplar(exemplar) -> None:
    """The exemplar record (shown by listings): an object; its source and licence strings."""
    if not isinstance(exemplar, dict):
        raise ValueError(f"must be an object, got {type(exemplar).__name__}")
    for key in ("source", "licence"):
        if key in exemplar and not isinstance(exemplar[key], str):
            raise ValueError(f"exemplar {key} must be a string, got {_short(exemplar[key])}")


def scan_presets(dirs: list[Path] | None = None) -> PresetScan:
    """Every folder holding a preset.json in the preset folders (or in ``dirs``), user folder
    first: the presets that load (their JSON and their weights' header are checked) and the
    broken ones with the reason. A user folder shadows a built-in of the same name, broken or
    not, as it does in ``find_preset``."""
    found: dict[str, PresetInfo | BrokenPreset] = {}
    for d in search_dirs() if dirs is None else dirs:
        try:
            folders = sorted(d.iterdir()) if d.is_dir() else []
        except OSError:
            continue
        for folder in folders:
            if folder.name in found or not _holds_preset_json(folder):
                continue
            try:
                found[folder.name] = _listed(folder)
            except PresetError as exc:
                found[folder.name] = BrokenPreset(folder.name, folder, _short_reason(exc))
    entries = sorted(found.values(), key=lambda p: p.name)
    return PresetScan([p for p in entries if isinstance(p, PresetInfo)],
                      [p for p in entries if isinstance(p, BrokenPreset)])


def _holds_preset_json(folder: Path) -> bool:
    try:
        return (folder / "preset.json").is_file()
    except OSError:  # a folder this user may not look into is nobody's preset
        return False


def _listed(folder: Path) -> PresetInfo:
    """A preset folder as a listing sees it: its name, its JSON, its weights' header."""
    if not NAME_RE.match(folder.name):
        raise PresetError(f"{folder}: the folder's name is not a preset name; rename it to 1-64 of a-z, 0-9, "
                          "'-', '_' (starting with a letter or digit)")
    meta = read_meta(folder)
    info = PresetInfo(folder.name, meta["kind"], folder, meta)
    check_weights_header(info)
    return info


def list_presets() -> list[PresetInfo]:
    """Every preset that loads, user folder first (a user preset shadows a built-in of the
    same name); ``scan_presets`` also gives the broken ones."""
    return scan_presets().presets


def find_preset(name: str) -> PresetInfo:
    """A preset by name, searched in the preset folders only (never the working directory:
    names arrive from the network too)."""
    name = check_name(name)
    for d in search_dirs():
        if (d / name / "preset.json").is_file():
            return open_preset(d / name)
    known = ", ".join(p.name for p in list_presets()) or "(none installed)"
    raise PresetNotFound(f"preset {name!r} not found; known: {known}")


def open_preset(folder: str | os.PathLike) -> PresetInfo:
    """A preset from an explicit folder path (the CLI's ``--preset ./some/folder``)."""
    folder = Path(folder)
    meta = read_meta(folder)
    return PresetInfo(meta["name"], meta["kind"], folder, meta)


def preset_from_arg(arg: str) -> PresetInfo:
    """A command-line ``--preset``: a folder if it looks like a path, else a name."""
    if os.sep in arg or "/" in arg or arg.startswith("."):
        return open_preset(arg)
    return find_preset(arg)


def read_weights_header(info: PresetInfo) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor: (dtype, shape)} from generator.safetensors' header, checked against the file:
    known float dtypes, sizes that match the shapes, tensors that tile the data exactly. Reads
    the header only, so a listing can tell a truncated or forged file cheaply."""
    path = info.path / WEIGHTS
    where = f"preset {info.name!r}: {WEIGHTS}"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise PresetError(f"{where} is truncated: {size} bytes, less than its 8-byte header length")
            n = int.from_bytes(prefix, "little")
            if n > size - 8:
                raise PresetError(f"{where} is truncated or corrupt: its header claims {n} bytes, the file "
                                  f"has {size}")
            if n > MAX_HEADER_BYTES:
                raise PresetError(f"{where} is corrupt: its header claims {n} bytes (at most {MAX_HEADER_BYTES})")
            text = f.read(n)
    except FileNotFoundError:
        raise PresetError(f"preset {info.name!r}: {WEIGHTS} is missing in {info.path}") from None
    except OSError as exc:
        raise PresetError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PresetError(f"{where} is corrupt: its header is not JSON ({_one_line(exc)})") from None
    if not isinstance(header, dict):
        raise PresetError(f"{where} is corrupt: its header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise PresetError(f"{where} is corrupt: __metadata__ is not an object of strings")
    tensors, spans = {}, []
    for name, entry in header.items():
        if len(name) > 256 or not name.isprintable():  # it goes into messages below
            raise PresetError(f"{where} is corrupt: a tensor is named {_short(name)}")
        if not isinstance(entry, dict):
            raise PresetError(f"{where} is corrupt: tensor {name} is described by {_short(entry)}, not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in WEIGHT_DTYPES:
            raise PresetError(f"{where}: tensor {name} has dtype {_short(dtype)}; a generator's tensors are "
                              f"{', '.join(WEIGHT_DTYPES)}")
        if not (isinstance(shape, list) and all(type(s) is int and 0 <= s < 1 << 40 for s in shape)):
            raise PresetError(f"{where} is corrupt: tensor {name} has shape {_short(shape)}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise PresetError(f"{where} is corrupt: tensor {name} has data_offsets {_short(offsets)}")
        nbytes = math.prod(shape) * WEIGHT_DTYPES[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise PresetError(f"{where} is corrupt: tensor {name} of shape {shape} ({dtype}) needs {nbytes} bytes, "
                              f"its data_offsets span {offsets[1] - offsets[0]}")
        tensors[name] = (dtype, tuple(shape))
        spans.append((offsets[0], offsets[1], name))
    data_size, end = size - 8 - n, 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise PresetError(f"{where} is corrupt: tensor {name}'s data starts at byte {begin}, not {end} "
                              "(tensors overlap or leave a gap)")
        end = stop
    if end > data_size:
        raise PresetError(f"{where} is truncated: {size} bytes, its header describes {8 + n + end}")
    if end < data_size:
        raise PresetError(f"{where} is corrupt: {data_size - end} bytes follow the last tensor")
    return tensors


@functools.lru_cache(maxsize=16)
def _expected_shapes(config: GeneratorConfig) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(tensor, shape) of G built from ``config``; cached (immutable): a listing asks for the
    same few configs again and again, and building even a shapes-only G takes milliseconds."""
    with torch.device("meta"):  # shapes only: no memory, no random init
        return tuple((k, tuple(v.shape)) for k, v in Generator(config).state_dict().items())


def _check_against_config(info: PresetInfo, shapes: dict[str, tuple[int, ...]]) -> None:
    """The tensors G built from the preset's config has, with the same shapes."""
    config = info.generator_config
    expected = dict(_expected_shapes(config))
    where = (f"preset {info.name!r}: {WEIGHTS} does not match the generator config in preset.json "
             f"({json.dumps(config.to_dict())})")
    missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or extra:
        raise PresetError(f"{where}: missing tensors {missing[:3]}, unexpected {extra[:3]}")
    for k, shape in sorted(shapes.items()):
        if shape != expected[k]:
            raise PresetError(f"{where}: tensor {k} has shape {shape}, expected {expected[k]}")


def check_weights_header(info: PresetInfo) -> None:
    """What a listing checks of the weights: the header is sound and fits the config."""
    _check_against_config(info, {k: shape for k, (_, shape) in read_weights_header(info).items()})


# Largest magnitude a preset's tensor may hold: G's weights stay near 1 and its input
# statistics (VGG features, Caffe scale) under 1e4; fp16, which presets store, ends at 65504.
MAX_WEIGHT = 1e6


def load_generator(info: PresetInfo, device: torch.device | str = "cpu") -> Generator:
    """Build G from the preset's config and load its weights, checking every tensor."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_weights_header(info)
    path = info.path / WEIGHTS
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise PresetError(f"preset {info.name!r}: {WEIGHTS} is corrupt ({_one_line(exc)})") from None
    # Again on what was read: the file may have changed since its header was.
    _check_against_config(info, {k: tuple(v.shape) for k, v in state.items()})
    floats = {}
    for k, v in state.items():
        if v.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise PresetError(f"preset {info.name!r}: {WEIGHTS}: tensor {k} has dtype {v.dtype}")
        floats[k] = v = v.float()
        if not torch.isfinite(v).all():
            raise PresetError(f"preset {info.name!r}: {WEIGHTS}: tensor {k} holds non-finite values "
                              "(NaN or infinity); the file is damaged")
        if v.numel() and float(v.abs().max()) > MAX_WEIGHT:
            # (a flipped exponent bit: finite, but it overflows the texture to NaN)
            raise PresetError(f"preset {info.name!r}: {WEIGHTS}: tensor {k} holds {float(v.abs().max()):.3g}, "
                              f"beyond any trained value (at most {MAX_WEIGHT:g}); the file is damaged")
    with torch.device("meta"):  # the loaded tensors become its parameters: no random init to overwrite
        g = Generator(info.generator_config)
    g.load_state_dict(floats, assign=True)
    return g.to(device).eval().requires_grad_(False)


def write_preset(folder: Path, meta: dict, generator: Generator, thumbnail=None) -> Path:
    """Write a preset atomically enough that a crash never leaves a half-valid one:
    weights first, preset.json (what makes a folder a preset) last."""
    from safetensors.torch import save_file

    check_name(meta["name"])
    folder.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "generator": generator.config.to_dict()}
    # Half precision halves the files (inference runs in bf16 or fp32 anyway; loading casts
    # back to fp32); a tensor that would overflow fp16 is kept in fp32.
    state = {}
    for k, v in generator.state_dict().items():
        v = v.detach().float().contiguous().cpu()
        half = v.half()
        state[k] = half if torch.isfinite(half).all() else v
    tmp = folder / "generator.safetensors.tmp"
    save_file(state, str(tmp))
    os.replace(tmp, folder / "generator.safetensors")
    if thumbnail is not None:
        thumbnail.save(folder / "thumbnail.png")
    write_meta(folder, full)
    return folder


def write_meta(folder: Path, meta: dict) -> Path:
    """preset.json, atomically: a crash leaves the old one or the new one, never half."""
    tmp = folder / "preset.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "preset.json")
    return folder / "preset.json"
