"""Pytest fixtures for testing a Qiskit Runtime client against the reference server.

The session fixture ``qrserver`` starts the built ``qrserver`` on a free loopback port
with a throwaway database, and stops it after the session; with ``QRSERVER_URL`` and
``QRSERVER_ADMIN_TOKEN`` set it uses that server instead (a shared deployment, or
``make run``). The function fixture ``isolated`` gives each test a fixture of its own on
that server: an account, an instance and a principal with an API key, deleted after the
test, so tests may share one server, in parallel too (``pytest -n 4`` with xdist).
"""

import os
import pathlib
import shutil
import socket
import subprocess
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "pytest-admin-token-0123456789"


class Server:
    """A running reference server: its base URL and the control API's token."""

    def __init__(self, url, admin_token):
        self.url = url.rstrip("/")
        self.admin_token = admin_token

    def control(self, method, path, **kwargs):
        """Calls the control API (``/control/v1`` + path) with the admin token."""
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/control/v1{path}", headers=headers, timeout=30, **kwargs)


class Fixture:
    """A fixture on the server: what it made, and a way to call the API as its principal."""

    def __init__(self, server, answer):
        self.server = server
        self.id = answer["id"]
        self.accounts = answer["accounts"]
        self.instances = answer["instances"]
        self.principals = answer["principals"]
        self.crn = self.instances[0] if self.instances else None
        self.api_key = self.principals[0]["api_keys"][0] if self.principals else None
        self._token = None

    def token(self):
        """An IAM access token for the fixture's first principal, as IBM Cloud IAM issues."""
        if self._token is None:
            r = requests.post(
                f"{self.server.url}/identity/token",
                data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": self.api_key},
                timeout=30,
            )
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method, path, crn=None, **kwargs):
        """Calls the API (``/api/v1`` + path) as the fixture's principal, on its instance."""
        headers = {"Authorization": f"Bearer {self.token()}", "Service-CRN": crn or self.crn, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.server.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _qrserver_binary():
    built = os.environ.get("QRSERVER_BIN") or str(REPO / "bin" / "qrserver")
    if not os.path.exists(built):
        if shutil.which("go") is None:
            raise RuntimeError(f"no qrserver at {built}: build it with `go build -o bin/qrserver ./cmd/qrserver`")
        subprocess.run(["go", "build", "-o", built, "./cmd/qrserver"], cwd=REPO, check=True)
    return built


@pytest.fixture(scope="session")
def qrserver(tmp_path_factory):
    """The reference server for the session: started here, or the one QRSERVER_URL names."""
    if os.environ.get("QRSERVER_URL"):
        yield Server(os.environ["QRSERVER_URL"], os.environ["QRSERVER_ADMIN_TOKEN"])
        return
    port = _free_port()
    db = tmp_path_factory.mktemp("qrserver") / "qrserver.db"
    proc = subprocess.Popen(
        [_qrserver_binary(), "--addr", f"127.0.0.1:{port}", "--db", str(db),
         "--seed", str(REPO / "seed" / "demo.yaml"), "--admin-token", ADMIN_TOKEN, "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qrserver did not start: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        yield Server(url, ADMIN_TOKEN)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The document each test's fixture is made from: what it leaves out (ids, the CRN, the key)
# the server generates.
DOCUMENT = {
    "accounts": [{"plans": [{"plan_id": "open-plan", "usage_allocation_seconds": 600, "backends": ["ibm_test"]}]}],
    "instances": [{"plan_id": "open-plan", "backends": ["ibm_test"], "usage_allocation_seconds": 600,
                   "usage_period": "current_month", "usage_consumed_seconds": 42}],
    "principals": [{"name": "pytest user"}],
}


@pytest.fixture
def isolated(qrserver):
    """A fixture of the test's own, deleted after it."""
    r = qrserver.control("POST", "/fixtures", json=DOCUMENT)
    assert r.status_code == 201, r.text
    fx = Fixture(qrserver, r.json())
    yield fx
    r = qrserver.control("DELETE", f"/fixtures/{fx.id}")
    assert r.status_code in (204, 404), r.text
