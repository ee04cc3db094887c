"""A real MXNet Model Server for tests: :class:`inceptionzoo.mms.ModelServer` (the server
``inceptionzoo serve`` runs) on free loopback ports below 32767 (MMS refuses larger ones), its
pid file and sockets in a private folder, its logs in the store, always stopped."""
import contextlib
import time

import pytest

from inceptionzoo.errors import InceptionZooError
from inceptionzoo.model_server import ModelServer, find_java, free_port, request  # noqa: F401


@contextlib.contextmanager
def running_mms(folder, store, models, ready=(), deadline=180):
    """Start ``multi-model-server --start --foreground`` with ``--model-store store --models
    models`` (a list of ``NAME=FILE.mar``); wait until every model in ``ready`` has READY
    workers; yield the :class:`~inceptionzoo.mms.ModelServer` (``api``, ``mgmt``,
    ``predict``); stop it and its workers whatever happens. ``folder``: the test's folder
    (unused: the server's files go into ``store``)."""
    try:
        find_java()
    except InceptionZooError as err:
        pytest.fail(f"{err} (.ci/run installs openjdk-17-jre-headless)")
    api = free_port()
    server = ModelServer(store, api, free_port(avoid={api}), workers=1, models=models)
    with server:
        end = time.monotonic() + deadline
        server.wait_up(end)
        for name in ready:  # up, and the model has READY workers
            server.wait_ready(name, end)
        yield server
