"""`inceptionzoo serve EXPORT_DIR`: refusals before anything starts, and a real MXNet Model
Server under load from concurrent clients, stopped by SIGTERM with nothing left behind."""
import json
import os
import random
import shutil
import signal
import socket
import threading

import pytest

from inceptionzoo.cli import main
from inceptionzoo.export import export
from inceptionzoo.mms import free_port, recorded_batching, request
from inceptionzoo.mnist import example_images
from serve_load import ServeProcess


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "export"
    export("inception_mnist", str(folder / "inception_mnist"))
    return folder


def _serve(argv, capsys):
    code = main(["serve"] + [str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def test_a_busy_port_is_refused_first(exported, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        if busy > 32766:  # an ephemeral port MMS could not take anyway: a low one
            s.close()
            s = socket.socket()
            busy = free_port()
            s.bind(("127.0.0.1", busy))
            s.listen()
        code, err = _serve([exported, "--port", busy, "--management-port", free_port()], capsys)
        s.close()
    assert code == 2
    assert err == (f"inceptionzoo serve: error: --port {busy}: cannot listen on 127.0.0.1 "
                   "(Address already in use): expected a free port\n")


@pytest.mark.parametrize("flag", ["--port", "--management-port"])
def test_a_port_mms_refuses_is_refused(exported, capsys, flag):
    other = "--management-port" if flag == "--port" else "--port"
    code, err = _serve([exported, flag, 40000, other, free_port()], capsys)
    assert code == 2
    assert err == (f"inceptionzoo serve: error: {flag} 40000: MXNet Model Server refuses ports "
                   "of 32767 and above; expected 1..32766\n")


def test_missing_java_names_what_to_install(exported, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java there
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code, err = _serve([exported, "--port", free_port()], capsys)
    assert code == 2
    assert err == ("inceptionzoo serve: error: MXNet Model Server needs Java and there is no "
                   "java on PATH: install a Java 8+ runtime, e.g. Debian's "
                   "openjdk-17-jre-headless\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    code, err = _serve([exported], capsys)
    assert code == 2 and "is not an executable: set JAVA_HOME to a Java runtime" in err


def test_missing_serve_extra_names_it(exported, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mms" else real(name, *a))
    code, err = _serve([exported], capsys)
    assert code == 2
    assert err == ("inceptionzoo serve: error: MXNet Model Server (multi-model-server) is not "
                   "installed: in the inceptionzoo checkout, pip install -c constraints.txt -e '.[cpu,serve]'\n")


def test_a_folder_that_is_not_an_export_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    port = free_port()
    code, err = _serve([tmp_path, "--port", port, "--management-port",
                        free_port(avoid={port})], capsys)
    assert code == 2
    assert err == (f"inceptionzoo serve: error: {str(tmp_path)!r}: expected one export, found "
                   "none (an export writes NAME-meta.json)\n")
    code, err = _serve([tmp_path / "missing", "--port", port, "--management-port",
                        free_port(avoid={port})], capsys)
    assert code == 2 and "is not a folder: expected the folder an `inceptionzoo export` wrote" \
        in err


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size must be an integer >= 1; got 0"),
    (["--max-batch-delay", "-1"], "--max-batch-delay must be an integer >= 0; got -1"),
    (["--workers", "0"], "--workers must be an integer >= 1; got 0"),
])
def test_bad_batching_is_refused(exported, capsys, argv, message):
    port = free_port()
    code, err = _serve([exported, "--port", port, "--management-port",
                        free_port(avoid={port})] + argv, capsys)
    assert code == 2 and err == f"inceptionzoo serve: error: {message}\n"


def test_recorded_batching_is_the_meta_readers_checked_value(exported):
    from inceptionzoo.serving_core import check_meta, find_meta, read_meta

    good = read_meta(find_meta(exported))
    assert recorded_batching({}) == {"batch_size": 1, "max_batch_delay_ms": 100}
    assert recorded_batching({"batching": {"batch_size": 8, "max_batch_delay_ms": 5}}) == \
        {"batch_size": 8, "max_batch_delay_ms": 5}
    for bad in ([8, 5], {"batch_size": 0, "max_batch_delay_ms": 5},
                {"batch_size": "8", "max_batch_delay_ms": 5}, {"batch_size": 8}):
        with pytest.raises(ValueError, match="'batching' must be"):
            check_meta(dict(good, batching=bad), "m.json")


def _truth(path):
    return os.path.basename(path).split("-")[1]


def _descendants(pid):
    import psutil

    return psutil.Process(pid).children(recursive=True)


def _gone(procs):
    import psutil

    left = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


def _load(url, clients=16, total=200):
    """``total`` requests from ``clients`` threads, digits and non-images mixed; the answers
    that are not what they must be."""
    digits = [(open(p, "rb").read(), _truth(p)) for p in example_images()]
    junk = [(b"not an image", None), (b"\x89PNG\r\n\x1a\n" + bytes(40), None),
            (bytes(range(256)), None)]
    rng = random.Random(0)
    work = [rng.choice(digits) if rng.random() < 0.75 else rng.choice(junk)
            for _ in range(total)]
    wrong, lock = [], threading.Lock()

    def client(items):
        for body, want in items:
            code, answer = request(url, data=body, method="POST", timeout=120)
            try:
                got = json.loads(answer)
            except ValueError:
                got = answer[:200]
            ok = (code == 200 and got.get("label") == want) if want is not None else (
                code == 400 and "error" in got)
            if not ok:
                with lock:
                    wrong.append((want, code, got))

    threads = [threading.Thread(target=client, args=(work[k::clients],))
               for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong, sum(w is not None for _, w in work)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 8])
def test_serve_answers_concurrent_clients_then_stops_clean(exported, tmp_path, batch_size):
    server = ServeProcess(exported, tmp_path, batch_size=batch_size, max_batch_delay=50)
    try:
        url = server.start()
        assert url == f"http://127.0.0.1:{server.port}/predictions/inception_mnist"
        tree = _descendants(server.proc.pid)
        assert any("java" in " ".join(p.cmdline()) for p in tree), tree
        code, body = request(f"http://127.0.0.1:{server.management_port}/models/"
                             "inception_mnist", timeout=10)
        described = json.loads(body)
        assert (described["batchSize"], described["maxBatchDelay"]) == (batch_size, 50)
        wrong, digits = _load(url)
        assert digits > 100 and wrong == []
        assert server.stop(signal.SIGTERM) == 0
    finally:
        if server.proc is not None and server.proc.poll() is None:
            for p in _descendants(server.proc.pid):
                p.kill()
            server.stop(signal.SIGKILL)
    out = server.output()
    assert "stopped by SIGTERM" in out, out[-2000:]
    assert _gone(tree) == []
    for port in (server.port, server.management_port):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free again
    store = out.split("model store: ", 1)[1].split(" ", 1)[0]
    assert not os.path.exists(store)  # the temporary store is removed


@pytest.mark.slow
def test_serve_uses_the_exports_own_archive_and_a_kept_store(tmp_path):
    """An export with its .mar: that archive is served (linked into the store); --store keeps
    the store, its config.properties and logs."""
    folder = tmp_path / "export"
    export("inception_mnist", str(folder / "inception_mnist"), mar=True)
    server = ServeProcess(folder, tmp_path, workers=1)
    server.argv += ["--store", str(tmp_path / "store")]
    with server:
        with open(example_images()[3], "rb") as f:
            code, body = request(server.url, data=f.read(), method="POST")
        assert code == 200 and json.loads(body)["label"] == _truth(example_images()[3])
    assert "inception_mnist.mar of the export" in server.output()
    assert os.path.samefile(folder / "inception_mnist.mar", tmp_path / "store" /
                            "inception_mnist.mar")
    config = (tmp_path / "store" / "config.properties").read_text()
    assert f"inference_address=http://127.0.0.1:{server.port}" in config
    assert (tmp_path / "store" / "logs").is_dir()


def test_a_corrupt_export_is_refused_before_the_server_starts(tmp_path, capsys):
    folder = tmp_path / "export"
    paths = export("inception_mnist", str(folder / "inception_mnist"))
    with open(paths["params"], "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\0")
    port = free_port()
    code, err = _serve([folder, "--port", port, "--management-port", free_port(avoid={port})],
                       capsys)
    assert code == 2 and "-0000.params' is corrupt or not the exported one: SHA-1" in err


def test_a_server_that_ends_by_itself_is_a_failure_with_its_logs_kept(exported, tmp_path,
                                                                        capsys, monkeypatch):
    """A Java that exits at once (here a stand-in script): exit status 1, the reason and the
    log folder on stderr, the temporary store kept for its logs."""
    java = tmp_path / "jre" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'not a Java runtime'\nexit 3\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jre"))
    port = free_port()
    code = main(["serve", str(exported), "--port", str(port), "--management-port",
                 str(free_port(avoid={port}))])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("inceptionzoo serve: error: MXNet Model Server exited with status ")
    assert "not a Java runtime" in err
    store = out.split("model store: ", 1)[1].split(" ", 1)[0]
    assert os.path.isfile(os.path.join(store, "logs", "mms-stdout.log"))
    assert os.path.isfile(os.path.join(store, "inception_mnist.mar"))
    shutil.rmtree(store)


@pytest.mark.slow
def test_a_full_batch_after_a_single_request_is_answered(exported, tmp_path):
    """``serve``'s own start-up request (batch 1), then 7 digits and a non-image at once:
    one batch of 8, each answered (200 with the label, 400). MMS 1.1.11 failed this batch as a
    whole (500 "Worker died") while the handler set a content-type header on its answers."""
    with ServeProcess(exported, tmp_path, batch_size=8, max_batch_delay=300) as server:
        digit = example_images()[7]
        bodies = [open(digit, "rb").read()] * 7 + [b"junk"]
        answers = [None] * 8

        def post(i):
            answers[i] = request(server.url, data=bodies[i], method="POST", timeout=120)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [code for code, _ in answers] == [200] * 7 + [400], answers
    assert all(json.loads(body)["label"] == _truth(digit) for _, body in answers[:7])
