"""The add-on in real Blender (the `bpy` module, headless): the built extension zip goes in
through Blender's own extension machinery, then generates textures from a real engine. Every
scenario runs in each Blender of tests/blender_proc.py: 5.0 (Python 3.11) and 5.3 (Python
3.13); the engine runs on the project's own Python (.venv, torch) for both.

Each scenario runs in a fresh process of that Blender's Python (bpy can be loaded once per
process, and Blender's libraries stay apart from torch's) with its own Blender user folder
(BLENDER_USER_RESOURCES), and prints one JSON line of findings for the test to check.

Headless Blender has no event loop, so modal operators and timers never run: the tests
call `bpy.ops.mgan.generate()` (EXEC), which steps the very same EngineJob in a blocking
loop; only the timer that steps it in the UI is not exercised here. Nor is undo: in
background mode Blender keeps no undo stack (`bpy.ops.ed.undo.poll()` is False, with or
without a window context override), so the tests check what makes Ctrl-Z work in the UI,
the operator's UNDO option, and that headless undo is indeed unavailable."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.blender_proc import MODULE, PRELUDE, blender_env, run_blender
from tests.conftest import ROOT
from tests.engine_proc import EngineProcess, engine_home

pytestmark = pytest.mark.slow


def test_the_zip_installs_as_an_extension_and_registers_twice(tmp_path, addon_zip, blender):
    found = run_blender(blender, tmp_path, """
        mod = install()
        def render_hooks():
            return [h.__name__ for kind in ("render_write", "render_init", "render_post", "render_complete",
                                            "render_cancel") for h in getattr(bpy.app.handlers, kind)] == [
                "on_render_write", "on_render_init", "on_render_post", "on_render_complete", "on_render_cancel"]
        cycles = []
        for _ in range(2):
            addon_utils.disable(MODULE, default_set=True)
            off = (MODULE in bpy.context.preferences.addons, hasattr(bpy.types.Scene, "mgan"),
                   hasattr(bpy.types, "MGAN_PT_image_editor"), hasattr(bpy.types, "MGAN_OT_generate"),
                   render_hooks())
            addon_utils.enable(MODULE, default_set=True)
            on = (MODULE in bpy.context.preferences.addons, hasattr(bpy.types.Scene, "mgan"),
                  hasattr(bpy.types, "MGAN_PT_image_editor"), hasattr(bpy.types, "MGAN_OT_generate"),
                  render_hooks())
            cycles.append([off, on])
        prefs = bpy.context.preferences.addons[MODULE].preferences

        panels, state = sys.modules[MODULE + ".panels"], sys.modules[MODULE + ".properties"].STATE
        drawn = []
        for running in (False, True):
            state.running = running
            layout = Layout()
            panels.draw_panel(layout, bpy.context)
            panels.draw_training(layout, bpy.context)
            drawn.append(layout.calls)
        state.running = False
        settings = bpy.context.scene.mgan
        props = sorted({c[1][0] for calls in drawn for c in calls if c[0] == "prop"})
        emit(cycles=cycles, props_missing=[p for p in props if not hasattr(settings, p)], n_props=len(props),
             drawn_ops=sorted({c[1][0] for calls in drawn for c in calls if c[0] == "operator"}),
             endpoint=prefs.endpoint, auto_start=prefs.auto_start,
             wire=sys.modules[MODULE + ".connection"].client.__name__,
             torch=[m for m in sys.modules if m == "torch" or m.startswith("torch.")],
             classes=[c.__name__ for c in mod.classes], ops=sorted(dir(bpy.ops.mgan)),
             user_repo=[r.directory for r in bpy.context.preferences.extensions.repos if r.module == "user_default"][0],
             site_packages=sorted(p.name for p in __import__("pathlib").Path(
                 bpy.utils.user_resource("EXTENSIONS"), ".local", "lib", "python" + args["python_version"],
                 "site-packages").iterdir()))
    """, zip=addon_zip, python_version=blender.python_version)
    assert found["cycles"] == [[[False] * 5, [True] * 5]] * 2
    assert found["endpoint"] == "tcp://127.0.0.1:5757" and found["auto_start"] is False
    assert found["wire"] == MODULE + ".wire.client"  # the bundled copy, not the checkout's engine
    assert found["torch"] == []
    assert found["user_repo"].startswith(str(tmp_path))
    assert any(name.startswith("pyzmq-") and name.endswith(".dist-info") for name in found["site_packages"])
    assert {"generate", "generate_material", "cancel", "refresh", "start_engine", "stop_engine",
            "train"} <= set(found["ops"])
    assert found["classes"][0] == "MGAN_AddonPreferences"
    assert found["props_missing"] == [] and found["n_props"] >= 19  # the map settings included
    assert set(found["drawn_ops"]) == {"mgan.refresh", "mgan.generate", "mgan.generate_material", "mgan.cancel",
                                       "mgan.train"}
    assert {"mgan." + op for op in found["ops"]} >= set(found["drawn_ops"])


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    home = engine_home(tmp_path_factory.mktemp("engine"))
    proc = EngineProcess(home, "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


GENERATE = """
    mod = install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    bpy.ops.mesh.primitive_plane_add()
    obj = bpy.context.object
    material = bpy.data.materials.new("Test material")
    material.use_nodes = True
    obj.data.materials.append(material)
    obj.active_material = material
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    s = bpy.context.scene.mgan
    s.preset, s.width, s.height, s.seed, s.tileable = "tiny", args["width"], args["height"], args["seed"], True
    out = {}
    for float_buffer in (False, True):
        s.float_buffer, s.image_name = float_buffer, "MGAN float" if float_buffer else "MGAN byte"
        t0 = time.monotonic()
        assert bpy.ops.mgan.generate() == {"FINISHED"}
        image = bpy.data.images[s.image_name]
        pixels = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(pixels)
        np.save(args["out"] + f"/{int(float_buffer)}.npy", pixels)
        out[str(int(float_buffer))] = dict(size=list(image.size), colorspace=image.colorspace_settings.name,
                                           is_float=image.is_float, packed=image.packed_file is not None,
                                           seconds=time.monotonic() - t0)
    # Blender's own colour management, to check the add-on's sRGB decoding against
    from mathutils import Color
    probe = [i / 255 for i in range(256)]
    blender_linear = [Color((v, v, v)).from_srgb_to_scene_linear()[0] for v in probe]
    nodes, links = material.node_tree.nodes, material.node_tree.links
    tex = [n for n in nodes if n.type == "TEX_IMAGE"]
    wired = [(l.from_node.name, l.from_socket.name, l.to_node.type, l.to_socket.name) for l in links
             if l.to_socket.name == "Base Color"]
    emit(images=out, blender_linear=blender_linear, n_tex=len(tex), tex_image=tex[0].image.name,
         extension=tex[0].extension, wired=wired, tex_name=tex[0].name,
         hello=bpy.context.preferences.addons[MODULE].preferences.endpoint)
