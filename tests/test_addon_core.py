"""The add-on's Blender-free parts (pixel conventions, node choice, the generated material's
node layout, the engine job that the operator steps from its timer), loaded without bpy,
against a real engine."""
from __future__ import annotations

import importlib.util
import sys
import time
import types
from types import SimpleNamespace as NS

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.engine_proc import EngineProcess, engine_home


def _core():
    """addon/ as a package without running its __init__ (which registers with Blender)."""
    name = "mgan_addon_core"
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(ROOT / "addon")]
        sys.modules[name] = pkg
    return tuple(importlib.import_module(f"{name}.{m}")
                 for m in ("pixels", "wiring", "jobs", "connection", "material_plan"))


pixels, wiring, jobs, connection, plan = _core()
P = connection.protocol


def test_engine_to_blender_flips_rows_and_adds_opaque_alpha():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    flat = pixels.engine_to_blender(img, linear=False)
    rgba = flat.reshape(2, 3, 4)
    assert flat.dtype == np.float32 and flat.shape == (24,)
    np.testing.assert_array_equal(rgba[0, :, :3], img[1] / np.float32(255))  # Blender's first row is the bottom
    np.testing.assert_array_equal(rgba[1, :, :3], img[0] / np.float32(255))
    assert np.all(rgba[..., 3] == 1)
    back = pixels.blender_to_engine(flat, 3, 2, linear=False)
    np.testing.assert_array_equal(back, img)


def test_alpha_round_trips_and_an_opaque_image_has_none():
    img = np.zeros((2, 3, 3), np.uint8)
    alpha = np.array([[0, 1, 128], [200, 254, 255]], np.uint8)
    flat = pixels.engine_to_blender(img, linear=False, alpha=alpha)
    assert flat.reshape(2, 3, 4)[0, 0, 3] == np.float32(200 / 255)   # bottom row first, as the colours
    np.testing.assert_array_equal(pixels.blender_alpha(flat, 3, 2), alpha)
    assert pixels.blender_alpha(pixels.engine_to_blender(img, linear=False), 3, 2) is None
    with pytest.raises(ValueError, match="alpha of shape"):
        pixels.engine_to_blender(img, linear=False, alpha=alpha.T)


def test_srgb_transfer_round_trips_every_byte_and_matches_known_values():
    v = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    flat = pixels.engine_to_blender(v, linear=True)
    np.testing.assert_array_equal(pixels.blender_to_engine(flat, 16, 16, linear=True), v)
    lin = pixels.srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0]))
    np.testing.assert_allclose(lin, [0.0, 0.04045 / 12.92, 0.21404114, 1.0], rtol=1e-5)


def test_float_input_is_clipped_and_bad_shapes_refused():
    flat = pixels.engine_to_blender(np.array([[[-0.5, 0.25, 2.0]]], dtype=np.float32), linear=False)
    np.testing.assert_array_equal(flat, [0.0, 0.25, 1.0, 1.0])
    with pytest.raises(ValueError, match="expected an"):
        pixels.engine_to_blender(np.zeros((4, 4), np.uint8), linear=False)


def _node(type_, name="", label="", links=()):
    return NS(type=type_, name=name, label=label, inputs={"Surface": NS(links=list(links))})


def test_principled_chosen_is_the_one_feeding_the_active_output():
    first, second = _node("BSDF_PRINCIPLED", "first"), _node("BSDF_PRINCIPLED", "second")
    out = _node("OUTPUT_MATERIAL", links=[NS(from_node=second)])
    out.is_active_output = True
    assert wiring.principled_for_output([first, second, out]) is second
    assert wiring.principled_for_output([first, _node("OUTPUT_MATERIAL")]) is first
    assert wiring.principled_for_output([_node("BSDF_DIFFUSE"), _node("OUTPUT_MATERIAL")]) is None
    ours = _node("TEX_IMAGE", label=wiring.TEXTURE_NODE_LABEL)
    assert wiring.existing_texture_node([_node("TEX_IMAGE"), ours]) is ours
    assert wiring.existing_texture_node([_node("TEX_IMAGE")]) is None


def test_synthesize_fields_pass_the_clients_own_validation():
    fields = jobs.synthesize_fields("tiny", 64, 32, 5, 0.0, False)
    assert "noise" not in fields and fields["tileable"] is False and fields["events"] is True
    assert jobs.synthesize_fields("tiny", 64, 32, 5, 24.0, True)["noise"] == {"scale": 24.0}
    P = connection.protocol
    P.decode_request(P.encode({"protocol": 2, "op": "synthesize", "id": "x1", **fields}, []), P.Limits())


