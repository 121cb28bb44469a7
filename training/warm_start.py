"""Where a texture's G starts: from scratch, or from a texture preset's trained weights.

A built-in preset's G has learnt, over 800-1650 steps, to decode VGG19 features of noise into
plates, cracks, grains and leaves. Started from the built-in whose photo is nearest the
user's (``start_from="auto"``, the default), G begins with shapes of a kind and spends the
5-minute budget fitting them to the photo, where from scratch (a flat image of the photo's
mean colour) it first has to learn to draw at all. On the 6 irregular benchmark photos, at
the same 571 steps, the patch distance fell on 3 (corrosion 1.04 -> 0.96, rock 0.83 -> 0.68,
rug 1.06 -> 0.95), held on 2 and rose on 1 (leaves 0.72 -> 0.77), mean 0.87 -> 0.82; at a
second training seed it fell on all four of rock, rug, corrosion and leaves (docs/MEASURED.md,
G starts from the nearest built-in). A regular photo's G starts from scratch under
"auto": its periodic inputs are its own lattice's, and started from another lattice's G,
planks and tiles came out no better (1.13 -> 1.22, 0.85 -> 0.87).

- Nearest: the distance between two photos' signatures, the mean and the standard deviation
  of each channel of VGG19 relu1_1..relu4_1 (the statistics AdaIN matches), each tap's
  difference relative to its size, summed over the taps. Photos longer than
  ``SIGNATURE_SIDE`` are shrunk first; the built-ins' signatures are computed once per process.
- Only weights: G's parameters, name for name and shape for shape. Its fixed buffers (input
  statistics, a regular photo's waves, a layout's cells) are the new photo's own, and its
  output bias is reset to the new photo's mean colour. A preset whose G lacks one of this
  G's parameters (an input this one reads: periodic waves, a layout map; or other widths) is
  passed over; inputs of the source that this G does not read are left out.
- The weights are loaded as for synthesis (engine/presets.py: safetensors, never a pickle;
  every tensor checked: finite, in range, of the shape its config says).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.generator import Generator, GeneratorConfig
from engine.presets import (BUILTIN_DIR, PresetError, PresetInfo, load_generator, preset_from_arg, read_weights_header,
                            scan_presets)

from .exemplar import load_exemplar

SIGNATURE_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
SIGNATURE_SIDE = 256

_signatures: dict[tuple[str, float], list[torch.Tensor]] = {}


def signature(img: torch.Tensor, vgg) -> list[torch.Tensor]:
    """Per tap: the channels' means and standard deviations, of an image (1, 3, H, W) in 0..1."""
    side = max(img.shape[-2:])
    if side > SIGNATURE_SIDE:
        h, w = (max(1, round(s * SIGNATURE_SIDE / side)) for s in img.shape[-2:])
        img = F.interpolate(img, size=(h, w), mode="area")
    with torch.no_grad():
        feats = vgg(img.contiguous(memory_format=torch.channels_last), SIGNATURE_TAPS)
    out = []
    for t in SIGNATURE_TAPS:
        f = feats[t].float().flatten(2)[0]
        out.append(torch.cat([f.mean(1), f.std(1)]).cpu())
    return out


def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum((x - y).norm() / y.norm().clamp_min(1e-8) for x, y in zip(a, b)))


def _preset_signature(info: PresetInfo, vgg, device) -> list[torch.Tensor]:
    path = info.path / "exemplar.png"
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _signatures:
        _signatures[key] = signature(load_exemplar(path, scale=1.0).to(device), vgg)
    return _signatures[key]


def parameter_shapes(g_config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """G's parameters and their shapes, from a G built on the meta device (no weights made)."""
    with torch.device("meta"):
        return {n: tuple(p.shape) for n, p in Generator(g_config).named_parameters()}


def fits(info: PresetInfo, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether the preset's weights hold every parameter of ``shapes``, same shapes."""
    try:
        header = read_weights_header(info)
    except PresetError:
        return False
    return all(name in header and tuple(header[name][1]) == shape for name, shape in shapes.items())


def builtin_textures() -> list[PresetInfo]:
    """The built-in texture presets that load, with their photo (engine/presets.py's scan)."""
    return [p for p in scan_presets([BUILTIN_DIR]).presets if p.kind == "texture" and (p.path / "exemplar.png").is_file()]


def choose_start(spec: str, exemplar: torch.Tensor, vgg, g_config: GeneratorConfig,
                 log=print) -> tuple[str, dict[str, torch.Tensor]] | None:
    """(the preset's name, G's parameters from it) to start from, or None for from scratch.

    ``spec``: "off"; "auto", the nearest built-in texture preset whose G fits (None when no
    built-in fits, and for a regular photo); or a texture preset's name or folder, which must
    fit (else ValueError)."""
    if spec == "off":
        return None
    shapes = parameter_shapes(g_config)
    if spec == "auto":
        if g_config.waves:
            log("G starts from scratch: a regular photo's periodic inputs are its own lattice's")
            return None
        fitting = [p for p in builtin_textures() if fits(p, shapes)]
        if not fitting:
            return None
        own = signature(exemplar, vgg)
        ranked = sorted((distance(own, _preset_signature(p, vgg, exemplar.device)), p.name, p) for p in fitting)
        d, _, info = ranked[0]
        log(f"G starts from the built-in preset {info.name!r}, the nearest to this photo "
            f"(distance {d:.2f}; next: {', '.join(f'{n} {x:.2f}' for x, n, _ in ranked[1:3]) or 'none'})")
    else:
        try:
            info = preset_from_arg(spec)
        except PresetError as e:
            raise ValueError(f"start_from: {e}") from None
        if info.kind != "texture":
            raise ValueError(f"start_from: preset {info.name!r} is a {info.kind} preset; G can start only "
                             "from a texture preset's weights")
        if not fits(info, shapes):
            raise ValueError(f"start_from: preset {info.name!r} has a G of another shape than this photo's (it lacks "
                             "inputs this one reads, periodic waves or a layout map, or its kind or widths differ); "
                             "pick another, 'auto' or 'off'")
        log(f"G starts from the preset {info.name!r}")
    try:  # every check a preset gets before synthesis: finite, in range, shapes as its config says
        source = dict(load_generator(info).named_parameters())
    except PresetError as e:
        raise ValueError(f"start_from: {e}") from None
    return info.name, {n: source[n].detach() for n in shapes}


def check_spec(spec: str) -> None:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"start_from must be 'auto', 'off' or a texture preset's name or folder, got {spec!r}")

