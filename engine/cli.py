"""The ``mgan`` command: train presets, synthesize textures, stylise frames, run MDAN,
list presets, serve the engine."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# glibc hands big freed tensors back to the OS on every step, which made fp32 steps 2-10x
# slower on CPU in the project's first trial (a bf16 MDAN step measured the same with and
# without). The tunables must be set before the process starts, so the CLI re-executes
# itself once with them.
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def _reexec_with_tunables(argv: list[str]) -> None:
    if sys.platform != "linux" or "GLIBC_TUNABLES" in os.environ or os.environ.get("MGAN_NO_REEXEC"):
        return
    env = dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "engine.cli", *argv], env)


def _noise_from_args(args, defaults):
    from engine.noise import NoiseParams

    d = defaults.to_dict()
    for key in ("kind", "beta", "scale", "octaves", "contrast"):
        value = getattr(args, f"noise_{key}", None)
        if value is not None:
            d[key] = value
    return NoiseParams.from_dict(d)


def _write_image(path: Path, image) -> Path:
    """A PNG through the project's writer (no suffix: .png); JPEG and other preview
    formats as PIL picks them by suffix."""
    from engine.images import write_png

    if path.suffix.lower() in ("", ".png"):
        return write_png(path.with_suffix(".png"), image)
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def _into_folder(output: str, stem: str) -> Path:
    """``-o`` as given: a file, or, where it ends in a slash or names a folder that exists,
    ``<folder>/<stem>.png`` (``-o out/`` -> out/stone.png, as ``--maps`` writes into a folder)."""
    out = Path(output)
    return out / f"{stem}.png" if output.endswith(("/", os.sep)) or out.is_dir() else out


def map_paths(output: str, preset: str, names: list[str]) -> dict[str, Path]:
    """Where ``--maps`` writes: into the folder ``output`` (``stone/`` -> stone/stone_height.png),
    or beside a file name (``out/rock.png`` -> out/rock_height.png)."""
    out = Path(output)
    folder, stem = (out.parent, out.stem) if out.suffix else (out, preset)
    return {name: folder / f"{stem}_{name}.png" for name in ["basecolor", *names]}


def _map_settings(args, preset):
    """The preset's map settings with every option given (one option per MapSettings field)."""
    from dataclasses import fields

    from engine.maps import MapSettings

    overrides = {f.name: getattr(args, f.name) for f in fields(MapSettings) if getattr(args, f.name) is not None}
    return preset.map_settings.merged(overrides)


def cmd_synth(args) -> int:
    import numpy as np

    from engine.images import write_png
    from engine.maps import derive_maps, parse_map_names
    from engine.progress import Progress
    from engine.synth import Synthesizer, parse_size, tile_2x2

    h, w = parse_size(args.size)
    period = None
    if args.period:
        ph, pw = parse_size(args.period)
        period = (ph, pw)
    synth = Synthesizer.load(args.preset, device=args.device, precision=args.precision)
    maps = parse_map_names(args.maps) if args.maps else None
    settings = _map_settings(args, synth.preset) if maps is not None else None
    noise = _noise_from_args(args, synth.preset.noise)
    bar = Progress(1, f"synth {synth.preset.name} {w}x{h}", enabled=not args.quiet)
    t0 = time.perf_counter()

    def progress(done, total):
        bar.total = total
        bar.update(done)

    image = synth.synthesize((h, w), seed=args.seed, noise=noise, period=period, tile=args.tile,
                             progress=progress, dtype=np.uint8)
    bar.close()
    if maps is None:
        written = [_write_image(_into_folder(args.output, synth.preset.name), image)]
    else:
        paths = map_paths(args.output, synth.preset.name, maps)
        written = [write_png(paths["basecolor"], image)]
        written += [write_png(paths[name], data) for name, data in derive_maps(image, maps, settings).items()]
    if args.tiled:
        _write_image(_into_folder(args.tiled, f"{synth.preset.name}-2x2"), tile_2x2(image))
    if not args.quiet:
        print(f"wrote {', '.join(str(p) for p in written)} ({w}x{h}, seed {args.seed}, {synth.device}, "
              f"{time.perf_counter() - t0:.2f} s)")
        note, _ = synth.repeat_note((h, w), period)
        if note:
            print(f"note: {note} (--{'period' if period else 'size'})")
    return 0