"""


def test_generate_writes_the_engines_pixels_and_wires_the_material(tmp_path, addon_zip, blender, engine):
    from engine.client import EngineClient

    width, height, seed = 40, 24, 11  # not square: a transposed image cannot pass
    found = run_blender(blender, tmp_path, GENERATE, zip=addon_zip, endpoint=engine.connect_address(), width=width,
                        height=height, seed=seed, out=tmp_path)
    with EngineClient(engine.connect_address()) as c:
        expected = np.array(c.synthesize("tiny", width, height, seed=seed, tileable=True))
    assert expected.shape == (height, width, 3) and expected.std() > 0  # rows differ: orientation is visible

    byte = found["images"]["0"]
    assert byte["size"] == [width, height] and byte["colorspace"] == "sRGB" and not byte["is_float"]
    assert byte["packed"]
    rgba = np.load(tmp_path / "0.npy").reshape(height, width, 4)
    assert np.array_equal(np.rint(rgba[::-1, :, :3] * 255).astype(np.uint8), expected)  # bottom-up in Blender
    assert np.all(rgba[:, :, 3] == 1.0)

    flt = found["images"]["1"]
    assert flt["size"] == [width, height] and flt["is_float"]
    linear = np.load(tmp_path / "1.npy").reshape(height, width, 4)[::-1, :, :3]
    blender_linear = np.asarray(found["blender_linear"], dtype=np.float32)
    np.testing.assert_allclose(linear, blender_linear[expected], atol=2e-4)  # scene-linear, as Blender decodes sRGB

    # one texture node (the second run updated it), repeat, into the Principled BSDF's Base Color
    assert found["n_tex"] == 1 and found["tex_image"] == "MGAN float" and found["extension"] == "REPEAT"
    assert found["wired"] == [[found["tex_name"], "Color", "BSDF_PRINCIPLED", "Base Color"]]


GENERATE_MATERIAL = """
    import pathlib
    mod = install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    op_class = sys.modules[MODULE + ".op_generate_material"].MGAN_OT_generate_material
    out_dir = pathlib.Path(args["out"])
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    s = bpy.context.scene.mgan
    s.preset, s.width, s.height, s.seed, s.tileable = "tiny", args["width"], args["height"], args["seed"], True

    def material_state(obj, tag):
        material = obj.active_material
        nodes = material.node_tree.nodes
        name = lambda n: n.label or n.type  # ours by label, Blender's own by kind
        images = {}
        for n in nodes:
            if n.type == "TEX_IMAGE":
                pixels = np.empty(len(n.image.pixels), dtype=np.float32)
                n.image.pixels.foreach_get(pixels)
                np.save(out_dir / f"{tag}_{n.label}.npy", pixels)
                images[n.label] = dict(image=n.image.name, size=list(n.image.size), extension=n.extension,
                                       colorspace=n.image.colorspace_settings.name, is_float=n.image.is_float,
                                       packed=n.image.packed_file is not None, interpolation=n.interpolation)
        by = {name(n): n for n in nodes}
        return dict(
            material=material.name, slots=len(obj.material_slots), n_nodes=len(nodes),
            n_links=len(material.node_tree.links),
            nodes=sorted(name(n) for n in nodes), images=images,
            links=sorted([name(l.from_node), l.from_socket.identifier, name(l.to_node), l.to_socket.identifier,
                          l.is_valid] for l in material.node_tree.links),
            mix=[by["MGAN AO Multiply"].data_type, by["MGAN AO Multiply"].blend_type],
            normal_space=by["MGAN Normal Map"].space,
            displacement=[by["MGAN Displacement"].inputs["Midlevel"].default_value,
                          by["MGAN Displacement"].inputs["Scale"].default_value],
            n_images=len(bpy.data.images))

    found = {"undo_option": sorted(op_class.bl_options), "undo_poll_headless": bpy.ops.ed.undo.poll()}
    # 1. a plane with no material: one is made and assigned; the panel shows the preset's settings
    bpy.ops.mesh.primitive_plane_add()
    plane = bpy.context.object
    assert bpy.ops.mgan.generate_material() == {"FINISHED"}
    found["first"] = material_state(plane, "first")
    found["shown"] = {k: getattr(s, "map_" + k) for k in ("height_scale", "normal_strength", "roughness_min",
                                                           "roughness_max", "ao_radius", "ao_strength")}
    # the user tweaks a node's taste, then regenerates: nothing duplicated, the tweak kept
    plane.active_material.node_tree.nodes["MGAN Displacement"].inputs["Scale"].default_value = 0.2
    assert bpy.ops.mgan.generate_material() == {"FINISHED"}
    found["again"] = material_state(plane, "again")
    s.seed = args["seed"] + 1
    assert bpy.ops.mgan.generate_material() == {"FINISHED"}
    found["reseeded"] = material_state(plane, "reseeded")

    # 2. a cube with its own material and custom map settings: that material gets our nodes
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.object
    own = bpy.data.materials.new("Own material")
    if bpy.app.version < (5, 0, 0):
        own.use_nodes = True
    cube.data.materials.append(own)
    s.seed, s.map_override = args["seed"], True
    for key, value in json.loads(args["custom"]).items():
        setattr(s, "map_" + key, value)
    assert bpy.ops.mgan.generate_material() == {"FINISHED"}
    found["custom"] = material_state(cube, "custom")

    # packed images keep their pixels (the height its 16 bits) through save and reload
    path, plane_name = str(out_dir / "saved.blend"), plane.name
    # the plane again, at the first seed and with the custom settings still on
    s.seed = args["seed"]
    bpy.context.view_layer.objects.active = plane
    assert bpy.ops.mgan.generate_material() == {"FINISHED"}
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    found["reloaded"] = material_state(bpy.data.objects[plane_name], "reloaded")
    emit(**found)
