"""The node layout of a generated PBR material, as data, and the decisions made on a
material's existing nodes (plain node-like objects: ``.type``, ``.label``, ``.inputs``), so
all of it is testable without Blender. addon/material.py applies it with bpy.

    Texture Coordinate UV -> Mapping -> every Image Texture's Vector (one Mapping: moving or
    scaling it moves every map together)
    base colour (sRGB) x AO (Mix, Multiply) -> Principled Base Color
    roughness -> Roughness;  normal -> Normal Map (tangent) -> Normal
    height (float image: 16-bit levels) -> Displacement (midlevel 0.5) -> Material Output

Our nodes are found again by their labels, so a second run updates them in place. What
the engine's data needs (colour spaces, Repeat, Multiply, tangent space, midlevel 0.5, the
links) is set on every run; matters of taste (node positions, displacement scale, the AO
mix factor, height interpolation) only when a node is created, so a user's tweaks in the
node editor survive regenerating."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .connection import protocol
from .wiring import principled_for_output

BASE_COLOR = "basecolor"
ROLES = (BASE_COLOR, *protocol.MAP_NAMES)  # the images of one material, reply order
# Blender ID names longer than this are cut, and a cut name would never be found again.
MAX_NAME = 63

BSDF, OUTPUT = "<principled>", "<output>"  # the shader and output nodes, found by role, not label
LABEL_PREFIX = "MGAN "


def image_name(preset: str, seed: int, role: str) -> str:
    """'stone_s7_height': preset and seed say which texture it is; a long preset name is
    shortened so the whole name fits Blender's limit and stays findable."""
    tail = f"_s{int(seed)}_{role}"
    return preset[:max(1, MAX_NAME - len(tail))] + tail


def material_name(preset: str) -> str:
    return f"{LABEL_PREFIX}{preset}"[:MAX_NAME]


@dataclass(frozen=True)
class NodeSpec:
    """One node of the layout. ``settings`` and ``inputs`` (socket default values) are what
    the data needs and are applied on every run; ``initial_*`` only to a new node."""
    label: str
    idname: str            # bpy node type to create, e.g. ShaderNodeTexImage
    type: str              # its Node.type, to recognise it, e.g. TEX_IMAGE
    offset: tuple[float, float]  # from the Principled BSDF's location
    image: str | None = None     # the role of the image it shows
    settings: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    initial_settings: dict = field(default_factory=dict)
    initial_inputs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LinkSpec:
    """From ``from_node``'s output socket to ``to_node``'s input socket; nodes by label (or
    BSDF / OUTPUT), sockets by identifier or name (see ``socket``)."""
    from_node: str
    from_socket: str
    to_node: str
    to_socket: str


def _image_node(role: str, label: str, y: float, **initial_settings) -> NodeSpec:
    return NodeSpec(label, "ShaderNodeTexImage", "TEX_IMAGE", (-820.0, y), image=role,
                    settings={"extension": "REPEAT"}, initial_settings=initial_settings)


TEX_COORD, MAPPING = "MGAN Texture Coordinate", "MGAN Mapping"
AO_MULTIPLY, NORMAL_MAP, DISPLACEMENT = "MGAN AO Multiply", "MGAN Normal Map", "MGAN Displacement"
IMAGE_LABELS = {BASE_COLOR: "MGAN Base Color", "ao": "MGAN AO", "roughness": "MGAN Roughness",
                "normal": "MGAN Normal", "height": "MGAN Height"}
# 2 cm across the height map's full range: about the relief the normal map already shows
# (its range is 16 px deep at strength 1: 1.6 cm on a 1 m tile of 1024 px), so the bump
# that Cycles makes of the displacement agrees with it instead of exaggerating it.
DISPLACEMENT_SCALE = 0.02

