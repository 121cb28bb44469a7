"""Who gets served: loopback by default, other interfaces only with CurveZMQ keys, and then
only the clients whose public keys the engine lists."""
import shutil

import pytest
import zmq.auth

from engine.client import EngineClient, EngineTimeout
from engine.security import CurveClientKeys
from tests.conftest import run_cli
from tests.engine_proc import EngineProcess, engine_home


def test_non_loopback_bind_without_keys_is_refused(isolated_home):
    r = run_cli("engine", "--bind", "tcp://0.0.0.0:5799", env={"MGAN_HOME": str(isolated_home)}, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refusing to bind tcp://0.0.0.0:5799" in r.stderr and "--curve-secret" in r.stderr
    assert "Traceback" not in r.stderr and "listening" not in r.stdout


def test_half_a_curve_configuration_is_refused(isolated_home, tmp_path):
    zmq.auth.create_certificates(tmp_path, "server")
    r = run_cli("engine", "--bind", "tcp://0.0.0.0:5799", "--curve-secret", str(tmp_path / "server.key_secret"),
                env={"MGAN_HOME": str(isolated_home)}, timeout=120)
    assert r.returncode == 2 and "--curve-clients" in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("engine", "--bind", "tcp://0.0.0.0:5799", "--curve-secret", str(tmp_path / "server.key"),
                "--curve-clients", str(tmp_path / "empty"), env={"MGAN_HOME": str(isolated_home)}, timeout=120)
    assert r.returncode == 2 and "holds only a public key" in r.stderr


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("server", "client", "intruder"):
        zmq.auth.create_certificates(folder, name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(folder / "client.key", allowed)
    return folder, allowed


def test_curve_engine_serves_only_listed_clients(tmp_path, keys):
    folder, allowed = keys
    engine = EngineProcess(engine_home(tmp_path / "home"), "tcp://0.0.0.0:*", "--curve-secret",
                           str(folder / "server.key_secret"), "--curve-clients", str(allowed)).start()
    try:
        address = engine.connect_address()
        assert "(CurveZMQ)" in engine.log()
        with EngineClient(address) as plain, pytest.raises(EngineTimeout):
            plain.hello(timeout=2.0)
        intruder = CurveClientKeys.from_files(folder / "server.key", folder / "intruder.key_secret")
        with EngineClient(address, curve=intruder) as c, pytest.raises(EngineTimeout):
            c.hello(timeout=2.0)
        allowed_keys = CurveClientKeys.from_files(folder / "server.key", folder / "client.key_secret")
        with EngineClient(address, curve=allowed_keys) as c:
            assert c.hello(timeout=30)["ok"]
            assert c.synthesize("tiny", 32, 32).shape == (32, 32, 3)
    finally:
        engine.kill()