"""


def _material_pixels(tmp_path, tag: str, label: str, height: int, width: int, scale: int) -> np.ndarray:
    """A Blender image saved by GENERATE_MATERIAL back to the engine's integers, top-down."""
    rgba = np.load(tmp_path / f"{tag}_{label}.npy").reshape(height, width, 4)[::-1]
    assert np.all(rgba[..., 3] == 1.0)
    return np.rint(rgba[..., :3] * scale).astype(np.int64)


def test_generate_material_wires_every_map_with_the_engines_pixels(tmp_path, addon_zip, blender, engine):
    from engine.client import EngineClient
    from engine.protocol import MAP_FRAMES, MAP_NAMES

    width, height, seed = 40, 24, 11  # not square: a transposed map cannot pass
    custom = {"height_scale": -2.0, "normal_strength": 3.0, "roughness_min": 0.1, "roughness_max": 0.6,
              "ao_radius": 8.0, "ao_strength": 2.0}
    found = run_blender(blender, tmp_path, GENERATE_MATERIAL, zip=addon_zip, endpoint=engine.connect_address(),
                        width=width, height=height, seed=seed, out=tmp_path, custom=json.dumps(custom))

    # Ctrl-Z: the operator declares UNDO (Blender pushes a step when it finishes); headless
    # Blender has no undo stack, so undoing itself cannot be exercised here
    assert "UNDO" in found["undo_option"] and "REGISTER" in found["undo_option"]
    assert found["undo_poll_headless"] is False

    labels = {"basecolor": "MGAN Base Color", "height": "MGAN Height", "normal": "MGAN Normal",
              "roughness": "MGAN Roughness", "ao": "MGAN AO"}
    first = found["first"]
    assert first["material"] == "MGAN tiny" and first["slots"] == 1
    assert sorted(first["nodes"]) == sorted(
        ["BSDF_PRINCIPLED", "OUTPUT_MATERIAL", "MGAN Texture Coordinate", "MGAN Mapping", "MGAN AO Multiply",
         "MGAN Normal Map", "MGAN Displacement", *labels.values()])
    for role, label in labels.items():
        image = first["images"][label]
        assert image["image"] == f"tiny_s{seed}_{role}" and image["size"] == [width, height]
        assert image["extension"] == "REPEAT" and image["packed"]
        assert image["colorspace"] == ("sRGB" if role == "basecolor" else "Non-Color")
        assert image["is_float"] == (role == "height")  # 16-bit levels need a float buffer
    assert first["images"]["MGAN Height"]["interpolation"] == "Cubic"
    assert all(link[4] for link in first["links"])  # every link valid (the Mix node's colour sockets)
    assert {tuple(link[:4]) for link in first["links"]} == {
            ("MGAN Texture Coordinate", "UV", "MGAN Mapping", "Vector"),
            *(("MGAN Mapping", "Vector", label, "Vector") for label in labels.values()),
            ("MGAN Base Color", "Color", "MGAN AO Multiply", "A_Color"),
            ("MGAN AO", "Color", "MGAN AO Multiply", "B_Color"),
            ("MGAN AO Multiply", "Result_Color", "BSDF_PRINCIPLED", "Base Color"),
            ("MGAN Roughness", "Color", "BSDF_PRINCIPLED", "Roughness"),
            ("MGAN Normal", "Color", "MGAN Normal Map", "Color"),
            ("MGAN Normal Map", "Normal", "BSDF_PRINCIPLED", "Normal"),
            ("MGAN Height", "Color", "MGAN Displacement", "Height"),
            ("MGAN Displacement", "Displacement", "OUTPUT_MATERIAL", "Displacement"),
            ("BSDF_PRINCIPLED", "BSDF", "OUTPUT_MATERIAL", "Surface")}
    assert first["mix"] == ["RGBA", "MULTIPLY"] and first["normal_space"] == "TANGENT"
    assert first["displacement"][0] == 0.5

    # re-runs update in place: same nodes, links and images; a user's tweak survives
    again, reseeded = found["again"], found["reseeded"]
    for state in (again, reseeded):
        assert (state["material"], state["slots"], state["n_nodes"], state["n_links"], state["nodes"]) == (
            first["material"], 1, first["n_nodes"], first["n_links"], first["nodes"])
        assert [link[:4] for link in state["links"]] == [link[:4] for link in first["links"]]
        assert state["displacement"] == [0.5, pytest.approx(0.2)]
    assert again["n_images"] == first["n_images"]  # the same five images, rewritten
    assert {i["image"] for i in reseeded["images"].values()} == {f"tiny_s{seed + 1}_{r}" for r in labels}

    # pixels: each Blender image holds exactly the engine's reply (a direct request)
    fields = {"preset": "tiny", "width": width, "height": height, "seed": seed, "tileable": True, "dtype": "uint8",
              "maps": list(MAP_NAMES)}
    with EngineClient(engine.connect_address()) as c:
        plain = c.call("synthesize", {**fields, "map_settings": {"normal_convention": "opengl"}})
        tuned = c.call("synthesize", {**fields, "map_settings": {**custom, "normal_convention": "opengl"}})
        reseeded_reply = c.call("synthesize", {**fields, "seed": seed + 1})
    for tag, reply in (("first", plain), ("custom", tuned), ("reloaded", tuned), ("reseeded", reseeded_reply)):
        sent = dict(zip(["basecolor", *reply.header["maps"]], reply.payloads))
        assert set(sent) == set(labels)
        for role, data in sent.items():
            dtype, channels = MAP_FRAMES.get(role, ("uint8", 3))
            got = _material_pixels(tmp_path, tag, labels[role], height, width, 65535 if dtype == "uint16" else 255)
            expected = np.asarray(data).astype(np.int64)
            assert expected.shape == (height, width, channels) and expected.std() > 0, role
            if channels == 1:  # a one-channel map is grey in Blender
                assert np.array_equal(got[..., 1], got[..., 0]) and np.array_equal(got[..., 2], got[..., 0])
            assert np.array_equal(got[..., :channels], expected), (tag, role)
    # the panel showed the preset's resolved settings after the plain run; custom ones were used
    assert found["shown"] == pytest.approx({k: plain.header["map_settings"][k] for k in found["shown"]})
    assert {k: tuned.header["map_settings"][k] for k in custom} == pytest.approx(custom)
    cube = found["custom"]
    assert cube["material"] == "Own material" and cube["slots"] == 1
    assert cube["nodes"] == first["nodes"] and cube["n_links"] == first["n_links"]
    assert cube["displacement"] == [0.5, pytest.approx(0.02)]  # a new node gets the default


