"""Variants, without bpy: N seeds of one preset at a small size, laid out in a row in one
image, and the name of the texture a user keeps (``<preset>_s<seed>``).

One image rather than N: the Image Editor shows one image at a time, so a row shows every
variant at once, at the same zoom, with nothing for the user to arrange; the panel puts one
Keep button per variant under it, left to right. The variants are separate requests (one
seed each), stepped as one job (``JobBatch``), so progress and Cancel work as for Generate.

A variant shows its seed at the panel's noise scale and 1:1 pixel scale, but it is not a
crop of the full-size texture of that seed: a tileable texture's noise wraps at the image
size, so another size is another random field of the same look."""
from __future__ import annotations

import numpy as np

from .connection import client, protocol
from .material_plan import MAX_NAME

VARIANTS_IMAGE = "MGAN Variants"
MAX_SEED = 2**31 - 1  # Blender's IntProperty: the seed field and Keep's seed are 32-bit
MIN_SIDE = int(protocol.SPECS["synthesize"].fields["width"].lo)  # the smallest texture the engine makes
GAP = 4  # dark pixels between two variants, so tileable neighbours do not read as one texture
GAP_VALUE = 24


def texture_name(preset: str, seed: int) -> str:
    """'stone_s7': which texture an image holds; a long preset name is shortened so the whole
    name fits Blender's limit (and is found again, not duplicated, by the next run)."""
    tail = f"_s{int(seed)}"
    return preset[:max(1, MAX_NAME - len(tail))] + tail


def variant_seeds(first: int, count: int) -> list[int]:
    """``count`` consecutive seeds from ``first`` (moved down if the last would not fit a
    32-bit seed field)."""
    count = max(1, int(count))
    start = min(max(0, int(first)), MAX_SEED - (count - 1))
    return list(range(start, start + count))


def variant_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) of one variant: the panel's aspect ratio, its longer side ``size``
    (never larger than the texture itself, never under the protocol's 8 px)."""
    scale = min(1.0, size / max(width, height))
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def row_of(tiles: list[np.ndarray], gap: int = GAP, gap_value: int = GAP_VALUE) -> np.ndarray:
    """(H, W, 3) uint8 tiles of one shape -> one (H, N*W + (N-1)*gap, 3) uint8 image, left to
    right in the given order. ValueError if the tiles are not all that (an engine's reply)."""
    if not tiles:
        raise ValueError("no variants to show")
    shape = tiles[0].shape
    for tile in tiles:
        if tile.dtype != np.uint8 or tile.ndim != 3 or tile.shape[2] != 3 or tile.shape != shape:
            raise ValueError(f"each variant must be a {shape[0]}x{shape[1]}x3 uint8 image, got "
                             f"{tile.dtype} {tile.shape}")
    h, w, _ = shape
    n = len(tiles)
    row = np.full((h, n * w + (n - 1) * gap, 3), gap_value, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        row[:, i * (w + gap): i * (w + gap) + w] = tile
    return row


class JobBatch:
    """Several EngineJobs (addon/jobs.py) stepped as one, with EngineJob's interface (start,
    step, run, cancel, fraction, reply): the engine queues the requests and answers each;
    ``reply`` is the list of replies, in the jobs' order. The first failure cancels the rest
    and is raised (client.EngineError)."""

    def __init__(self, jobs: list):
        self.jobs = jobs
        self.reply: list | None = None

    def start(self) -> "JobBatch":
        try:
            for job in self.jobs:
                job.start()
        except client.EngineError:
            self.cancel()  # the ones already sent
            raise
        return self

    @property
    def fraction(self) -> float:
        return sum(1.0 if job.reply is not None else job.fraction for job in self.jobs) / len(self.jobs)

    def step(self, wait: float = 0.0) -> bool:
        if self.reply is not None:
            return True
        for job in self.jobs:
            if job.reply is not None:
                continue
            try:
                job.step(wait)
            except client.EngineError:
                self.cancel(but=job)  # the engine has finished with the failed one
                raise
            wait = 0.0  # block (if asked to) on one job, not once per job
        if all(job.reply is not None for job in self.jobs):
            self.reply = [job.reply for job in self.jobs]
            return True
        return False

    def run(self, poll: float = 0.05) -> "JobBatch":
        while not self.step(poll):
            pass
        return self

    def cancel(self, but=None) -> None:
        for job in self.jobs:
            if job is not but and job.reply is None and not job.cancelled:
                job.cancel()
