"""A headless Blender render of objects textured with a generated seamless texture, for
the README (docs/render.png). The texture repeats 2x across the floor and 3x around the
sphere, so a seam would show as a grid of lines.

    python bench/render_scene.py [--preset soil] [--sphere-preset bricks]

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
import math, sys, bpy
args = sys.argv[sys.argv.index("--") + 1:]
floor_png, sphere_png, out = args[:3]
frames, width, height, samples = (int(a) for a in (args[3:7] or (0, 960, 540, 24)))
shot = args[7] if len(args) > 7 else "orbit"
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = samples
scene.cycles.seed = 0
scene.render.resolution_x, scene.render.resolution_y = width, height
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
if frames:  # a short shot: the camera orbits 2 degrees a frame, or stays and the sphere rolls
    cam, sphere = scene.camera, bpy.data.objects["Sphere"]
    scene.frame_start, scene.frame_end = 1, frames
    # locked: render noise changes every frame, as in a quick animation render
    scene.cycles.use_animated_seed = shot == "locked"
    for f in range(1, frames + 1):
        if shot == "orbit":
            a = math.radians(2.0 * (f - 1))
            cam.location = (7.0 * math.sin(a), -7.0 * math.cos(a), 2.4)
            cam.rotation_euler = (1.33, 0, a)
            cam.keyframe_insert("location", frame=f)
            cam.keyframe_insert("rotation_euler", frame=f)
        else:  # locked-off camera; the sphere rolls 0.15 units (0.15 rad) a frame
            sphere.location = (-1.0 + 0.15 * (f - 1), 0.5, 1.0)
            sphere.rotation_euler = (0, 0.15 * (f - 1), 0)
            sphere.keyframe_insert("location", frame=f)
            sphere.keyframe_insert("rotation_euler", frame=f)
    scene.render.filepath = out.rstrip("/") + "/frame_"
    bpy.ops.render.render(animation=True)
else:
    bpy.ops.render.render(write_still=True)
'''


def _render(preset: str, sphere_preset: str, texture_size: int, args: list[str]) -> None:
    """Synthesize the two textures, then run the scene script in Blender with ``args``."""
    with tempfile.TemporaryDirectory() as tmp:
        pngs = []
        for p in (preset, sphere_preset):
            png = Path(tmp) / f"{p}.png"
            subprocess.run([sys.executable, "-m", "engine.cli", "synth", "--preset", p, "--size",
                            f"{texture_size}x{texture_size}", "--seed", "7", "-o", str(png), "-q"],
                           cwd=ROOT, check=True)
            pngs.append(str(png))
        script = Path(tmp) / "scene.py"
        script.write_text(SCENE)
        subprocess.run([sys.executable, str(script), "--", *pngs, *args], check=True, cwd=tmp,
                       stdout=subprocess.DEVNULL)


def render_frames(out_dir: Path, frames: int = 8, size: tuple[int, int] = (384, 216), samples: int = 16,
                  preset: str = "soil", sphere_preset: str = "bricks", shot: str = "orbit") -> list[Path]:
    """Render a short shot of the scene into ``out_dir`` (frame_0001.png ...): ``orbit``, the
    camera circling the sphere, or ``locked``, a still camera and a rolling sphere."""
    if shot not in ("orbit", "locked"):
        raise ValueError(f"shot must be 'orbit' or 'locked', got {shot!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _render(preset, sphere_preset, 512, [str(out_dir), str(frames), str(size[0]), str(size[1]), str(samples), shot])
    return sorted(out_dir.glob("frame_*.png"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="soil")
    ap.add_argument("--sphere-preset", default="bricks")
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "render.png"))
    args = ap.parse_args()
    _render(args.preset, args.sphere_preset, 1024, [args.output])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
