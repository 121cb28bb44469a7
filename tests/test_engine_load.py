"""8 clients at once, 50 mixed requests each: every answer checked against the in-process
pipeline, none lost, and the engine's memory back near where it started."""
import random
import threading

import numpy as np
import pytest

from engine import protocol as P
from engine.client import EngineClient, EngineError
from tests.engine_proc import EngineProcess, InProcess, engine_home

pytestmark = pytest.mark.slow

CLIENTS, REQUESTS = 8, 50
SIZES = [(64, 64), (48, 40), (32, 64)]
SEEDS = range(3)
DTYPES = ("uint8", "float32")
_rng = np.random.default_rng(5)
STYLE_INPUTS = [_rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), _rng.random((24, 32, 3), dtype=np.float32)]
# Growth allowed after the load. Measured: ~2 MiB (allocator slack). Keeping the inputs and
# replies of every compute request would add ~8 MiB here.
RSS_SLACK = 12 * 2 ** 20


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return engine_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def engine(home):
    proc = EngineProcess(home, "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def expected(home):
    """Every answer a client can get, computed here by the engine's own code (on one thread,
    as the engine decodes small canvases; it is also far faster on a busy machine)."""
    from engine.worker import cpu_threads

    pipeline = InProcess(home)
    with cpu_threads(1):
        synth = {(w, h, s, d): pipeline.synthesize(w, h, s, d) for w, h in SIZES for s in SEEDS for d in DTYPES}
        style = {(k, d): pipeline.stylize(STYLE_INPUTS[k], d) for k in range(len(STYLE_INPUTS)) for d in DTYPES}
    return synth, style


def plan(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    ops = rng.choices(["hello", "presets", "status", "synthesize", "stylize"], weights=[25, 10, 15, 35, 15],
                      k=REQUESTS)
    return [(op, rng.choice(SIZES), rng.choice(SEEDS), rng.choice(DTYPES), rng.randrange(len(STYLE_INPUTS)))
            for op in ops]


def run_plan(endpoint: str, steps: list[tuple], expected, failures: list, answered: list) -> None:
    synth, style = expected
    with EngineClient(endpoint, timeout=300) as client:
        for i, (op, (w, h), seed, dtype, k) in enumerate(steps):
            try:
                if op == "hello":
                    ok = client.hello()["protocol_version"] == P.PROTOCOL_VERSION
                elif op == "presets":
                    ok = "tiny" in [p["name"] for p in client.presets()]
                elif op == "status":
                    try:
                        client.status(f"job-none-{i}")
                        ok = False
                    except EngineError as exc:
                        ok = exc.code == P.UNKNOWN_JOB
                elif op == "synthesize":
                    got = client.synthesize("tiny", w, h, seed=seed, dtype=dtype)
                    ok = got.dtype == np.dtype(dtype) and got.tobytes() == synth[w, h, seed, dtype].tobytes()
                else:
                    got = client.stylize("tiny", STYLE_INPUTS[k], dtype=dtype)[0]
                    ok = got.tobytes() == style[k, dtype].tobytes()
            except EngineError as exc:
                ok, op = False, f"{op}: {exc.code}: {exc}"
            answered.append(op)
            if not ok:
                failures.append(f"request {i}: {op} {w}x{h} seed {seed} {dtype} gave a wrong answer")


def test_eight_clients_fifty_mixed_requests(engine, expected):
    warm_failures, warm = [], []
    warm_up = [(op, size, seed, dtype, k) for op in ("synthesize", "stylize") for size in SIZES
               for seed in SEEDS[:1] for dtype in DTYPES for k in range(len(STYLE_INPUTS))]
    run_plan(engine.endpoint, warm_up, expected, warm_failures, warm)
    assert not warm_failures, warm_failures
    baseline = engine.rss_bytes()

    failures, answered = [], []
    threads = [threading.Thread(target=run_plan, args=(engine.endpoint, plan(i), expected, failures, answered))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not failures, failures[:10]
    assert len(answered) == CLIENTS * REQUESTS
    assert {"synthesize", "stylize", "hello"} <= set(answered)

    after = engine.rss_bytes()
    assert after - baseline < RSS_SLACK, f"RSS grew from {baseline / 2**20:.0f} to {after / 2**20:.0f} MiB"