def test_maps_go_in_as_data_grey_where_one_channel_and_bottom_up():
    height = np.array([[[0], [1], [65535]], [[32768], [40000], [7]]], dtype=np.uint16)  # (2, 3, 1)
    rgba = pixels.map_to_blender(height).reshape(2, 3, 4)
    assert rgba.dtype == np.float32 and np.all(rgba[..., 3] == 1)
    assert np.all(rgba[..., 0] == rgba[..., 1]) and np.all(rgba[..., 1] == rgba[..., 2])  # grey
    np.testing.assert_array_equal(np.rint(rgba[::-1, :, 0] * 65535).astype(np.uint16), height[..., 0])
    every_level = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)  # all survive float32
    back = np.rint(pixels.map_to_blender(every_level).reshape(256, 256, 4)[::-1, :, 0] * 65535)
    np.testing.assert_array_equal(back.astype(np.uint16), every_level[..., 0])
    normal = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    rgba = pixels.map_to_blender(normal).reshape(2, 3, 4)
    np.testing.assert_array_equal(rgba[::-1, :, :3], normal / np.float32(255))  # no sRGB curve
    for bad in (np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2), np.uint8)):
        with pytest.raises(ValueError):
            pixels.map_to_blender(bad)


def test_image_names_say_preset_seed_and_map_and_fit_blenders_limit():
    assert plan.image_name("stone", 7, "basecolor") == "stone_s7_basecolor"
    assert [plan.image_name("stone", 7, r) for r in plan.ROLES[1:]] == [
        "stone_s7_height", "stone_s7_normal", "stone_s7_roughness", "stone_s7_ao"]
    long = plan.image_name("p" * 64, P.MAX_SEED, "roughness")  # longest preset and seed
    assert len(long) <= plan.MAX_NAME and long.endswith(f"_s{P.MAX_SEED}_roughness")
    assert plan.ROLES == ("basecolor", *P.MAP_NAMES)


def test_the_material_layout_drives_every_image_from_one_mapping_into_the_right_sockets():
    by_label = {n.label: n for n in plan.NODES}
    assert len(by_label) == len(plan.NODES)  # labels are how a re-run finds its nodes: unique
    images = [n for n in plan.NODES if n.type == "TEX_IMAGE"]
    assert sorted(n.image for n in images) == sorted(plan.ROLES)
    assert all(n.settings["extension"] == "REPEAT" for n in images)
    links = {(lk.from_node, lk.from_socket, lk.to_node, lk.to_socket) for lk in plan.LINKS}
    assert len(links) == len(plan.LINKS)
    mappings = [n.label for n in plan.NODES if n.type == "MAPPING"]
    assert len(mappings) == 1
    assert (plan.TEX_COORD, "UV", mappings[0], "Vector") in links
    assert {n.label for n in images} == {lk.to_node for lk in plan.LINKS
                                         if lk.from_node == mappings[0] and lk.to_socket == "Vector"}
    fed = [(lk.to_node, lk.to_socket) for lk in plan.LINKS]
    assert len(set(fed)) == len(fed)  # an input takes one link
    for lk in plan.LINKS:
        assert {lk.from_node, lk.to_node} <= set(by_label) | {plan.BSDF, plan.OUTPUT}
    label = plan.IMAGE_LABELS

    def source(to_node, to_socket):
        return next((lk.from_node, lk.from_socket) for lk in plan.LINKS
                    if (lk.to_node, lk.to_socket) == (to_node, to_socket))
    mix = by_label[plan.AO_MULTIPLY]
    assert mix.settings["data_type"] == "RGBA" and mix.settings["blend_type"] == "MULTIPLY"
    assert source(plan.BSDF, "Base Color") == (plan.AO_MULTIPLY, "Result_Color")
    assert {source(plan.AO_MULTIPLY, "A_Color"), source(plan.AO_MULTIPLY, "B_Color")} == {
        (label["basecolor"], "Color"), (label["ao"], "Color")}
    assert source(plan.BSDF, "Roughness") == (label["roughness"], "Color")
    assert source(plan.BSDF, "Normal") == (plan.NORMAL_MAP, "Normal")
    assert source(plan.NORMAL_MAP, "Color") == (label["normal"], "Color")
    assert by_label[plan.NORMAL_MAP].settings["space"] == "TANGENT"
    assert source(plan.OUTPUT, "Displacement") == (plan.DISPLACEMENT, "Displacement")
    assert source(plan.DISPLACEMENT, "Height") == (label["height"], "Color")
    assert by_label[plan.DISPLACEMENT].inputs == {"Midlevel": 0.5}  # the height map's mean level, every run


