"""The side environment of `make test` (.venv-torch): a bare `pytest` skips the tests
that need a missing one, naming `make test`; `make test` (INCEPTIONZOO_REQUIRE_SIDE_ENVS=1) fails
them. Checked on a real test run in a subprocess with the side environments pointed at nothing."""
import os
import subprocess
import sys

import pytest

from conftest import REQUIRE_SIDE_ENVS, ROOT

#: a real test that needs the PyTorch side environment (through the `references` fixture)
NEEDS_TORCH_ENV = "tests/test_convert.py::test_cli_convert"


def _pytest(env):
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             NEEDS_TORCH_ENV], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # two pytest runs in subprocesses
def test_a_missing_side_environment_skips_naming_make_test_and_fails_under_make_test(tmp_path):
    missing = str(tmp_path / "no-venv" / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in (REQUIRE_SIDE_ENVS, "INCEPTIONZOO_REFERENCES")}
    env.update(INCEPTIONZOO_TORCH_PYTHON=missing, COLUMNS="400")
    bare, strict = _pytest(env), _pytest(dict(env, **{REQUIRE_SIDE_ENVS: "1"}))
    bare_out, strict_out = bare.communicate(timeout=600)[0], strict.communicate(timeout=600)[0]
    reason = f"is missing ({missing}): `make test` builds it"
    assert bare.returncode == 0 and "1 skipped" in bare_out and reason in bare_out, bare_out
    assert strict.returncode == 1 and "1 error" in strict_out, strict_out
    assert reason in strict_out and f"{REQUIRE_SIDE_ENVS}=1" in strict_out, strict_out
