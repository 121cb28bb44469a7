"""The client's own behaviour, with no engine (or a silent one) at the other end:
deadlines, Lazy Pirate recovery, local validation."""
import threading
import time

import numpy as np
import pytest
import zmq

from engine import protocol as P
from engine.client import EngineClient, EngineError, EngineTimeout, image_format, raise_for_error


@pytest.fixture
def nowhere(tmp_path):
    return f"ipc://{tmp_path}/nobody.sock"  # nothing listens there


def test_a_deadline_fails_every_request_in_flight_and_reconnects(nowhere):
    with EngineClient(nowhere) as client:
        first = client.send("hello", timeout=0.3)
        second = client.send("status", timeout=30)
        old_socket = client._socket
        t0 = time.monotonic()
        replies = []
        while len(replies) < 2 and time.monotonic() - t0 < 5:
            replies += client.poll(0.05)
        elapsed = time.monotonic() - t0
        assert 0.25 < elapsed < 1.3, elapsed  # the earliest deadline, not the latest
        by_id = {r.id: r for r in replies}
        assert set(by_id) == {first, second} and client.pending() == []
        with pytest.raises(EngineTimeout, match=f"did not answer hello within 0.3 s; is it running.*{nowhere}"):
            raise_for_error(by_id[first])
        with pytest.raises(EngineTimeout, match="status was abandoned"):
            raise_for_error(by_id[second])
        assert client._socket is not old_socket  # Lazy Pirate: a fresh socket


def test_blocking_calls_raise_within_their_deadline(nowhere):
    with EngineClient(nowhere) as client:
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout) as info:
            client.hello(timeout=0.5)
        assert info.value.code == P.TIMEOUT and 0.45 < time.monotonic() - t0 < 1.5


def test_invalid_requests_are_refused_before_sending(nowhere):
    with EngineClient(nowhere) as client:
        with pytest.raises(EngineError, match="must be in 8..16384") as info:
            client.synthesize("tiny", 4, 64)
        assert info.value.code == P.BAD_FIELD
        with pytest.raises(EngineError) as info:
            client.stylize("tiny", np.zeros((8, 8, 4), np.uint8))
        assert info.value.code == P.BAD_FRAME
        with pytest.raises(EngineError, match="PNG or JPEG"):
            client.train(b"GIF89a....", "x")
        assert client.pending() == []


def test_replies_are_matched_by_id_and_strays_dropped(tmp_path):
    """A stub engine answers out of order, once with an id nobody asked for."""
    endpoint = f"ipc://{tmp_path}/stub.sock"
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)

    def serve():
        held = [router.recv_multipart() for _ in range(2)]
        for identity, _, header in reversed(held):
            rid = P.parse_header(header)["id"]
            router.send_multipart([identity, b"", *P.encode(P.reply_header("hello", "stray"))])
            router.send_multipart([identity, b"", *P.encode(P.reply_header("hello", rid, n=rid))])

    stub = threading.Thread(target=serve)
    stub.start()
    try:
        with EngineClient(endpoint) as client:
            a, b = client.send("hello"), client.send("hello")
            assert client.wait(a).header["n"] == a
            assert [r.header["n"] for r in client.poll(5.0)] == [b]
    finally:
        stub.join(5)
        router.close(0)


def test_image_format_from_magic_bytes():
    assert image_format(b"\x89PNG\r\n\x1a\n rest") == "png"
    assert image_format(b"\xff\xd8\xff\xe0 rest") == "jpeg"