def _sock(identifier, name=None, links=()):
    return NS(identifier=identifier, name=name or identifier, links=list(links))


def test_node_decisions_reuse_ours_and_refuse_to_rewire_another_shader():
    spec = next(n for n in plan.NODES if n.label == plan.MAPPING)
    ours = NS(type="MAPPING", label=plan.MAPPING)
    impostor = NS(type="TEX_IMAGE", label=plan.MAPPING)  # a user's node with our label, another kind
    assert plan.find_labelled([impostor, ours], spec) is ours
    assert plan.find_labelled([impostor, NS(type="MAPPING", label="")], spec) is None

    bsdf = NS(type="BSDF_PRINCIPLED", label="", name="Principled BSDF")
    out = NS(type="OUTPUT_MATERIAL", label="", is_active_output=True,
             inputs={"Surface": NS(links=[NS(from_node=bsdf)])})
    assert plan.shader_nodes_needed([bsdf, out], "m") == (False, False)
    assert plan.shader_nodes_needed([bsdf], "m") == (True, False)
    assert plan.shader_nodes_needed([], "m") == (True, True)
    free = NS(type="OUTPUT_MATERIAL", label="", inputs={"Surface": NS(links=[])})
    assert plan.shader_nodes_needed([free], "m") == (False, True)
    diffuse = NS(type="BSDF_DIFFUSE", bl_label="Diffuse BSDF")
    taken = NS(type="OUTPUT_MATERIAL", label="", inputs={"Surface": NS(links=[NS(from_node=diffuse)])})
    with pytest.raises(ValueError, match="material 'Wall' is shaded by a Diffuse BSDF node"):
        plan.shader_nodes_needed([diffuse, taken], "Wall")
    inactive = NS(type="OUTPUT_MATERIAL", is_active_output=False)
    assert plan.material_output([inactive, out]) is out and plan.material_output([bsdf]) is None

    # the Mix node has three sockets named "A": the identifier picks the colour one
    mix_inputs = [_sock("Factor_Float", "Factor"), _sock("A_Float", "A"), _sock("A_Color", "A")]
    assert plan.socket(mix_inputs, "A_Color") is mix_inputs[2]
    assert plan.socket([_sock("Base Color")], "Base Color").identifier == "Base Color"
    with pytest.raises(KeyError, match="no socket 'B_Color'"):
        plan.socket(mix_inputs, "B_Color")


def test_material_request_asks_for_every_map_in_blenders_normal_convention():
    fields = jobs.synthesize_fields("tiny", 64, 32, 5, 0.0, True, maps=P.MAP_NAMES,
                                    map_settings=jobs.map_settings_fields(None))
    assert fields["maps"] == list(P.MAP_NAMES)
    assert fields["map_settings"] == {"normal_convention": "opengl"}  # the rest: the preset's own
    custom = {"height_scale": -2, "normal_strength": 3.0, "roughness_min": 0.1, "roughness_max": 0.7,
              "ao_radius": 24.0, "ao_strength": 0.5}
    assert set(custom) == set(jobs.PANEL_MAP_SETTINGS)
    sent = jobs.map_settings_fields(custom)
    assert sent == {**{k: float(v) for k, v in custom.items()}, "normal_convention": "opengl"}
    for map_settings in (jobs.map_settings_fields(None), sent):
        f = jobs.synthesize_fields("tiny", 64, 32, 5, 0.0, True, maps=P.MAP_NAMES, map_settings=map_settings)
        request = P.decode_request(P.encode({"protocol": 2, "op": "synthesize", "id": "x1", **f}, []), P.Limits())
        assert request.fields["maps"] == list(P.MAP_NAMES)
    assert "maps" not in jobs.synthesize_fields("tiny", 64, 32, 5, 0.0, True)  # Generate: colour only
    header = {"map_settings": {**custom, "normal_convention": "opengl", "ao_radius": True, "extra": 1}}
    shown = jobs.resolved_map_settings(header)
    assert shown == {k: float(v) for k, v in custom.items() if k != "ao_radius"}
    assert jobs.resolved_map_settings({}) == {}


