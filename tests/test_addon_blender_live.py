"""The add-on's timer-driven features in real headless Blender (each of tests/blender_proc.py's
Blenders) against a real engine: the live preview, following a training job (progress,
latest preview, Cancel), and Stylise Rendered Frames' main-thread queue.

Headless Blender runs no timers: each scenario calls the very function the timer calls
(the live preview's ``tick``, the training ``FOLLOWING.tick``, the render ``STYLIST.tick``)
in a loop, as the existing tests step EngineJob. Nor does it render on a render thread:
the queued path of Stylise Rendered Frames is forced (``handlers_work_inline``), so the
handlers run as in an interactive render and the work is done by the main-thread tick."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.blender_proc import run_blender
from tests.engine_proc import EngineProcess, engine_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = EngineProcess(engine_home(tmp_path_factory.mktemp("engine")), "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


LIVE_PREVIEW = """
    import pathlib
    install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    out = pathlib.Path(args["out"])
    lp = sys.modules[MODULE + ".live_preview_timer"]
    panels = sys.modules[MODULE + ".panels"]
    machine = lp.PREVIEW
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    s = bpy.context.scene.mgan
    s.preset, s.width, s.height, s.seed, s.add_to_material = "tiny", 512, 256, 1, False


    def save(tag):
        image = bpy.data.images[lp.IMAGE_NAME]
        a = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(a)
        np.save(out / f"{tag}.npy", a.reshape(image.size[1], image.size[0], 4))
        return [list(image.size), image.colorspace_settings.name, image.packed_file is not None]

    shown = []  # the seed the image holds after every tick (deduplicated)
    def run_ticks(limit=120):
        t0, slowest = time.monotonic(), 0.0
        while time.monotonic() - t0 < limit:
            t = time.monotonic()
            lp.tick()  # what the timer calls
            slowest = max(slowest, time.monotonic() - t)
            seed = machine.shown.seed if machine.shown else None
            if not shown or shown[-1] != seed:
                shown.append(seed)
            if not machine.busy and machine.shown is not None and machine.wanted == machine.shown:
                return slowest
            time.sleep(0.02)
        raise AssertionError("no preview within the limit")

    found = {"timer_before": bpy.app.timers.is_registered(lp.tick),
             # what show_preview sets (headless Blender has no windows to show it in)
             "show_repeat": "show_repeat" in bpy.types.SpaceImageEditor.bl_rna.properties.keys()}
    s.live_preview = True  # the toggle's update registers the timer
    found["timer_on"] = bpy.app.timers.is_registered(lp.tick)
    found["slowest_first"] = run_ticks()
    found["first"] = save("first")
    # a burst: each change while one is in flight cancels it and sends the newest
    for seed in (2, 3, 4, 5, 6):
        s.seed = seed
        lp.tick()
        lp.tick()
    found["slowest_burst"] = run_ticks()
    found["burst"] = save("burst")
    found["counts"] = [machine.sent, machine.cancelled, machine.landed]
    # another aspect: the image is resized
    s.width, s.height = 256, 1024
    run_ticks()
    found["tall"] = save("tall")
    found["shown"] = shown
    layout = Layout()
    panels.draw_panel(layout, bpy.context)
    found["drawn"] = [c for c in layout.calls if c[0] in ("operator", "prop") and
                      ("live_preview" in c[1] or c[2] and c[2].startswith("Apply"))]
    # Apply: the full size, with the same settings
    assert bpy.ops.mgan.generate() == {"FINISHED"}
    found["applied"] = sorted([i.name, list(i.size)] for i in bpy.data.images if i.name != lp.IMAGE_NAME)
    # a file saved with the preview on opens with its timer on; off stops it
    path = str(out / "live.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    lp.stop_timer()
    bpy.ops.wm.open_mainfile(filepath=path)
    found["timer_after_load"] = bpy.app.timers.is_registered(lp.tick)
    bpy.context.scene.mgan.live_preview = False
    found["timer_off"] = bpy.app.timers.is_registered(lp.tick)
    emit(**found)
"""


def _blender_rgb(path) -> np.ndarray:
    """A saved Blender byte image's pixels as the engine's (H, W, 3) uint8, top row first."""
    rgba = np.load(path)
    assert np.all(rgba[..., 3] == 1.0)
    return np.rint(rgba[::-1, :, :3] * 255).astype(np.uint8)


def test_live_preview_follows_the_settings_and_only_the_latest_lands(tmp_path, addon_zip, blender, engine):
    from engine.client import EngineClient

    found = run_blender(blender, tmp_path, LIVE_PREVIEW, zip=addon_zip, endpoint=engine.connect_address(),
                        out=tmp_path)
    assert found["timer_before"] is False and found["timer_on"] is True and found["show_repeat"] is True
    # each tick returns at once, whatever the engine does (generous: a loaded 2-core machine)
    assert found["slowest_first"] < 0.5 and found["slowest_burst"] < 0.5
    with EngineClient(engine.connect_address()) as c:
        expected = {tag: c.synthesize("tiny", w, h, seed=seed)
                    for tag, (w, h, seed) in {"first": (256, 128, 1), "burst": (256, 128, 6),
                                              "tall": (64, 256, 6)}.items()}
    for tag, rgb in expected.items():
        size, colorspace, packed = found[tag]
        assert size == [rgb.shape[1], rgb.shape[0]] and colorspace == "sRGB" and packed is False
        np.testing.assert_array_equal(_blender_rgb(tmp_path / f"{tag}.npy"), rgb)
    # the burst's stale seeds were cancelled and never shown: 1, then 6
    assert found["shown"] == [None, 1, 6]
    sent, cancelled, landed = found["counts"]
    assert landed == 2 and sent >= 3 and cancelled == sent - landed
    drawn = found["drawn"]
    assert ["prop", ["live_preview"], None] in drawn
    assert ["operator", ["mgan.generate"], "Apply (256x1024)"] in drawn
    assert ["tiny_s6", [256, 1024]] in found["applied"]
    assert found["timer_after_load"] is True and found["timer_off"] is False


TRAIN_CANCEL = """
    import pathlib
    install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    op_train = sys.modules[MODULE + ".op_train"]
    panels = sys.modules[MODULE + ".panels"]
    state = sys.modules[MODULE + ".properties"].STATE
    following = op_train.FOLLOWING


    s = bpy.context.scene.mgan
    s.train_image = bpy.data.images.load(args["exemplar"])
    s.train_name, s.train_steps, s.train_exemplar_size, s.train_crop, s.train_batch = args["name"], 300, 64, 32, 1
    found = {"poll_before": bpy.ops.mgan.cancel_training.poll()}
    assert bpy.ops.mgan.train() == {"FINISHED"}
    t0 = time.monotonic()
    while following.icon_path is None and time.monotonic() - t0 < 400:  # until a preview is shown
        assert following.tick() is not None, state.train_message  # what the timer calls
        time.sleep(0.2)
    found["running"] = [following.watch.record.get("state"), following.watch.fraction, state.train_message]
    found["preview"] = str(following.icon_path)
    icon = following.icon()
    np.save(args["out"] + "/icon.npy", np.array(icon.image_pixels_float[:], dtype=np.float32).reshape(
        icon.image_size[1], icon.image_size[0], 4))
    layout = Layout()
    panels.draw_training(layout, bpy.context)
    found["drawn"] = [c for c in layout.calls if c[0] in ("progress", "operator")]
    found["poll_running"] = bpy.ops.mgan.cancel_training.poll()
    assert bpy.ops.mgan.cancel_training() == {"FINISHED"}
    found["cancel_message"] = state.train_message
    t0 = time.monotonic()
    while following.tick() is not None and time.monotonic() - t0 < 300:
        time.sleep(0.2)
    watch = following.watch
    found["final"] = [watch.record.get("state"), watch.record.get("progress", {}).get("done"), watch.fraction,
                      state.train_message, str(watch.preview)]
    found["poll_after"] = bpy.ops.mgan.cancel_training.poll()
    found["newest"] = str(max(pathlib.Path(str(watch.preview)).parent.glob("step_*.png")))  # (before the resume)
    layout = Layout()
    panels.draw_training(layout, bpy.context)
    found["drawn_after"] = [c for c in layout.calls if c[0] in ("progress", "operator", "label")]
    # Train again under the same name: refused (the cancelled run has its checkpoint); the
    # panel offers Resume and Start over, and Resume continues from the step it stopped at.
    try:
        again = bpy.ops.mgan.train()
    except RuntimeError as exc:  # the operator's report({'ERROR'})
        again = exc
    found["again"] = [str(again), state.train_conflict, state.train_message]
    layout = Layout()
    panels.draw_training(layout, bpy.context)
    found["drawn_conflict"] = [[c[1], c[2]] for c in layout.calls if c[0] == "operator"]
    assert bpy.ops.mgan.train(mode="RESUME") == {"FINISHED"}
    t0 = time.monotonic()
    while (following.watch.record or {}).get("resumed_from") is None and time.monotonic() - t0 < 300:
        following.tick()
        time.sleep(0.2)
    found["resumed"] = [following.watch.record.get("resumed_from"), state.train_conflict]
    # A new run under the name that is training now: refused too, but it has nothing to resume.
    try:
        busy = bpy.ops.mgan.train()
    except RuntimeError as exc:
        busy = exc
    found["busy"] = [str(busy), state.train_conflict]
    bpy.ops.mgan.cancel_training()
    t0 = time.monotonic()
    while following.tick() is not None and time.monotonic() - t0 < 300:
        time.sleep(0.2)
    addon_utils.disable(MODULE, default_set=True)  # frees the preview collection
    found["after_disable"] = [following.watch is None, following.icons is None]
    emit(**found)
"""


def test_training_shows_progress_and_its_latest_preview_and_cancels(tmp_path, addon_zip, blender, engine):
    from PIL import Image

    from tests.conftest import skimage_image

    name = f"cancel-{time.monotonic_ns() % 10**9}"  # the engine fixture is shared by the module
    # the add-on finds the run's previews where the engine writes them: its MGAN_HOME
    found = run_blender(blender, tmp_path, TRAIN_CANCEL, timeout=800, zip=addon_zip,
                        endpoint=engine.connect_address(), exemplar=skimage_image("gravel.png"), name=name,
                        out=tmp_path, env={"MGAN_HOME": str(engine.home)})
    assert found["poll_before"] is False and found["poll_running"] is True
    record_state, fraction, message = found["running"]
    assert record_state == "running" and 0 < fraction < 1 and message.startswith(f"training '{name}': running ")
    previews = engine.home / "runs" / name / "previews"
    preview = found["preview"]
    assert preview.startswith(str(previews)) and preview.endswith(".png")
    icon = np.load(tmp_path / "icon.npy")[::-1]  # previews are bottom-up too
    png = np.asarray(Image.open(preview).convert("RGBA"), dtype=np.float32) / 255
    assert icon.shape == png.shape == (256, 256, 4)
    np.testing.assert_allclose(icon, png, atol=1 / 255)  # the panel's icon is the engine's preview
    assert [[c[0], c[1]] for c in found["drawn"]] == [["operator", ["mgan.train"]], ["progress", []],
                                                       ["operator", ["mgan.cancel_training"]]]
    assert found["cancel_message"].endswith(": cancelling")
    state, done, fraction, message, last_preview = found["final"]
    assert state == "cancelled" and 0 < done < 300 and fraction == done / 300
    assert message == f"training '{name}': cancelled {done}/300"
    assert found["newest"].startswith(str(previews))
    assert last_preview == found["newest"]  # the preview of the last step it made
    assert found["poll_after"] is False
    # Train, its last word, then what the run told its user (the engine's notes)
    drawn_after = found["drawn_after"]
    assert [c[0] for c in drawn_after[:2]] == ["operator", "label"] and drawn_after[1][2] == message
    notes = [c[2] for c in drawn_after[2:]]
    assert all(c[0] == "label" for c in drawn_after[2:]) and any("interrupted: checkpoint saved" in n for n in notes)
    refused, conflict, message = found["again"]
    assert "already has a checkpoint" in refused and conflict == name and "resume it or start over" in message
    assert found["drawn_conflict"] == [[["mgan.train"], None], [["mgan.train"], f"Resume '{name}'"],
                                       [["mgan.train"], "Start over"]]
    assert found["resumed"] == [done, ""]  # from the step the cancel checkpointed
    busy, offered = found["busy"]
    assert "is already running as job" in busy and offered == ""  # no Resume offered for a running run
    assert found["after_disable"] == [True, True]


QUEUED_RENDER = """
    install()
    bpy.context.preferences.addons[MODULE].preferences.endpoint = args["endpoint"]
    sr = sys.modules[MODULE + ".stylise_render"]
    sr.handlers_work_inline = lambda: False  # as in an interactive render: the handlers only queue
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    scene = bpy.context.scene
    scene.mgan.stylise_render, scene.mgan.stylise_preset, scene.mgan.stylise_temporal = True, "tiny", 0.8
    small_animation(scene, args["frames"])
    images_before = sorted(i.name for i in bpy.data.images)
    bpy.ops.render.render(animation=True)
    import pathlib
    found = {"queued": [[e.kind, e.frame] for e in list(sr.EVENTS._events)],
             "images_after_render": sorted(i.name for i in bpy.data.images), "images_before": images_before,
             "stylised_during_render": sorted(p.name for p in pathlib.Path(args["frames"]).glob("*_mgan.png"))}
    ticks, t0 = 0, time.monotonic()
    while not sr.STYLIST.idle and time.monotonic() - t0 < 300:
        sr.STYLIST.tick()  # what the main thread's timer calls
        ticks += 1
        time.sleep(0.01)
    found["ticks"] = ticks
    found["images_after"] = sorted(i.name for i in bpy.data.images)
    emit(**found)
"""


def test_queued_stylisation_runs_on_the_main_thread_in_order(tmp_path, addon_zip, blender, engine):
    from PIL import Image

    from engine.client import EngineClient
    from engine.sequence import temporal_blend

    frames = tmp_path / "frames"
    temporal = 0.8
    found = run_blender(blender, tmp_path, QUEUED_RENDER, zip=addon_zip, endpoint=engine.connect_address(),
                        frames=frames)
    # the handlers queued the job's events and touched no image; the work came after, in order
    assert found["queued"] == [["init", None], ["frame", 1], ["frame", 2], ["frame", 3], ["end", None]]
    assert found["stylised_during_render"] == []
    new = set(found["images_after_render"]) - set(found["images_before"])
    assert new <= {"Render Result"}
    assert found["ticks"] > 5  # stepped, not done in one blocking call
    assert set(found["images_after"]) - set(found["images_before"]) <= {"Render Result"}  # temporaries gone
    prev_out = prev_src = None
    with EngineClient(engine.connect_address()) as c:
        for n in (1, 2, 3):
            frame = np.asarray(Image.open(frames / f"frame_{n:04d}.png").convert("RGB"))
            stylised = np.asarray(Image.open(frames / f"frame_{n:04d}_mgan.png").convert("RGB"))
            plain = c.stylize("tiny", frame)[0]
            src = frame.astype(np.float32) / 255
            expect = temporal_blend(plain.astype(np.float32) / 255, src, prev_out, prev_src, temporal)
            prev_out, prev_src = expect, src
            assert np.abs(stylised.astype(int) - (expect * 255 + 0.5).astype(int)).max() <= 1


QUEUED_STILL = """
    import os
    install()
    bpy.context.preferences.addons[MODULE].preferences.endpoint = args["endpoint"]
    sr = sys.modules[MODULE + ".stylise_render"]
    sr.handlers_work_inline = lambda: False  # as in an interactive render: the handlers only queue
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    scene = bpy.context.scene
    scene.mgan.stylise_render, scene.mgan.stylise_preset = True, "tiny"
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 4, "CPU"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 128, 96, 100
    # an output format that save_render must not use (it would give linear floats)
    settings = scene.render.image_settings
    settings.file_format, settings.color_depth = "OPEN_EXR", "32"
    scene.render.filepath = args["out"] + "/frames/still_"
    bpy.data.objects["Cube"].location.x = 1.0
    # the render window of F12: an Image Editor that shows the Render Result
    area = bpy.context.window_manager.windows[0].screen.areas[0]
    area.type = "IMAGE_EDITOR"
    images_before = sorted(i.name for i in bpy.data.images)
    bpy.ops.render.render()  # F12 (Render Image): a still, no write_still
    area.spaces.active.image = bpy.data.images["Render Result"]
    found = {"queued": [e.kind for e in list(sr.EVENTS._events)],
             "images_after_render": sorted(i.name for i in bpy.data.images), "images_before": images_before,
             "frames_written": os.path.isdir(args["out"] + "/frames")}
    ticks, t0 = 0, time.monotonic()
    while not sr.STYLIST.idle and time.monotonic() - t0 < 300:
        sr.STYLIST.tick()  # what the main thread's timer calls
        ticks += 1
        time.sleep(0.01)
    found["ticks"] = ticks
    found["output_settings"] = [settings.file_format, settings.color_depth, settings.color_mode]
    found["images_after"] = sorted(i.name for i in bpy.data.images)
    image = bpy.data.images[sr.STILL_IMAGE]
    found["image"] = [list(image.size), image.colorspace_settings.name, image.is_float]
    found["shown"] = area.spaces.active.image.name
    a = np.empty(len(image.pixels), dtype=np.float32)
    image.pixels.foreach_get(a)
    np.save(args["out"] + "/stylised.npy", a.reshape(image.size[1], image.size[0], 4))
    # the render as the test reads it: the Render Result through the view transform, as a PNG
    settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
    bpy.data.images["Render Result"].save_render(args["out"] + "/render.png", scene=scene)
    # a still of a scene that does not stylise is left alone
    bpy.data.images.remove(image)
    scene.mgan.stylise_render = False
    bpy.ops.render.render()
    found["queued_off"] = [e.kind for e in list(sr.EVENTS._events)]
    while not sr.STYLIST.idle:
        sr.STYLIST.tick()
    found["image_when_off"] = sr.STILL_IMAGE in bpy.data.images
    emit(**found)
"""


def test_a_still_render_is_stylised_on_the_main_thread(tmp_path, addon_zip, blender, engine):
    from PIL import Image

    from engine.client import EngineClient

    found = run_blender(blender, tmp_path, QUEUED_STILL, zip=addon_zip, endpoint=engine.connect_address(),
                        out=tmp_path)
    # the handlers queued the job and that it was a still; they touched no image and wrote no file
    assert found["queued"] == ["init", "end", "still"]
    assert set(found["images_after_render"]) - set(found["images_before"]) <= {"Render Result"}
    assert found["frames_written"] is False
    assert found["ticks"] > 3  # stepped, not done in one blocking call
    assert found["output_settings"] == ["OPEN_EXR", "32", "RGBA"]  # put back after the PNG
    # the temporary image of the saved Render Result is gone; the stylised one stays
    assert set(found["images_after"]) - set(found["images_before"]) - {"Render Result"} == {"Render Result MGAN"}
    assert found["image"] == [[128, 96], "sRGB", False]
    assert found["shown"] == "Render Result MGAN"  # in the render window, instead of the render
    render = np.asarray(Image.open(tmp_path / "render.png").convert("RGB"))
    assert render.shape == (96, 128, 3) and render.std() > 5  # a real render, not an empty result
    with EngineClient(engine.connect_address()) as c:
        expected = c.stylize("tiny", render)[0]
    rgba = np.load(tmp_path / "stylised.npy")
    assert np.all(rgba[..., 3] == 1.0)
    stylised = np.rint(rgba[::-1, :, :3] * 255).astype(int)  # byte image, bottom row first
    assert np.abs(stylised - expected.astype(int)).max() <= 1
    assert found["queued_off"] == ["init", "end"] and found["image_when_off"] is False
