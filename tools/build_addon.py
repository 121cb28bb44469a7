"""Build the Blender extension zip: dist/mgan_textures-<version>.zip.

addon/ + the torch-free modules of the engine (client, protocol, security, which the
client imports, and sequence, for the temporal filter on rendered frames) copied into
``wire/`` + pyzmq wheels for Blender's Python (3.11, linux x86_64), listed in the
manifest's ``wheels``. The engine modules are copied at
build time, never kept twice in git."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIRE_MODULES = ("client.py", "protocol.py", "security.py", "sequence.py")
PLATFORM, PYTHON_VERSION = "manylinux_2_28_x86_64", "3.11"


def manifest_version(manifest: str) -> str:
    found = re.search(r'^version\s*=\s*"([^"]+)"', manifest, re.M)
    if not found:
        raise SystemExit("addon/blender_manifest.toml has no version")
    return found.group(1)


def download_wheels(cache: Path, spec: str) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("pyzmq-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:",
                        "--platform", PLATFORM, "--python-version", PYTHON_VERSION, "-d", str(cache), "-q"],
                       check=True)
        wheels = sorted(cache.glob("pyzmq-*.whl"))
    if len(wheels) != 1 or "cp311" not in wheels[0].name or "x86_64" not in wheels[0].name:
        raise SystemExit(f"expected one cp311 x86_64 pyzmq wheel in {cache}, found {[w.name for w in wheels]}")
    return wheels


def build(out_dir: Path, wheel_cache: Path, pyzmq: str) -> Path:
    manifest = (ROOT / "addon" / "blender_manifest.toml").read_text()
    version = manifest_version(manifest)
    wheels = download_wheels(wheel_cache, pyzmq)
    listed = ", ".join(f'"./wheels/{w.name}"' for w in wheels)
    manifest, n = re.subn(r"^wheels\s*=\s*\[[^\]]*\]", f"wheels = [{listed}]", manifest, flags=re.M)
    if n != 1:
        raise SystemExit("addon/blender_manifest.toml needs one `wheels = [...]` line")

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"mgan_textures-{version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("blender_manifest.toml", manifest)
        for path in sorted((ROOT / "addon").glob("*.py")):
            z.write(path, path.name)
        z.writestr("wire/__init__.py", '"""Copies of engine/client.py, protocol.py, security.py, sequence.py (build time)."""\n')
        for name in WIRE_MODULES:
            z.write(ROOT / "engine" / name, f"wire/{name}")
        for wheel in wheels:
            z.write(wheel, f"wheels/{wheel.name}")
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--wheels", type=Path, default=ROOT / "build" / "wheels",
                    help="download cache for the pyzmq wheel")
    ap.add_argument("--pyzmq", default="pyzmq>=25", help="pip requirement for the bundled pyzmq")
    args = ap.parse_args()
    print(build(args.out, args.wheels, args.pyzmq))
    return 0


if __name__ == "__main__":
    sys.exit(main())