def cmd_presets(args) -> int:
    from engine.presets import scan_presets, search_dirs

    scan = scan_presets()
    presets = scan.presets
    if args.json:
        print(json.dumps([{"name": p.name, "kind": p.kind, "path": str(p.path),
                           "exemplar": p.meta.get("exemplar", {}), "broken": None} for p in presets]
                         + [{"name": b.name, "kind": None, "path": str(b.path), "exemplar": {}, "broken": b.reason}
                            for b in scan.broken], indent=2))
        return 0
    if not presets and not scan.broken:
        print("no presets installed; searched: " + ", ".join(str(d) for d in search_dirs()))
        return 0
    for p in presets:
        ex = p.meta.get("exemplar", {})
        print(f"{p.name:16s} {p.kind:8s} {ex.get('source', '')[:60]:60s} {ex.get('licence', '')}")
    for b in scan.broken:
        print(f"{b.name:16s} {'BROKEN':8s} {b.reason}")
    return 0


def _train_config(cls, args):
    """``cls()`` (TrainConfig or StyleConfig) with the options given on the command line:
    every field that has a same-named option; ``--minutes`` makes the budget time, not steps."""
    from dataclasses import fields

    cfg = cls()
    for f in fields(cfg):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(cfg, f.name, value)
    if args.minutes is not None:
        cfg.steps = None
    return cfg


def _run_trainer(task, args, name: str) -> int:
    from engine.presets import data_dir, user_dir
    from training.loop import Trainer

    trainer = Trainer(task, name, Path(args.run_dir) if args.run_dir else data_dir() / "runs" / name,
                      preset_dir=Path(args.out) if args.out else user_dir(), device=args.device,
                      show_progress=not args.quiet)
    try:
        folder = trainer.run(resume=args.resume, fresh=args.fresh, stop_after=args.stop_after)
    except KeyboardInterrupt:
        return 130
    if folder is None:
        print(f"stopped at step {trainer.step}; continue with --resume")
    return 0


def cmd_train(args) -> int:
    if args.style or args.content_dir:
        if not (args.style and args.content_dir):
            raise ValueError("style training needs both --style IMAGE and --content-dir FOLDER")
        if args.image:
            raise ValueError("give either an exemplar image (texture preset) or --style/--content-dir (style preset)")
        if args.relu5:
            raise ValueError("--relu5 is for texture presets (an exemplar image), not style presets")
        if args.layout is not None:
            raise ValueError("--layout / --no-layout is for texture presets (an exemplar image), not style presets")
        if args.start_from is not None:
            raise ValueError("--start-from is for texture presets (an exemplar image), not style presets")
        for option, value in (("--boards", args.boards), ("--repeat", args.repeat)):
            if value is not None:
                raise ValueError(f"{option} is for texture presets (an exemplar image), not style presets")
        return cmd_train_style(args)
    if not args.image:
        raise ValueError("give an exemplar image (texture preset) or --style IMAGE --content-dir FOLDER (style preset)")
    from engine.noise import NoiseParams
    from engine.presets import check_name
    from training.texture import TextureTask, TrainConfig

    name = check_name(args.name)
    cfg = _train_config(TrainConfig, args)
    cfg.noise = _noise_from_args(args, NoiseParams()).to_dict()
    task = TextureTask(args.image, cfg, source=args.source or str(Path(args.image).resolve()),
                       licence=args.licence or "unknown")
    return _run_trainer(task, args, name)


def cmd_train_style(args) -> int:
    from engine.presets import check_name
    from training.style import StyleConfig, StyleTask

    name = check_name(args.name)
    cfg = _train_config(StyleConfig, args)
    if args.mdan_steps is not None:
        cfg.mdan["steps"] = args.mdan_steps
    task = StyleTask(args.style, args.content_dir, cfg,
                     source=args.source or str(Path(args.style).resolve()), licence=args.licence or "unknown",
                     content_source=args.content_source or str(Path(args.content_dir).resolve()),
                     content_licence=args.content_licence or "unknown")
    return _run_trainer(task, args, name)


