"""A headless Blender render of objects textured with a generated seamless texture, for
the README (docs/render.png). The texture repeats 2x across the floor and 3x around the
sphere, so a seam would show as a grid of lines.

    python bench/render_scene.py [--preset gravel] [--sphere-preset brick]

The textures are synthesized by ``mgan synth``; Blender (the ``bpy`` module) runs in a
child process of its own, never beside torch.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENE = r'''
import sys, bpy
floor_png, sphere_png, out = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 24
scene.render.resolution_x, scene.render.resolution_y = 960, 540
scene.render.filepath = out

def material(name, png, repeat):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(png)
    tex.image.colorspace_settings.name = "sRGB"
    tex.extension = "REPEAT"
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (repeat, repeat, 1)
    links.new(coords.outputs["UV"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.8
    return mat

bpy.ops.mesh.primitive_plane_add(size=8)
bpy.context.object.data.materials.append(material("floor", floor_png, 2))
bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=(0, 0.5, 1.0), segments=64, ring_count=32)
bpy.ops.object.shade_smooth()
bpy.context.object.data.materials.append(material("sphere", sphere_png, 3))
bpy.ops.object.light_add(type="SUN", rotation=(0.7, 0.2, 0.6))
bpy.context.object.data.energy = 3.0
world = bpy.data.worlds.new("world")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
scene.world = world
bpy.ops.object.camera_add(location=(0, -7.0, 2.4), rotation=(1.33, 0, 0))
scene.camera = bpy.context.object
bpy.ops.render.render(write_still=True)
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gravel")
    ap.add_argument("--sphere-preset", default="brick")
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "render.png"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pngs = []
        for preset in (args.preset, args.sphere_preset):
            png = Path(tmp) / f"{preset}.png"
            subprocess.run([sys.executable, "-m", "engine.cli", "synth", "--preset", preset, "--size", "1024x1024",
                            "--seed", "7", "-o", str(png), "-q"], cwd=ROOT, check=True)
            pngs.append(str(png))
        script = Path(tmp) / "scene.py"
        script.write_text(SCENE)
        subprocess.run([sys.executable, str(script), "--", *pngs, args.output], check=True,
                       cwd=tmp, stdout=subprocess.DEVNULL)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
