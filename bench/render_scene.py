"""Headless Blender renders for the README.

docs/render.png: objects textured with a generated seamless texture. The texture repeats
2x across the floor and 3x around the sphere, so a seam would show as a grid of lines.

    python bench/render_scene.py [--preset soil] [--sphere-preset bricks]

docs/material.jpg: one preset on a plane under a low, grazing sun, twice: the base colour
alone (what Generate wires) beside the full material of Generate material (base colour x AO,
roughness, normal map, height as bump), so the relief shows. Both materials are built by
the add-on's own code (addon/images.py, addon/material.py) from the maps of
``mgan synth --maps all``.

    python bench/render_scene.py --material [--preset stone] [--samples 64] [-o docs/material.jpg]

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

# Cycles on the CPU, fixed seed: both scripts start their scene with it.
CYCLES = """scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = samples
scene.cycles.seed = 0"""

SCENE = r'''
import math, sys, bpy
args = sys.argv[sys.argv.index("--") + 1:]
floor_png, sphere_png, out = args[:3]
frames, width, height, samples = (int(a) for a in (args[3:7] or (0, 960, 540, 24)))
shot = args[7] if len(args) > 7 else "orbit"
bpy.ops.wm.read_factory_settings(use_empty=True)
{CYCLES}
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
'''.replace("{CYCLES}", CYCLES)


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


MATERIAL_SCENE = r"""
import importlib, math, sys, types
import bpy
import numpy as np
args = sys.argv[sys.argv.index("--") + 1:]
root, maps_dir, out_dir = args[:3]
side, samples = int(args[3]), int(args[4])
sys.path.insert(0, root)  # the add-on from this checkout: its wire modules come from engine/
package = types.ModuleType("mgan_addon")
package.__path__ = [root + "/addon"]
sys.modules["mgan_addon"] = package
images = importlib.import_module("mgan_addon.images")
material = importlib.import_module("mgan_addon.material")
plan = importlib.import_module("mgan_addon.material_plan")

bpy.ops.wm.read_factory_settings(use_empty=True)
{CYCLES}
scene.cycles.use_denoising = True
scene.render.resolution_x = scene.render.resolution_y = side
scene.render.image_settings.file_format = "PNG"

# the arrays exactly as the engine sends them (top row first); the add-on writes them in
arrays = {role: np.load(f"{maps_dir}/{role}.npy") for role in plan.ROLES}
made = {plan.BASE_COLOR: images.write_image("basecolor", arrays[plan.BASE_COLOR])}
made.update({m: images.write_map_image(m, arrays[m]) for m in plan.ROLES[1:]})

bpy.ops.mesh.primitive_plane_add(size=10)
plane = bpy.context.object
for loop in plane.data.uv_layers.active.data:  # a 1 m tile, through both materials alike
    loop.uv = loop.uv * 10
alone = bpy.data.materials.new("base colour alone")
images.wire_texture(alone, made[plan.BASE_COLOR])
full = bpy.data.materials.new("full material")
material.build_material(full, made)
plane.data.materials.append(alone)

# a sun 15 degrees above the horizon, from the left: relief casts long shading
bpy.ops.object.light_add(type="SUN", rotation=(0, math.radians(-75), math.radians(-20)))
bpy.context.object.data.energy = 5.0
bpy.context.object.data.angle = math.radians(2.0)
world = bpy.data.worlds.new("world")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.2
scene.world = world
bpy.ops.object.camera_add(location=(0, -0.8, 1.3), rotation=(math.radians(35), 0, 0))
scene.camera = bpy.context.object
scene.camera.data.lens = 35

for name, mat in (("alone", alone), ("full", full)):
    plane.material_slots[0].material = mat
    scene.render.filepath = f"{out_dir}/{name}.png"
    bpy.ops.render.render(write_still=True)
""".replace("{CYCLES}", CYCLES)


def render_material(out: Path, preset: str = "stone", seed: int = 7, texture_size: int = 512,
                    side: int = 384, samples: int = 64) -> Path:
    """docs/material.jpg: the base colour alone beside Generate material's full material,
    both ``side`` px square and labelled."""
    import numpy as np
    from PIL import Image, ImageDraw

    from engine.images import read_png16

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "engine.cli", "synth", "--preset", preset, "--size",
                        f"{texture_size}x{texture_size}", "--seed", str(seed), "--maps", "all",
                        "-o", str(tmp / "maps") + "/", "-q"], cwd=ROOT, check=True)
        # the PNGs back to the arrays the engine sends: (H,W,C), height 16-bit
        for role in ("basecolor", "height", "normal", "roughness", "ao"):
            png = tmp / "maps" / f"{preset}_{role}.png"
            data = read_png16(png) if role == "height" else np.asarray(Image.open(png))
            np.save(tmp / f"{role}.npy", data.reshape(*data.shape[:2], -1))
        script = tmp / "material_scene.py"
        script.write_text(MATERIAL_SCENE)
        subprocess.run([sys.executable, str(script), "--", str(ROOT), str(tmp), str(tmp), str(side), str(samples)],
                       check=True, cwd=tmp, stdout=subprocess.DEVNULL)
        panels = [Image.open(tmp / f"{name}.png").convert("RGB") for name in ("alone", "full")]
    labels = ["base colour alone (Generate)",
              "Generate material: x AO, roughness, normal, height (bump)"]
    bar, gap = 20, 6
    canvas = Image.new("RGB", (2 * side + gap, side + bar), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (panel, label) in enumerate(zip(panels, labels)):
        canvas.paste(panel, (i * (side + gap), bar))
        draw.text((i * (side + gap) + 4, 4), label, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, quality=90)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default=None, help="floor preset (soil), or with --material the material's (stone)")
    ap.add_argument("--sphere-preset", default="bricks")
    ap.add_argument("--material", action="store_true",
                    help="render docs/material.jpg: base colour alone beside the full material")
    ap.add_argument("--samples", type=int, default=64, help="Cycles samples per pixel (--material)")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args()
    if args.material:
        out = render_material(Path(args.output or ROOT / "docs" / "material.jpg"), args.preset or "stone",
                              samples=args.samples)
    else:
        out = Path(args.output or ROOT / "docs" / "render.png")
        _render(args.preset or "soil", args.sphere_preset, 1024, [str(out)])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