def cmd_mdan(args) -> int:
    from engine.synth import parse_size, tile_2x2, to_uint8
    from training.exemplar import load_exemplar
    from training.mdan import MDAN, MDANConfig

    cfg = MDANConfig()
    for key in ("steps", "content_weight", "tv_weight", "seed", "precision", "style_size", "lr", "lr_d"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    size = None
    if args.content:
        if args.size:
            cfg.size = int(args.size)
    elif args.size:
        size = parse_size(args.size)
    t0 = time.perf_counter()
    contents = []
    if args.content:
        from engine.sequence import collect_frames

        contents = collect_frames(args.content)
        if len(contents) > 1 and Path(args.output).suffix:
            raise ValueError("with several --content images, -o is a folder (outputs keep their names)")
    if args.warm_start and len(contents) < 2:
        raise ValueError("--warm-start needs a sequence of --content frames")
    mdan = MDAN(args.style, cfg, device=args.device)
    if len(contents) <= 1:
        content = load_exemplar(contents[0], cfg.size, opaque_only=False)[0].permute(1, 2, 0).numpy() if contents else None
        what = f"mdan {contents[0].name}" if contents else "mdan texture"
        out, history = mdan.run(content, size=size, progress=not args.quiet, desc=what)
        image = to_uint8(out)
        path = _write_image(Path(args.output), image)
        if args.tiled:
            _write_image(Path(args.tiled), tile_2x2(image))
        if not args.quiet:
            first, last = history[0], history[-1]
            print(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, {len(history)} steps, "
                  f"{time.perf_counter() - t0:.1f} s; loss {first['loss']:.3g} -> {last['loss']:.3g})")
        return 0
    # A sequence: one D carries over from image to image (the paper's finding); with
    # --warm-start each frame also starts from the previous result (less flicker). After
    # every frame, D's state is saved beside the outputs, so --resume loses nothing.
    from engine.sequence import check_destinations, read_frame, save_frame

    if args.resume and args.overwrite:
        raise ValueError("--resume keeps finished frames and --overwrite redoes them: pick one")
    out_dir = Path(args.output)
    check_destinations(contents, out_dir, args.overwrite or args.resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / ".mdan_state.pt"
    if args.resume:
        mdan.load_state(state_path, log=lambda m: print(f"mgan: {m}", file=sys.stderr))
    prev, skipped = None, 0
    for i, f in enumerate(contents):
        dst = out_dir / f.name
        if args.resume and dst.is_file():
            prev, skipped = read_frame(dst), skipped + 1
            continue
        content = load_exemplar(f, cfg.size, opaque_only=False)[0].permute(1, 2, 0).numpy()
        init = prev if args.warm_start and prev is not None and prev.shape == content.shape else None
        out, _ = mdan.run(content, init=init, progress=not args.quiet, desc=f"mdan {i + 1}/{len(contents)} {f.name}")
        save_frame(dst, to_uint8(out))
        mdan.save_state(state_path)
        prev = out
    state_path.unlink(missing_ok=True)  # the sequence is complete
    if not args.quiet:
        kept = f"; kept {skipped} finished" if skipped else ""
        print(f"wrote {len(contents) - skipped} images to {out_dir}{kept} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_stylize(args) -> int:
    from engine.sequence import collect_frames, stylize_frames
    from engine.synth import Synthesizer

    frames = collect_frames(args.inputs)
    out_dir = Path(args.output)
    synth = Synthesizer.load(args.preset, device=args.device, precision=args.precision)
    if synth.preset.kind != "style" and not args.any_kind:
        raise ValueError(f"preset {synth.preset.name!r} is a {synth.preset.kind} preset; stylize with a "
                         "style preset (see `mgan presets`), or pass --any-kind to decode with it anyway")
    t0 = time.perf_counter()
    written = stylize_frames(synth, frames, out_dir, tile=args.tile, temporal=args.temporal,
                             overwrite=args.overwrite, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {len(written)} frame(s) to {out_dir} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_engine(args) -> int:
    from engine.presets import list_presets
    from engine.protocol import Limits
    from engine.security import load_server_keys
    from engine.server import EngineServer, engine_version

    if bool(args.curve_secret) != bool(args.curve_clients):
        raise ValueError("CurveZMQ needs both --curve-secret (the engine's .key_secret file) and "
                         "--curve-clients (a folder of the allowed clients' .key files)")
    curve = load_server_keys(args.curve_secret, args.curve_clients) if args.curve_secret else None
    limits = Limits(**{k: v for k, v in (("max_pixels", args.max_pixels),
                                         ("max_message_bytes", args.max_message_bytes)) if v})
    server = EngineServer(args.bind, device=args.device, curve=curve, limits=limits)
    endpoint = server.start()
    try:
        names = ", ".join(p.name for p in list_presets()) or "(none installed)"
        print(f"mgan engine {engine_version()} listening on {endpoint}"
              f"{' (CurveZMQ)' if curve else ''}\ndevice: {server.device}\npresets: {names}", flush=True)
        server.serve()
    finally:
        server.close()
    print("mgan engine stopped", flush=True)
    return 0


def seed_arg(text: str) -> int:
    """A --seed value: the engine protocol's range, so a seed that works here works over the socket."""
    from engine.protocol import MAX_SEED

    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in 0..2^63-1, got {seed}")
    return seed


def repeat_arg(text: str) -> tuple[float, float] | str:
    """A --repeat value, WIDTHxHEIGHT px (decimals allowed) -> (height, width); or "auto"."""
    from engine.layout import parse_repeat

    try:
        return parse_repeat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from engine.protocol import AUGMENTS

    p = argparse.ArgumentParser(prog="mgan", description="Seamless neural textures (MGAN).")
    sub = p.add_subparsers(dest="command", required=True)

    def noise_args(sp):
        g = sp.add_argument_group("noise")
        g.add_argument("--noise", dest="noise_kind", choices=("brown", "perlin"))
        g.add_argument("--noise-scale", dest="noise_scale", type=float, help="feature size in px")
        g.add_argument("--noise-beta", dest="noise_beta", type=float, help="brown noise exponent")
        g.add_argument("--noise-octaves", dest="noise_octaves", type=int)
        g.add_argument("--noise-contrast", dest="noise_contrast", type=float)

    s = sub.add_parser("synth", help="synthesize a seamless texture from a preset")
    s.add_argument("--preset", required=True, help="preset name or folder")
    s.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT, any size (default 1024x1024)")
    s.add_argument("--seed", type=seed_arg, default=0)
    s.add_argument("--period", help="noise period WIDTHxHEIGHT (multiples of 8); default: the canvas")
    s.add_argument("--tile", type=int, default=1024, help="decode tile side in px (bounds memory)")
    s.add_argument("-o", "--output", required=True,
                   help="a PNG (or JPEG) file, or a folder (out/: out/<preset>.png; with --maps, the material set)")
    s.add_argument("--tiled", help="also write the texture repeated 2x2 here (a folder: <preset>-2x2.png in it)")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA if present)")
    s.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    s.add_argument("-q", "--quiet", action="store_true")
    noise_args(s)
    g = s.add_argument_group("PBR maps (defaults: the preset's, then the engine's)")
    g.add_argument("--maps", help="also write maps: 'all' or any of height,normal,roughness,ao; -o is then a "
                                  "folder (stone/ -> stone/stone_basecolor.png, stone/stone_height.png, ...)")
    g.add_argument("--height-scale", type=float, help="relief and its sign (-1: light parts sit low, e.g. mortar)")
    g.add_argument("--normal-strength", type=float, help="slope of the normal map (1: the height range is "
                                                         "8 px of relief)")
    g.add_argument("--normal-convention", choices=("opengl", "directx"), help="directx flips green (default opengl)")
    g.add_argument("--roughness-min", type=float, help="roughness of the smoothest parts (0..1)")
    g.add_argument("--roughness-max", type=float, help="roughness of the roughest parts (0..1)")
    g.add_argument("--ao-radius", type=float, help="ambient occlusion reach in px (1..31)")
    g.add_argument("--ao-strength", type=float, help="ambient occlusion depth (0: none)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("presets", help="list installed presets")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_presets)

    s = sub.add_parser("train", help="train a texture preset from one exemplar image, or a style "
                                      "preset from --style and --content-dir")
    s.add_argument("image", nargs="?", help="the exemplar of a texture preset")
    s.add_argument("--style", help="style image (style preset)")
    s.add_argument("--content-dir", help="folder of content photos to learn the style on (style preset)")
    s.add_argument("--content-size", type=int, help="content photos' longest side (style; default 384)")
    s.add_argument("--mdan-steps", type=int, help="MDAN steps per content photo (style; default 125)")
    s.add_argument("--inverter-steps", type=int, help="first steps that teach G to invert VGG19 (style)")
    s.add_argument("--content-source", help="where the content photos come from (recorded in the preset)")
    s.add_argument("--content-licence", help="the content photos' licence (recorded in the preset)")
    s.add_argument("--name", required=True)
    budget = s.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="train for this much training time (default: 5 "
                                                      "minutes for a texture, 1500 steps for a style)")
    budget.add_argument("--steps", type=int, help="train for this many steps instead")
    s.add_argument("--batch", type=int)
    s.add_argument("--crop", type=int, help="training crop side in px (multiple of 8)")
    s.add_argument("--scale", type=float, help="exemplar scale (texture; default 1: features at the photo's "
                                               "own pixel size, photos above --max-side downscaled)")
    s.add_argument("--max-side", type=int, help="longest exemplar side trained on at the default scale (texture; 512)")
    s.add_argument("--exemplar-size", type=int, help="scale the exemplar's longest side to this instead of --scale")
    s.add_argument("--augment", choices=AUGMENTS)
    s.add_argument("--lattice", choices=("auto", "waves", "off"),
                   help="texture: give a regular photo's G periodic inputs (bricks, tiles), a striped photo's "
                        "boards of uneven width (wood, planks; 'waves': one wave instead); default auto")
    s.add_argument("--boards", type=float, metavar="PX",
                   help="texture: lay boards (planks, floorboards, siding) of about this mean width in the photo's "
                        "own px across its grain, in place of the width read from its spectrum (the training log "
                        "says which); a look control: the read width scored better on the photos measured "
                        "(docs/MEASURED.md, boards)")
    s.add_argument("--relu5", action="store_true", default=None,
                   help="texture: also match VGG19 relu5_1 (156 px of reach, 1.2x the step): layered photos, "
                        "rock strata, bands; best with ~3x the budget, e.g. --steps 1650; not for regular photos, whose "
                        "periodic inputs hold their structure (docs/MEASURED.md)")
    s.add_argument("--repeat", type=repeat_arg, metavar="WxH|auto",
                   help="texture: a patterned photo's repeat (carpet, printed fabric, wallpaper): one whole unit of "
                        "its pattern, WIDTHxHEIGHT in the photo's own px, or auto: read from the photo (the log "
                        "says what it read); G follows that repeat laid edge to edge (a canvas holds whole "
                        "repeats, each stretched to fit); not for bricks or tiles, whose lattice does better "
                        "(docs/MEASURED.md)")
    s.add_argument("--layout", action=argparse.BooleanOptionalAction, default=None,
                   help="texture: G also follows a coarse map quilted from the photo at 1/8 (engine/layout.py): "
                        "its large structure: strata, bands, patches (irregular photos; default off; docs/MEASURED.md)")
    s.add_argument("--start-from", metavar="auto|off|PRESET",
                   help="texture: G's first weights: the nearest built-in texture preset's (auto, the default), "
                        "none (off: from scratch), or a texture preset's name or folder (docs/MEASURED.md)")
    s.add_argument("--lr-g", type=float)
    s.add_argument("--lr-d", type=float)
    s.add_argument("--lr-decay", type=float, help="share of the budget over whose end G's and D's rates fall "
                                                  "linearly to a tenth (texture default 0.5; 0: constant)")
    s.add_argument("--adv-ratio", type=float)
    s.add_argument("--checkpoint-every", type=int)
    s.add_argument("--preview-every", type=int)
    s.add_argument("--seed", type=seed_arg)
    s.add_argument("--precision", choices=("auto", "bf16", "fp32"))
    s.add_argument("--device")
    s.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    s.add_argument("--fresh", action="store_true", help="discard an existing checkpoint and start over")
    s.add_argument("--stop-after", type=int, help="train at most this many steps in this call")
    s.add_argument("--run-dir", help="checkpoints and previews (default: $MGAN_HOME/runs/NAME)")
    s.add_argument("--out", help="folder to write the preset into (default: the user preset folder)")
    s.add_argument("--source", help="where the exemplar comes from (recorded in the preset)")
    s.add_argument("--licence", help="the exemplar's licence (recorded in the preset)")
    s.add_argument("-q", "--quiet", action="store_true")
    noise_args(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("mdan", help="MDAN, the iterative method: stylise a photo (or synthesize "
                                     "a texture from noise without --content); slow, the quality reference")
    s.add_argument("--style", required=True, help="style (or texture) image")
    s.add_argument("--content", nargs="+", help="content photo(s), folders or globs; without it a "
                                                 "seamless texture is synthesized")
    s.add_argument("--warm-start", action="store_true",
                   help="frame sequences: start each frame from the previous result (less flicker)")
    s.add_argument("--overwrite", action="store_true", help="replace existing outputs in the -o folder")
    s.add_argument("--resume", action="store_true",
                   help="sequences: keep the frames already in the -o folder and continue after them "
                        "(with the discriminator as it was)")
    s.add_argument("--size", help="output longest side with --content (default 384); WIDTHxHEIGHT "
                                  "(multiples of 16) without")
    s.add_argument("--style-size", type=int, help="style image longest side (default 384)")
    s.add_argument("--steps", type=int, help="optimisation steps (default 125)")
    s.add_argument("--content-weight", type=float)
    s.add_argument("--tv-weight", type=float)
    s.add_argument("--lr", type=float)
    s.add_argument("--lr-d", type=float)
    s.add_argument("--seed", type=seed_arg)
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--tiled", help="also write the result repeated 2x2 (useful without --content)")
    s.add_argument("--device")
    s.add_argument("--precision", choices=("auto", "bf16", "fp32"))
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_mdan)

    s = sub.add_parser("stylize", help="stylise photos or rendered frames with a style preset "
                                        "(one forward pass each, any size)")
    s.add_argument("--preset", required=True, help="style preset name or folder")
    s.add_argument("inputs", nargs="+", help="image files, folders of frames, or globs ('frames/*.png')")
    s.add_argument("-o", "--output", required=True, help="output folder (files keep their names)")
    s.add_argument("--temporal", type=float, default=0.0,
                   help="frame sequences: 0..1, how strongly unchanged pixels keep the previous "
                        "stylised frame (reduces flicker; 0 = off)")
    s.add_argument("--tile", type=int, default=1024, help="decode tile side in px (bounds memory)")
    s.add_argument("--overwrite", action="store_true", help="replace existing output files")
    s.add_argument("--any-kind", action="store_true", help="allow a texture preset")
    s.add_argument("--device")
    s.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_stylize)

    s = sub.add_parser("engine", help="serve synthesis and training over ZeroMQ (docs/protocol.md)")
    s.add_argument("--bind", default="tcp://127.0.0.1:5757",
                   help="tcp://127.0.0.1:PORT (PORT * picks a free one) or ipc:///path (default: %(default)s)")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA if present)")
    s.add_argument("--curve-secret", help="the engine's CurveZMQ secret key file (NAME.key_secret); "
                                          "required to bind anything but loopback/ipc")
    s.add_argument("--curve-clients", help="folder of the public key files (*.key) of the clients allowed in")
    s.add_argument("--max-pixels", type=int, help="largest synthesize/stylize request in pixels")
    s.add_argument("--max-message-bytes", type=int, help="largest message frame in bytes")
    s.set_defaults(func=cmd_engine)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _reexec_with_tunables(argv)
    from engine.presets import PresetError
    from engine.vgg import WeightsMissingError

    try:
        return args.func(args)
    except (PresetError, WeightsMissingError, ValueError, OSError, RuntimeError) as exc:
        print(f"mgan: error: {exc}", file=sys.stderr)   # (OSError: a full disk, a read-only folder)
        return 2


if __name__ == "__main__":
    sys.exit(main())
