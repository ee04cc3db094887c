"""A real MXNet Model Server for tests: started on free loopback ports below 32767 (MMS refuses
larger ones), its pid file, sockets and logs in the test's folder, always stopped."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

BIN = os.path.dirname(sys.executable)


def free_port(avoid=()):
    """A free TCP port on 127.0.0.1 in 20000..32000."""
    rng = np.random.default_rng()
    for port in rng.permutation(np.arange(20000, 32000)):
        port = int(port)
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000..32000")


def request(url, data=None, method=None, timeout=60, content_type="image/png"):
    """``(status, body)`` of one HTTP request (an HTTP error status is returned, not raised)."""
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Server:
    """Addresses of a running server: ``api`` (predictions) and ``mgmt`` (management)."""

    def __init__(self, api, mgmt):
        self.api, self.mgmt = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{mgmt}"

    def predict(self, model, body, content_type="image/jpeg"):
        """``(status, body)`` of ``POST /predictions/MODEL``."""
        return request(f"{self.api}/predictions/{model}", data=body, method="POST",
                       content_type=content_type)


@contextlib.contextmanager
def running_mms(folder, store, models, ready=(), deadline=180):
    """Start ``multi-model-server --start --foreground`` with ``--model-store store --models
    models`` (a list of ``NAME=FILE.mar``) from ``folder``; wait until every model in ``ready``
    has READY workers; yield a :class:`Server`; stop it and its workers whatever happens."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("MXNet Model Server needs Java (java 8+ on PATH or JAVA_HOME); .ci/run "
                    "installs openjdk-17-jre-headless")
    server = os.path.join(BIN, "multi-model-server")
    assert os.path.isfile(server), "multi-model-server missing: pip install '.[serve]'"
    folder = str(folder)
    api = free_port()
    mgmt = free_port(avoid={api})
    config = os.path.join(folder, "mms-test-config.properties")
    with open(config, "w") as f:
        f.write(f"inference_address=http://127.0.0.1:{api}\n"
                f"management_address=http://127.0.0.1:{mgmt}\ndefault_workers_per_model=1\n")
    # TMPDIR/TEMP: MMS's pid file and worker sockets stay in this test's folder
    env = dict(os.environ, TMPDIR=folder, TEMP=folder, LOG_LOCATION=os.path.join(folder, "logs"),
               METRICS_LOCATION=os.path.join(folder, "logs"),
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    out_path = os.path.join(folder, "server.out")
    log = open(out_path, "w")
    proc = subprocess.Popen([server, "--start", "--foreground", "--mms-config", config,
                             "--model-store", str(store), "--models", *models],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    srv = Server(api, mgmt)
    try:
        end = time.monotonic() + deadline
        for name in ready:  # up, and the model has READY workers
            while True:
                assert proc.poll() is None, open(out_path).read()[-3000:]
                try:
                    code, body = request(f"{srv.mgmt}/models/{name}", timeout=5)
                    workers = json.loads(body)["workers"] if code == 200 else []
                    if workers and all(w["status"] == "READY" for w in workers):
                        break
                except OSError:
                    pass
                assert time.monotonic() < end, f"MMS did not load {name} in {deadline} s"
                time.sleep(1)
        yield srv
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server, its Java frontend and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