def test_engine_down_is_a_clear_error_within_the_deadline(tmp_path, addon_zip, blender):
    found = run_blender(blender, tmp_path, """
        install()
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.endpoint = args["endpoint"]
        errors = {}
        for op in ("refresh", "generate", "generate_material"):
            t0 = time.monotonic()
            try:
                result = getattr(bpy.ops.mgan, op)()
            except RuntimeError as exc:  # how bpy.ops surfaces an operator's report({'ERROR'})
                result = str(exc)
            errors[op] = [result if isinstance(result, str) else sorted(result), time.monotonic() - t0]
        s = bpy.context.scene.mgan
        conn = sys.modules[MODULE + ".connection"]
        conn.LINK.presets = [{"name": "tiny"}]  # as if the engine had been up a moment ago
        s.preset = "tiny"
        t0 = time.monotonic()
        try:
            result = bpy.ops.mgan.generate()
        except RuntimeError as exc:
            result = str(exc)
        errors["generate_with_preset"] = [result if isinstance(result, str) else sorted(result),
                                          time.monotonic() - t0]
        bpy.context.view_layer.objects.active = None
        try:
            result = bpy.ops.mgan.generate_material()
        except RuntimeError as exc:
            result = str(exc)
        errors["material_without_object"] = result if isinstance(result, str) else sorted(result)
        # Blender keeps working: other operators run, the add-on is idle again
        bpy.ops.mesh.primitive_cube_add()
        emit(errors=errors, cube=bpy.context.object.name, idle=bpy.ops.mgan.generate.poll(),
             running=sys.modules[MODULE + ".properties"].STATE.running)
    """, zip=addon_zip, endpoint=f"ipc://{tmp_path}/nobody.sock")
    errors = found["errors"]
    refresh_msg, refresh_s = errors["refresh"]
    assert "did not answer hello" in refresh_msg and "is it running" in refresh_msg and refresh_s < 10
    assert "no preset chosen" in errors["generate"][0] and "no preset chosen" in errors["generate_material"][0]
    assert "select a mesh object" in errors["material_without_object"]  # said before asking the engine
    msg, seconds = errors["generate_with_preset"]
    assert "did not answer hello within 3 s" in msg and "nobody.sock" in msg
    assert 2.5 < seconds < 10  # the quick hello deadline, not the 600 s compute deadline
    assert "Traceback" not in msg
    assert found["cube"].startswith("Cube") and found["idle"] is True and found["running"] is False


