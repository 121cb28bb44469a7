"""Preset folders: data, never code.

``<dir>/<name>/preset.json``  name, kind, format version, generator config, noise defaults,
                              training settings, exemplar source and licence
``<dir>/<name>/generator.safetensors``  G's weights and its fixed feature statistics
``<dir>/<name>/thumbnail.png``          a small tile, for pickers

Presets are found in the user's folder (``MGAN_PRESETS``, default
``$MGAN_HOME/presets`` = ``~/.local/share/mgan/presets``) and then in the built-in ``presets/`` folder.
Loading validates everything; a corrupt or foreign file raises ``PresetError``.
"""
from __future__ import annotations

import json
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


def read_meta(folder: Path) -> dict:
    path = folder / "preset.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{folder} is not a preset: preset.json is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path} is corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PresetError(f"{path} is not an MGAN preset (format field is not {FORMAT!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise PresetError(f"{path} has format version {version!r}; this engine reads version {FORMAT_VERSION}")
    if meta.get("kind") not in KINDS:
        raise PresetError(f"{path}: kind must be one of {', '.join(KINDS)}, got {meta.get('kind')!r}")
    check_name(meta.get("name", ""))
    try:
        GeneratorConfig.from_dict(meta.get("generator", {}))
        NoiseParams.from_dict(meta.get("noise", {}))
        MapSettings().merged(meta.get("maps"))
    except (TypeError, ValueError) as exc:
        raise PresetError(f"{path}: {exc}") from None
    return meta


def list_presets() -> list[PresetInfo]:
    """Every valid preset, user folder first (a user preset shadows a built-in of the same name)."""
    found: dict[str, PresetInfo] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue
        for folder in sorted(d.iterdir()):
            if folder.name in found or not (folder / "preset.json").is_file():
                continue
            try:
                meta = read_meta(folder)
            except PresetError:
                continue
            found[folder.name] = PresetInfo(folder.name, meta["kind"], folder, meta)
    return sorted(found.values(), key=lambda p: p.name)


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


def load_generator(info: PresetInfo, device: torch.device | str = "cpu") -> Generator:
    """Build G from the preset's config and load its weights, checking every tensor."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = info.path / "generator.safetensors"
    if not path.is_file():
        raise PresetError(f"preset {info.name!r}: generator.safetensors is missing in {info.path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise PresetError(f"preset {info.name!r}: {path} is corrupt ({exc})") from None
    g = Generator(info.generator_config)
    expected = g.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise PresetError(f"preset {info.name!r}: generator weights do not match its config "
                          f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise PresetError(f"preset {info.name!r}: tensor {k} has shape {tuple(v.shape)}, "
                              f"expected {tuple(expected[k].shape)}")
        if not torch.isfinite(v).all():
            raise PresetError(f"preset {info.name!r}: tensor {k} holds non-finite values")
    g.load_state_dict(state)
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
    tmp = folder / "preset.json.tmp"
    tmp.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "preset.json")
    return folder