NODES: tuple[NodeSpec, ...] = (
    NodeSpec(TEX_COORD, "ShaderNodeTexCoord", "TEX_COORD", (-1400.0, -200.0)),
    NodeSpec(MAPPING, "ShaderNodeMapping", "MAPPING", (-1200.0, -200.0), settings={"vector_type": "POINT"}),
    _image_node(BASE_COLOR, IMAGE_LABELS[BASE_COLOR], 320.0),
    _image_node("ao", IMAGE_LABELS["ao"], 40.0),
    _image_node("roughness", IMAGE_LABELS["roughness"], -240.0),
    _image_node("normal", IMAGE_LABELS["normal"], -520.0),
    # Bump from a linearly interpolated height map shows the pixel grid as facets.
    _image_node("height", IMAGE_LABELS["height"], -800.0, interpolation="Cubic"),
    NodeSpec(AO_MULTIPLY, "ShaderNodeMix", "MIX", (-420.0, 260.0),
             settings={"data_type": "RGBA", "blend_type": "MULTIPLY", "clamp_result": True},
             initial_inputs={"Factor_Float": 1.0}),
    NodeSpec(NORMAL_MAP, "ShaderNodeNormalMap", "NORMAL_MAP", (-420.0, -520.0), settings={"space": "TANGENT"}),
    # height 0.5 is the mean level (the protocol's height map), so the surface stays put on average
    NodeSpec(DISPLACEMENT, "ShaderNodeDisplacement", "DISPLACEMENT", (-420.0, -800.0),
             settings={"space": "OBJECT"}, inputs={"Midlevel": 0.5},
             initial_inputs={"Scale": DISPLACEMENT_SCALE}),
)

LINKS: tuple[LinkSpec, ...] = (
    LinkSpec(TEX_COORD, "UV", MAPPING, "Vector"),
    *(LinkSpec(MAPPING, "Vector", IMAGE_LABELS[role], "Vector") for role in ROLES),
    LinkSpec(IMAGE_LABELS[BASE_COLOR], "Color", AO_MULTIPLY, "A_Color"),
    LinkSpec(IMAGE_LABELS["ao"], "Color", AO_MULTIPLY, "B_Color"),
    LinkSpec(AO_MULTIPLY, "Result_Color", BSDF, "Base Color"),
    LinkSpec(IMAGE_LABELS["roughness"], "Color", BSDF, "Roughness"),
    LinkSpec(IMAGE_LABELS["normal"], "Color", NORMAL_MAP, "Color"),
    LinkSpec(NORMAL_MAP, "Normal", BSDF, "Normal"),
    LinkSpec(IMAGE_LABELS["height"], "Color", DISPLACEMENT, "Height"),
    LinkSpec(DISPLACEMENT, "Displacement", OUTPUT, "Displacement"),
)


def find_labelled(nodes: Iterable[Any], spec: NodeSpec) -> Any | None:
    """The node made by an earlier run: same label and same kind (a user's node that
    happens to share the label but is something else is left alone)."""
    return next((n for n in nodes if n.label == spec.label and n.type == spec.type), None)


def material_output(nodes: Iterable[Any]) -> Any | None:
    """The active Material Output, else the first one, else None."""
    outputs = [n for n in nodes if n.type == "OUTPUT_MATERIAL"]
    outputs.sort(key=lambda n: not getattr(n, "is_active_output", False))
    return outputs[0] if outputs else None


def shader_nodes_needed(nodes: Iterable[Any], material: str) -> tuple[bool, bool]:
    """(make a Material Output, make a Principled BSDF and link it to Surface). A material
    whose surface is another shader is not rewired behind the user's back: ValueError."""
    nodes = list(nodes)
    if principled_for_output(nodes) is not None:
        return material_output(nodes) is None, False
    output = material_output(nodes)
    surface = output.inputs.get("Surface") if output is not None else None
    taken = [link.from_node for link in getattr(surface, "links", ())] if surface is not None else []
    if taken:
        shader = getattr(taken[0], "bl_label", taken[0].type)
        raise ValueError(f"material '{material}' is shaded by a {shader} node, not a Principled BSDF; "
                         f"pick another material slot or remove the material")
    return output is None, True


def socket(sockets: Iterable[Any], key: str) -> Any:
    """A socket by identifier, else by name. The Mix node has several sockets named 'A'
    (float, vector, colour); only identifiers like 'A_Color' tell them apart."""
    sockets = list(sockets)
    for attr in ("identifier", "name"):
        found = next((s for s in sockets if getattr(s, attr, None) == key), None)
        if found is not None:
            return found
    raise KeyError(f"no socket {key!r}; have {', '.join(s.identifier for s in sockets)}")
