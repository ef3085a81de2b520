"""The install story: ``python -m build`` makes a wheel and an sdist that ``twine check``
accepts, and each installs into a clean virtual environment and runs there.

The built packages are installed with pip from the package registry's
dependencies, like a user's first install; the program run from the clean venv
is a real zipper, stream function and source, plus the ``yomo`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(900)

ROUNDTRIP = textwrap.dedent(
    """
    import yomo
    from yomo.transport import TlsConfig

    zipper = yomo.Zipper("installed", "127.0.0.1", 0, tls=TlsConfig(), stats_interval=0)
    zipper.start()
    got = []
    fn = yomo.StreamFunction("upper", zipper.addr, observe_data_tags=[0x33], tls=TlsConfig())
    fn.set_handler(lambda ctx: got.append(ctx.data.upper()))
    fn.connect()
    with yomo.Source("src", zipper.addr, tls=TlsConfig()) as source:
        source.write(0x33, b"installed")
    import time
    deadline = time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    fn.close()
    zipper.stop()
    import yomo.zipper.monitor  # the monitor and its page assets came along
    from importlib import resources
    page = resources.files("yomo.zipper.monitor") / "static" / "index.html"
    assert page.read_text().startswith("<!doctype html>")
    print(yomo.__file__)
    print(got[0].decode())
    """
)


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOMO_", "PYTHONPATH"))}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: hatchling comes from the dev environment, so the build itself
    # needs nothing fetched; pip still resolves the runtime dependencies below.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    return out


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist: Path) -> None:
    wheels = sorted(dist.glob("pyyomo-*.whl"))
    sdists = sorted(dist.glob("pyyomo-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)])
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    names = zipfile.ZipFile(wheels[0]).namelist()
    for needed in (
        "yomo/py.typed",
        "yomo/zipper/monitor/static/index.html",
        "yomo/zipper/monitor/static/monitor.js",
        "yomo/zipper/monitor/static/monitor.css",
    ):
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_and_runs_in_a_clean_venv(dist: Path, tmp_path: Path, kind: str) -> None:
    target = next(dist.glob("pyyomo-*.whl" if kind == "wheel" else "pyyomo-*.tar.gz"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(target)], cwd=tmp_path)
    version = _run([str(env_dir / "bin" / "yomo"), "version"], cwd=tmp_path)
    assert version.stdout.startswith("yomo:"), version.stdout
    program = tmp_path / "roundtrip.py"
    program.write_text(ROUNDTRIP)
    ran = _run([str(python), str(program)], cwd=tmp_path)
    where, result = ran.stdout.split()[-2:]
    assert where.startswith(str(env_dir)), where  # the installed copy, not the checkout
    assert result == "INSTALLED"