def test_auto_start_runs_the_engine_and_unregister_stops_it(tmp_path, addon_zip, blender):
    home = engine_home(tmp_path / "engine")
    found = run_blender(blender, tmp_path, """
        install()
        proc_mod = sys.modules[MODULE + ".engine_process"]
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.endpoint, prefs.python_executable, prefs.project_folder = args["endpoint"], args["python"], args["root"]
        prefs.auto_start = True  # the preference's update starts the engine (on .venv's Python, with torch)
        proc = proc_mod._process
        t0 = time.monotonic()
        while bpy.ops.mgan.refresh.poll() and time.monotonic() - t0 < 120:
            try:
                if bpy.ops.mgan.refresh() == {"FINISHED"}:
                    break
            except RuntimeError:
                time.sleep(0.5)
        s = bpy.context.scene.mgan
        s.preset, s.width, s.height, s.add_to_material = "tiny", 16, 16, False
        generated = sorted(bpy.ops.mgan.generate())
        alive_before = proc.poll() is None
        addon_utils.disable(MODULE, default_set=True)  # unregister stops the engine
        emit(generated=generated, alive_before=alive_before, returncode=proc.poll(),
             size=list(bpy.data.images["tiny_s0"].size))  # no image name: named after preset and seed
    """, timeout=400, zip=addon_zip, endpoint=f"ipc://{tmp_path}/auto.sock", python=sys.executable, root=ROOT,
                        env={"MGAN_HOME": str(home), "MGAN_PRESETS": str(home / "presets")})
    assert found["generated"] == ["FINISHED"] and found["size"] == [16, 16]
    assert found["alive_before"] is True
    assert found["returncode"] is not None  # the process has exited