def _reply(maps, payloads):
    """A reply as it crosses the wire: encoded, then decoded by the add-on's protocol."""
    header = P.reply_header("synthesize", "r1", maps=maps) if maps is not None else P.reply_header("synthesize", "r1")
    return P.decode_reply(P.encode(header, payloads), P.Limits())


def test_reply_maps_are_checked_against_the_protocol_before_blender_sees_them():
    h, w = 5, 7
    base = np.zeros((h, w, 3), np.uint8)
    maps = {name: np.zeros((h, w, ch), P.DTYPES[dtype]) for name, (dtype, ch) in P.MAP_FRAMES.items()}
    order = ["normal", "ao", "height", "roughness"]  # the header's order rules, not ours
    reply = _reply(order, [base, *(maps[m] for m in order)])
    got_base, got = jobs.reply_maps(reply.header, reply.payloads, P.MAP_NAMES)
    assert got_base.shape == (h, w, 3) and list(got) == order
    assert all(got[m].dtype == maps[m].dtype and got[m].shape == maps[m].shape for m in order)

    old = _reply(None, [base])
    with pytest.raises(ValueError, match="predates"):
        jobs.reply_maps(old.header, old.payloads, P.MAP_NAMES)
    short = _reply(["height"], [base, maps["height"]])
    with pytest.raises(ValueError, match="asked for"):
        jobs.reply_maps(short.header, short.payloads, P.MAP_NAMES)
    byte_height = _reply(list(P.MAP_NAMES), [base, maps["normal"][..., :1], *(maps[m] for m in P.MAP_NAMES[1:])])
    with pytest.raises(ValueError, match="the height map must be 5x7x1 uint16"):
        jobs.reply_maps(byte_height.header, byte_height.payloads, P.MAP_NAMES)
    small = _reply(list(P.MAP_NAMES), [base, *(maps[m][:4] for m in P.MAP_NAMES)])
    with pytest.raises(ValueError, match="must be 5x7"):
        jobs.reply_maps(small.header, small.payloads, P.MAP_NAMES)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = EngineProcess(engine_home(tmp_path_factory.mktemp("engine")), "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


@pytest.mark.slow
def test_job_steps_without_blocking_and_gives_the_engines_bytes(engine):
    link = connection.Link()
    try:
        fields = jobs.synthesize_fields("tiny", 48, 40, 3, 0.0, True)
        job = jobs.EngineJob(link, engine.connect_address(), "synthesize", fields).start()
        steps, slowest = 0, 0.0
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            done = job.step()  # what the operator's timer calls: must return at once
            slowest = max(slowest, time.monotonic() - t0)
            steps += 1
            if done:
                break
            time.sleep(0.01)
        assert job.stage == "done" and steps > 2
        assert slowest < 0.5  # never waits for the engine (generous: a loaded CI machine)
        assert link.hello["ok"] and link.hello["device"]
        with connection.EngineClient(engine.connect_address()) as c:
            expected = c.synthesize("tiny", 48, 40, seed=3)
        np.testing.assert_array_equal(job.reply.payloads[0], expected)
    finally:
        link.close()


@pytest.mark.slow
def test_cancel_stops_the_engine_job_and_the_link_stays_usable(engine):
    link = connection.Link()
    try:
        endpoint = engine.connect_address()
        # big enough to be still running (several decode tiles) when the cancel arrives
        job = jobs.EngineJob(link, endpoint, "synthesize", jobs.synthesize_fields("tiny", 4096, 4096, 1, 0.0, True))
        job.start()
        while job.stage == "hello":
            job.step(0.05)
        job_id = job.rid
        job.cancel()
        assert job.cancelled and job.step() is True
        t_end = time.monotonic() + 120
        state = None
        with connection.EngineClient(endpoint) as c:
            while time.monotonic() < t_end:
                state = c.status(job_id)["state"]
                if state in ("cancelled", "done", "failed"):
                    break
                time.sleep(0.2)
        assert state == "cancelled"
        again = jobs.EngineJob(link, endpoint, "synthesize", jobs.synthesize_fields("tiny", 16, 16, 0, 0.0, True))
        assert again.start().run().reply.payloads[0].shape == (16, 16, 3)
        time.sleep(0.5)
        link.take("nothing")  # the cancelled job's late reply is dropped, not kept for nobody
        assert link._done == {} and link._abandoned == set()
    finally:
        link.close()
