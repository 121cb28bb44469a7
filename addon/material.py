"""A generated PBR material in Blender: addon/material_plan.py's layout applied to a
material's node tree (main thread only). The decisions live in the plan; this only turns
them into bpy calls."""
from __future__ import annotations

import bpy

from .material_plan import (BSDF, LINKS, NODES, OUTPUT, find_labelled, material_name, material_output,
                            shader_nodes_needed, socket)
from .wiring import principled_for_output


def can_have_material(obj: bpy.types.Object | None) -> bool:
    return obj is not None and hasattr(obj.data, "materials")  # meshes, curves, text; not empties, lights


def material_for(obj: bpy.types.Object, preset: str) -> bpy.types.Material:
    """The object's active material, or a new one put in its active slot (a new slot if it
    has none). Raises ValueError for an object that cannot carry materials."""
    if not can_have_material(obj):
        raise ValueError(f"object '{obj.name}' ({obj.type.lower()}) cannot have a material; select a mesh")
    if obj.active_material is not None:
        return obj.active_material
    material = bpy.data.materials.new(material_name(preset))
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True  # from 5.0 every material has its node tree
    if len(obj.material_slots) == 0:
        obj.data.materials.append(material)
    else:
        obj.active_material = material
    return material


def _shader_nodes(material: bpy.types.Material):
    """(Principled BSDF, Material Output), made and linked where missing."""
    if bpy.app.version < (5, 0, 0) and not material.use_nodes:
        material.use_nodes = True
    tree = material.node_tree
    need_output, need_bsdf = shader_nodes_needed(tree.nodes, material.name)
    if need_output:
        tree.nodes.new("ShaderNodeOutputMaterial").location = (300, 0)
    output = material_output(tree.nodes)
    if need_bsdf:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        bsdf.location = (output.location.x - 300, output.location.y)
        tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    return principled_for_output(tree.nodes), output


def build_material(material: bpy.types.Material, images: dict[str, bpy.types.Image]) -> dict[str, bpy.types.Node]:
    """Wire ``images`` (role -> image) into ``material``: our nodes are found by label and
    updated, or created; returns them by label. ValueError if the material is shaded by
    something other than a Principled BSDF."""
    bsdf, output = _shader_nodes(material)
    tree = material.node_tree
    made = {BSDF: bsdf, OUTPUT: output}
    for spec in NODES:
        node = find_labelled(tree.nodes, spec)
        if node is None:
            node = tree.nodes.new(spec.idname)
            node.label = node.name = spec.label  # the name too: scripts can say nodes["MGAN Height"]
            node.location = (bsdf.location.x + spec.offset[0], bsdf.location.y + spec.offset[1])
            _apply(node, spec.initial_settings, spec.initial_inputs)
        _apply(node, spec.settings, spec.inputs)  # settings first: they enable the sockets linked below
        if spec.image is not None:
            node.image = images[spec.image]
        made[spec.label] = node
    for link in LINKS:
        # links.new replaces whatever fed the input before, so a re-run never adds a second link
        tree.links.new(socket(made[link.from_node].outputs, link.from_socket),
                       socket(made[link.to_node].inputs, link.to_socket))
    return made


def _apply(node: bpy.types.Node, settings: dict, inputs: dict) -> None:
    for attr, value in settings.items():
        setattr(node, attr, value)
    for key, value in inputs.items():
        socket(node.inputs, key).default_value = value