@pytest.mark.parametrize("temporal", [0.0, 0.8])
def test_rendered_frames_are_stylised_beside_the_output(tmp_path, addon_zip, blender, engine, temporal):
    from PIL import Image

    from engine.client import EngineClient
    from engine.sequence import temporal_blend

    frames = tmp_path / "frames"
    found = run_blender(blender, tmp_path, """
        scene = stylising_scene()
        scene.mgan.stylise_temporal = args["temporal"]
        small_animation(scene, args["frames"])
        bpy.ops.render.render(animation=True)
        emit(handlers=[h.__name__ for h in bpy.app.handlers.render_write + bpy.app.handlers.render_init],
             images=[i.name for i in bpy.data.images])
    """, zip=addon_zip, endpoint=engine.connect_address(), frames=frames, temporal=temporal)
    assert found["handlers"] == ["on_render_write", "on_render_init"]
    # the handler's temporary images (a frame read, a stylised frame written) are gone after the job
    assert "Render Result" in found["images"]
    assert not [name for name in found["images"] if name.startswith(("frame_", "MGAN stylised frame"))]
    rendered = [np.asarray(Image.open(frames / f"frame_{n:04d}.png").convert("RGB")) for n in (1, 2, 3)]
    assert not np.array_equal(rendered[0], rendered[2])
    prev_out = prev_src = None
    blended = 0
    with EngineClient(engine.connect_address()) as c:
        for n, frame in zip((1, 2, 3), rendered):
            stylised = np.asarray(Image.open(frames / f"frame_{n:04d}_mgan.png").convert("RGB"))
            assert stylised.shape == (96, 128, 3)
            plain = c.stylize("tiny", frame)[0]
            if temporal == 0:
                np.testing.assert_array_equal(stylised, plain)
                continue
            # The engine's frame through the CLI's filter, against the previous frame of the job.
            src = frame.astype(np.float32) / 255
            expect = temporal_blend(plain.astype(np.float32) / 255, src, prev_out, prev_src, temporal)
            prev_out, prev_src = expect, src
            assert np.abs(stylised.astype(int) - (expect * 255 + 0.5).astype(int)).max() <= 1
            blended += int((np.abs(stylised.astype(int) - plain.astype(int)) > 1).sum())
    if temporal:
        assert blended > 100  # the filter did act (where the background stayed still)


def test_a_render_over_a_transparent_film_is_stylised_with_its_alpha(tmp_path, addon_zip, blender, engine):
    """RGBA frames (Film > Transparent): the stylised file is RGBA with the frame's alpha,
    and its colours are the engine's stylisation of the frame's colours; a still's
    "Render Result MGAN" is an RGBA image with the render's alpha."""
    from PIL import Image

    from engine.client import EngineClient

    frames = tmp_path / "frames"
    found = run_blender(blender, tmp_path, """
        scene = stylising_scene()
        small_animation(scene, args["frames"])
        scene.frame_end = 1
        scene.render.film_transparent = True
        scene.render.image_settings.color_mode = "RGBA"
        bpy.ops.render.render(animation=True)
        bpy.ops.render.render()  # and a still (F12): into the image "Render Result MGAN"
        image = bpy.data.images[sys.modules[MODULE + ".stylise_render"].STILL_IMAGE]
        a = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(a)
        np.save(args["out"] + "/still.npy", a.reshape(image.size[1], image.size[0], 4))
        bpy.data.images["Render Result"].save_render(args["out"] + "/still_render.png", scene=scene)
        emit(depth=image.depth)
    """, zip=addon_zip, endpoint=engine.connect_address(), frames=frames, out=tmp_path)
    assert found["depth"] == 32   # an RGBA byte image
    with Image.open(frames / "frame_0001.png") as im:
        assert im.mode == "RGBA"
        rendered = np.asarray(im)
    assert (rendered[..., 3] == 0).mean() > 0.3 and (rendered[..., 3] == 255).any()   # cube over nothing
    with Image.open(frames / "frame_0001_mgan.png") as im:
        assert im.mode == "RGBA"
        stylised = np.asarray(im)
    np.testing.assert_array_equal(stylised[..., 3], rendered[..., 3])
    with EngineClient(engine.connect_address()) as c:
        np.testing.assert_array_equal(stylised[..., :3], c.stylize("tiny", np.ascontiguousarray(rendered[..., :3]))[0])
    with Image.open(tmp_path / "still_render.png") as im:
        assert im.mode == "RGBA"
        still_alpha = np.asarray(im)[..., 3]
    still = np.load(tmp_path / "still.npy")[::-1]
    np.testing.assert_array_equal(np.rint(still[..., 3] * 255).astype(np.uint8), still_alpha)
    assert (still_alpha == 0).mean() > 0.3


