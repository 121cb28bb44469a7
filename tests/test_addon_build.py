"""The extension zip that `make addon` builds: what its manifest claims (Blender 4.2.13 LTS to
5.3 on Linux x86_64, Windows x64 and macOS arm64) is what it holds, a pyzmq wheel for every
platform and Python claimed, and each Blender tested reads it so with its own extension code."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.blender_proc import BLENDER_PYTHONS, build_addon_module
from tests.conftest import ROOT

PLATFORMS = {"linux-x64", "windows-x64", "macos-arm64"}
# Which wheel platform tags run on each Blender platform (macOS: arm64 itself or universal2).
WHEEL_PLATFORM = {"linux-x64": r"manylinux_\d+_\d+_x86_64|manylinux\d+_x86_64",
                  "windows-x64": r"win_amd64",
                  "macos-arm64": r"macosx_\d+_\d+_(arm64|universal2)"}


def _wheel_tags(name: str) -> tuple[str, str, str, str, str]:
    return build_addon_module().wheel_tags(name)


def test_the_zip_holds_a_pyzmq_wheel_for_every_platform_and_python_it_claims(addon_zip):
    with zipfile.ZipFile(addon_zip) as z:
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        bundled = {name.removeprefix("wheels/"): z.read(name) for name in z.namelist() if name.startswith("wheels/")}
        names = set(z.namelist())
    assert manifest == tomllib.loads((ROOT / "addon" / "blender_manifest.toml").read_text())  # shipped as written
    assert manifest["blender_version_min"] == "4.2.13" and "blender_version_max" not in manifest
    assert set(manifest["platforms"]) == PLATFORMS
    listed = [w.removeprefix("./wheels/") for w in manifest["wheels"]]
    assert all(w.startswith("./wheels/") for w in manifest["wheels"])
    assert sorted(listed) == sorted(bundled)  # every listed wheel is in the zip, and nothing else

    tags = {name: _wheel_tags(name) for name in listed}
    assert {t[0] for t in tags.values()} == {"pyzmq"} and len({t[1] for t in tags.values()}) == 1  # one version
    # Blender takes an extension's Pythons from its wheels' python tags (abi3 would read as plain "3")
    claimed = {f"{t[2][2]}.{t[2][3:]}" for t in tags.values()}
    assert {t[3] for t in tags.values()} == {t[2] for t in tags.values()}  # cpXY-cpXY: no abi3, no py3
    assert claimed == set(BLENDER_PYTHONS.values()) == {"3.11", "3.13"}
    for platform in manifest["platforms"]:
        for python in claimed:
            fits = [name for name, (_, _, py, _, plat) in tags.items()
                    if py == "cp" + python.replace(".", "") and re.fullmatch(WHEEL_PLATFORM[platform], plat)]
            assert len(fits) == 1, (platform, python, fits)

    # each file is the wheel its name says (PyPI's, not a renamed one): its WHEEL metadata has the tag
    for name, data in bundled.items():
        _, version, py, abi, plat = tags[name]
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            meta = wheel.read(f"pyzmq-{version}.dist-info/WHEEL").decode()
            files = wheel.namelist()
        assert f"Tag: {py}-{abi}-{plat}" in meta.splitlines(), (name, meta)
        assert "zmq/__init__.py" in files
        # its compiled backend is built for that Python (cpython-311-x86_64-linux-gnu.so, cp311-win_amd64.pyd)
        xy = py.removeprefix("cp")
        backend = re.compile(rf"zmq/backend/cython/_zmq\.(cpython-{xy}-.+\.so|cp{xy}-win_amd64\.pyd)")
        assert [f for f in files if backend.fullmatch(f)], (name, [f for f in files if "backend/cython" in f])

    # the add-on and its wire modules are there; no cache files
    assert {"__init__.py", "wire/__init__.py", "wire/client.py", "wire/protocol.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


READ_BACK = """
import json, sys, zipfile, tomllib
import bpy, bl_pkg
from bl_pkg.cli import blender_ext
zip_path = sys.argv[1]
validate = bl_pkg.cli_extension(["validate", zip_path])  # `blender --command extension validate`
with zipfile.ZipFile(zip_path) as z:
    manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
wheels = manifest["wheels"]
print("RESULT " + json.dumps(dict(
    validate=validate, version=list(bpy.app.version[:2]), python=list(sys.version_info[:2]),
    pythons=sorted(".".join(map(str, v)) for v in blender_ext.python_versions_from_wheels(wheels)),
    per_platform={p: blender_ext.paths_filter_wheels_by_platform(wheels, p) for p in manifest["platforms"]})))
"""


def test_blender_validates_the_zip_and_reads_its_pythons_and_platforms(tmp_path, addon_zip, blender):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([blender.python, "-c", READ_BACK, str(addon_zip)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    found = json.loads(lines[-1][len("RESULT "):])
    assert found["validate"] == 0, proc.stdout
    assert found["version"] == [int(x) for x in blender.version.split(".")]
    assert ".".join(map(str, found["python"])) == blender.python_version
    assert found["pythons"] == ["3.11", "3.13"]  # what Blender checks before it enables the add-on
    for platform, wheels in found["per_platform"].items():
        assert sorted(_wheel_tags(w.rsplit("/", 1)[-1])[2] for w in wheels) == ["cp311", "cp313"], platform


def test_the_build_says_what_to_install_without_bpy(tmp_path):
    no_site = tmp_path / "python"  # this Python without its site-packages, so without bpy
    no_site.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    no_site.chmod(0o755)
    with pytest.raises(SystemExit, match=r"has no bpy module.*`make test-setup`"):
        build_addon_module().blender_extension(str(no_site), "validate", str(tmp_path))
