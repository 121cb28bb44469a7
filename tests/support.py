"""Helpers shared by test modules (fixtures live in conftest.py)."""
import numpy as np
import torch

from engine.generator import Generator, GeneratorConfig
from engine.noise import NoiseParams
from engine.presets import open_preset, write_preset


def residual_preset(folder, widths=(32, 32, 16, 16), wave_vectors=(), harmonics=1, bond=False, layout=None,
                    stripes=False, repeat=(), fine=None):
    """A residual-G preset with random weights (no training): exercises its reach and its
    relu3_1/relu2_1 side inputs (and, with ``wave_vectors``, its periodic inputs; with
    ``layout``, (3,h,w) cells, a coarse layout quilted from them, or with ``repeat`` (h, w px)
    that repeat of them laid edge to edge; with ``fine``, the photo's 1/4 cells, the repeat's
    finer map too)."""
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(arch="residual", widths=widths, blocks=2, waves=len(wave_vectors),
                                  harmonics=harmonics, bond=bond, stripes=stripes,
                                  layout=tuple(layout.shape[-2:]) if layout is not None else (), repeat=repeat,
                                  fine=fine is not None))
    if wave_vectors:
        g.wave_vectors.copy_(torch.tensor(wave_vectors))
    if layout is not None:
        g.layout_source.copy_(layout)
        g.layout_mean.fill_(0.5)
        g.layout_std.fill_(0.1)
    if fine is not None:
        g.layout_fine.copy_(fine)
    g.set_feature_stats(torch.full((512,), 100.0), torch.full((512,), 200.0))
    g.set_feature_stats(torch.full((256,), 50.0), torch.full((256,), 100.0), "relu3_1")
    g.set_feature_stats(torch.full((128,), 20.0), torch.full((128,), 50.0), "relu2_1")
    write_preset(folder, {"name": folder.name, "kind": "texture", "noise": NoiseParams().to_dict()}, g)
    return open_preset(folder)



def addon_core(*modules: str) -> tuple:
    """Bpy-free modules of addon/, loaded as a package without running its __init__ (which
    registers with Blender)."""
    import importlib
    import sys
    import types

    from tests.conftest import ROOT

    name = "mgan_addon_core"
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(ROOT / "addon")]
        sys.modules[name] = pkg
    return tuple(importlib.import_module(f"{name}.{m}") for m in modules)


def running_bond(h=384, w=384, course=40, brick=84, mortar=4, seed=0):
    """A brick wall: courses of ``course`` px, bricks of ``brick`` px, each course shifted by
    half a brick, grey mortar, noisy bricks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    row = y // course
    shifted = (x + (row % 2) * brick // 2) % brick
    is_mortar = (y % course < mortar) | (shifted < mortar)
    img = np.where(is_mortar, 0.8, 0.45 + 0.08 * rng.standard_normal((h, w)))
    return np.repeat(img[..., None], 3, -1).clip(0, 1)


def boards(h=256, w=256, seed=0):
    """Vertical boards of uneven width (24..70 px), each with its own shade and a fine grain."""
    rng = np.random.default_rng(seed)
    edges = [0]
    while edges[-1] < w:
        edges.append(edges[-1] + int(rng.integers(24, 70)))
    img = np.zeros((h, w))
    for a, b in zip(edges, edges[1:]):
        img[:, a:min(b, w)] = 0.3 + 0.4 * rng.random()
        img[:, a] = 0.05  # the gap between boards
    cols = np.arange(w)
    img += 0.05 * np.sin(2 * np.pi * cols / 14.0)[None, :] + 0.02 * rng.standard_normal((h, w))
    return np.repeat(img[..., None], 3, axis=2)


def icc_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and gamma curves): its colorants are the
    XYZ (D50) of full red, green and blue. Lets the tests tag images with a colour space
    that is not sRGB, with nothing to download."""
    import struct

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(v):
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    text = name.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0" + b"none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + xyz((0.9642, 1.0, 0.8249))[8:]
              + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + data
