"""Which node to wire a texture into: decisions on plain node-like objects (``.type``,
``.name``, ``.inputs``), so they are testable without Blender."""
from __future__ import annotations

from typing import Any, Iterable

TEXTURE_NODE_LABEL = "MGAN Texture"


def principled_for_output(nodes: Iterable[Any]) -> Any | None:
    """The Principled BSDF to feed: the one linked into the active Material Output's
    Surface if there is one, else the first Principled BSDF, else None."""
    nodes = list(nodes)
    outputs = [n for n in nodes if n.type == "OUTPUT_MATERIAL"]
    outputs.sort(key=lambda n: not getattr(n, "is_active_output", False))
    for out in outputs:
        surface = out.inputs.get("Surface") if hasattr(out.inputs, "get") else None
        for link in getattr(surface, "links", ()) if surface is not None else ():
            if link.from_node.type == "BSDF_PRINCIPLED":
                return link.from_node
    return next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None)


def existing_texture_node(nodes: Iterable[Any]) -> Any | None:
    """The image node this add-on made before (by label), to update rather than duplicate."""
    return next((n for n in nodes if n.type == "TEX_IMAGE" and n.label == TEXTURE_NODE_LABEL), None)