def test_background_stills_stylise_the_render_result_or_the_file_written(tmp_path, addon_zip, blender, engine):
    """In a background render the handlers work at once: a still from a script (no file) goes
    into "Render Result MGAN"; one frame as `blender -b -f 2` renders it (RE_RenderAnim from 2
    to 2) writes its file, so it gets `<frame>_mgan.png` instead."""
    from PIL import Image

    from engine.client import EngineClient

    frames = tmp_path / "frames"
    found = run_blender(blender, tmp_path, """
        import os
        install()
        bpy.context.preferences.addons[MODULE].preferences.endpoint = args["endpoint"]
        assert bpy.ops.mgan.refresh() == {"FINISHED"}
        sr = sys.modules[MODULE + ".stylise_render"]
        scene = bpy.context.scene
        scene.mgan.stylise_render, scene.mgan.stylise_preset = True, "tiny"
        scene.render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.device = 4, "CPU"
        scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 128, 96, 100
        scene.render.image_settings.file_format, scene.render.image_settings.color_mode = "PNG", "RGB"
        scene.render.filepath = args["frames"] + "/frame_"
        found = {}
        bpy.ops.render.render()  # a still: no file
        found["still_files"] = sorted(os.listdir(args["frames"])) if os.path.isdir(args["frames"]) else []
        image = bpy.data.images.get(sr.STILL_IMAGE)
        found["still_image"] = image is not None and [list(image.size), image.colorspace_settings.name]
        a = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(a)
        np.save(args["out"] + "/stylised.npy", a.reshape(image.size[1], image.size[0], 4))
        bpy.data.images["Render Result"].save_render(args["out"] + "/render.png", scene=scene)
        bpy.data.images.remove(image)
        scene.frame_start = scene.frame_end = 2
        bpy.ops.render.render(animation=True)  # what `blender -b -f 2` runs
        found["files"] = sorted(os.listdir(args["frames"]))
        found["image_after_files"] = sr.STILL_IMAGE in bpy.data.images
        emit(**found)
    """, zip=addon_zip, endpoint=engine.connect_address(), frames=frames, out=tmp_path)
    assert found["still_files"] == [] and found["still_image"] == [[128, 96], "sRGB"]
    assert found["files"] == ["frame_0002.png", "frame_0002_mgan.png"]
    assert found["image_after_files"] is False  # a file was written: the file was stylised instead
    render = np.asarray(Image.open(tmp_path / "render.png").convert("RGB"))
    rgba = np.load(tmp_path / "stylised.npy")
    with EngineClient(engine.connect_address()) as c:
        assert np.abs(np.rint(rgba[::-1, :, :3] * 255).astype(int) -
                      c.stylize("tiny", render)[0].astype(int)).max() <= 1
        frame = np.asarray(Image.open(frames / "frame_0002.png").convert("RGB"))
        stylised = np.asarray(Image.open(frames / "frame_0002_mgan.png").convert("RGB"))
        np.testing.assert_array_equal(stylised, c.stylize("tiny", frame)[0])


def test_train_preset_from_an_image(tmp_path, addon_zip, blender, engine):
    from tests.conftest import skimage_image

    exemplar = skimage_image("gravel.png")
    name = f"gravel-{time.monotonic_ns() % 10**9}"  # the engine fixture is shared by the module
    found = run_blender(blender, tmp_path, """
        install()
        bpy.context.preferences.addons[MODULE].preferences.endpoint = args["endpoint"]
        op_train = sys.modules[MODULE + ".op_train"]
        state = sys.modules[MODULE + ".properties"].STATE
        s = bpy.context.scene.mgan
        s.train_image = bpy.data.images.load(args["exemplar"])
        sent_file_bytes = op_train.exemplar_bytes(s.train_image) == open(args["exemplar"], "rb").read()
        generated = bpy.data.images.new("painted", 40, 24)
        png = op_train.exemplar_bytes(generated)
        defaults = [s.train_minutes, s.train_steps, s.train_exemplar_size, s.train_crop, s.train_batch,
                    s.train_repeat]
        s.train_name, s.train_steps, s.train_exemplar_size, s.train_crop, s.train_batch = args["name"], 3, 64, 32, 2
        s.train_repeat = "wide"  # not WIDTHxHEIGHT nor auto: refused in the panel, nothing sent
        try:
            bad_repeat = bpy.ops.mgan.train()
        except RuntimeError as exc:
            bad_repeat = str(exc)
        bad_repeat_job = state.train_job
        s.train_repeat = ""
        assert bpy.ops.mgan.train() == {"FINISHED"}
        watch = op_train.TrainWatch(args["endpoint"], state.train_job)  # what the UI timer steps
        t0 = time.monotonic()
        while not watch.step() and time.monotonic() - t0 < 600:
            time.sleep(0.2)
        bpy.ops.mgan.refresh()
        conn = sys.modules[MODULE + ".connection"]
        message = state.train_message
        # The same name again: the engine refuses (its run has a checkpoint), and the panel
        # offers Resume and Start over, which run.
        try:
            again = bpy.ops.mgan.train()
        except RuntimeError as exc:  # the operator's report({'ERROR'})
            again = str(exc)
        conflict = state.train_conflict
        modes = {}
        for mode in ("RESUME", "FRESH"):
            assert bpy.ops.mgan.train(mode=mode) == {"FINISHED"}
            watch2 = op_train.TrainWatch(args["endpoint"], state.train_job)
            t0 = time.monotonic()
            while not watch2.step() and time.monotonic() - t0 < 600:
                time.sleep(0.2)
            modes[mode] = [watch2.record["state"], watch2.record["result"]["steps"], state.train_job]
        emit(bad_repeat=str(bad_repeat), bad_repeat_job=bad_repeat_job,
             sent_file_bytes=sent_file_bytes, png_magic=list(png[:8]), record=watch.record, defaults=defaults,
             message=message, presets=[p["name"] for p in conn.LINK.presets], again=again, conflict=conflict,
             modes=modes, conflict_after=state.train_conflict)
    """, timeout=700, zip=addon_zip, endpoint=engine.connect_address(), exemplar=exemplar, name=name)
    assert found["sent_file_bytes"] is True
    # the panel starts at `mgan train`'s defaults: 5 minutes, the image at its own pixel size
    assert found["defaults"] == [5.0, 0, 0, 128, 4, ""]
    assert "repeat 'wide'" in found["bad_repeat"] and not found["bad_repeat_job"]
    assert bytes(found["png_magic"]) == b"\x89PNG\r\n\x1a\n"
    assert found["record"]["state"] == "done", found["record"]
    assert found["record"]["name"] == name and found["record"]["result"]["steps"] == 3
    assert name in found["presets"] and f"training '{name}': done 3/3" == found["message"]
    assert "already has a checkpoint" in str(found["again"]) and found["conflict"] == name
    # each ran, and asked the engine to resume and to start over (its job records keep the fields)
    for mode, flag in (("RESUME", "resume"), ("FRESH", "fresh")):
        state, steps, job = found["modes"][mode]
        fields = json.loads((engine.home / "jobs" / f"{job}.json").read_text())["fields"]
        assert (state, steps, fields[flag], fields["name"]) == ("done", 3, True, name), (mode, fields)
    assert found["conflict_after"] == ""


KILLED_MID_JOB = """
    import pathlib
    install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    s = bpy.context.scene.mgan
    s.preset, s.width, s.height, s.timeout = "tiny", 4096, 4096, args["deadline"]
    flags = pathlib.Path(args["flags"])
    (flags / "started").write_text("")
    t0 = time.monotonic()
    try:
        first = bpy.ops.mgan.generate()
    except RuntimeError as exc:  # the operator's report({'ERROR'})
        first = str(exc)
    first_s = time.monotonic() - t0
    bpy.ops.mesh.primitive_cube_add()  # Blender keeps working
    while not (flags / "restarted").exists():
        time.sleep(0.2)
    s.width, s.height, s.image_name = 32, 16, "after restart"
    second = bpy.ops.mgan.generate()
    image = bpy.data.images["after restart"]
    emit(first=first if isinstance(first, str) else sorted(first), first_s=first_s,
         cube=bpy.context.object.name, second=sorted(second), size=list(image.size))
"""


def test_engine_killed_mid_job_is_a_clear_error_and_a_restart_recovers(tmp_path, addon_zip, blender):
    home = engine_home(tmp_path / "home")
    first = EngineProcess(home, "tcp://127.0.0.1:*").start()
    flags = tmp_path / "flags"
    flags.mkdir()
    deadline = 5.0
    path = tmp_path / "killed.py"
    path.write_text(PRELUDE + textwrap.dedent(KILLED_MID_JOB))
    args = json.dumps({"zip": str(addon_zip), "endpoint": first.connect_address(), "flags": str(flags),
                       "deadline": deadline})
    proc = subprocess.Popen([blender.python, str(path), args], cwd=tmp_path, env=blender_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        t0 = time.monotonic()
        while not (flags / "started").exists():
            assert proc.poll() is None and time.monotonic() - t0 < 120, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.0)  # the 4096x4096 synthesis is under way
        first.kill()
        second = EngineProcess(home, first.endpoint).start()  # the same address
        (flags / "restarted").write_text("")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if second is not None:
            second.kill()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{out[-3000:]}\n{err[-3000:]}"
    found = json.loads(lines[-1][len("RESULT "):])
    assert isinstance(found["first"], str) and "did not answer synthesize" in found["first"], found
    assert "Traceback" not in found["first"]
    assert found["first_s"] < deadline + 3.0  # reported within its deadline, not hung
    assert found["cube"].startswith("Cube")
    assert found["second"] == ["FINISHED"] and found["size"] == [32, 16]
