"""Go YoMo v1.22.3 LLM functions from Go's own `yomo init -t llm -r go` template.

Used by the bridge interop tests and bench/bridge_bench.py. Go's `yomo run` runs
`go mod tidy`, which needs a module listing the proxy refuses here, so the
function gets a go.mod requiring `github.com/yomorun/yomo v1.22.3` and every
module the harness module (tests/interop/go) already lists, and is run with
`yomo run -r go -m go.mod`. The first run builds `dist/sfn.yomo`; later runs
pass `-p` (Go's production mode: no rebuild) while the build's inputs are the same
(a stamp of the app, its go.mod and go.sum, and the harness binaries' own stamp,
which covers the Go toolchain's version); otherwise `dist/` is removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
from pathlib import Path

from goharness import CACHE_DIR, GO_MODULE_DIR, GoBins, GoProcess

__all__ = ["GoLLMFunctions", "prepare_go_llm_app"]


def prepare_go_llm_app(bins: GoBins, name: str = "get-weather") -> Path:
    """Go's llm template, initialised once by Go's CLI into the harness cache."""
    app = CACHE_DIR / "llm-sfn" / name
    if not (app / "app.go").is_file():
        shutil.rmtree(app, ignore_errors=True)
        app.parent.mkdir(parents=True, exist_ok=True)
        init = GoProcess(
            "yomo init", [str(bins.yomo), "init", "-t", "llm", "-r", "go", name], cwd=app.parent
        )
        if init.wait_exit(60) != 0:
            raise RuntimeError(f"yomo init failed:\n{init.tail()}")
        (app / "app_test.go").unlink(missing_ok=True)  # the template's test; not run here
    mod = (GO_MODULE_DIR / "go.mod").read_text().splitlines()
    (app / "go.mod").write_text("\n".join([f"module {name}", *mod[1:]]) + "\n")
    shutil.copy(GO_MODULE_DIR / "go.sum", app / "go.sum")
    # dist/sfn.yomo is reused (`-p`) only when built from these inputs
    h = hashlib.sha256((bins.dir / ".stamp").read_bytes())
    for part in ("app.go", "go.mod", "go.sum"):
        h.update((app / part).read_bytes())
    stamp, built_from = h.hexdigest(), app / ".dist-stamp"
    if not built_from.is_file() or built_from.read_text().strip() != stamp:
        shutil.rmtree(app / "dist", ignore_errors=True)
        built_from.write_text(stamp + "\n")
    return app


class GoLLMFunctions:
    """`yomo run -r go -m go.mod` processes of one app; ``stop_all`` ends them and their children."""

    def __init__(self, bins: GoBins, app: Path) -> None:
        self.bins = bins
        self.app = app
        self.procs: list[GoProcess] = []

    def start(self, name: str, zipper_addr: str) -> GoProcess:
        argv = [str(self.bins.yomo), "run", "-r", "go", "-m", "go.mod", "-n", name]
        argv += ["-z", zipper_addr]
        if (self.app / "dist" / "sfn.yomo").is_file():
            argv.append("-p")  # production: skip the (identical) build
        env = {
            "GOMODCACHE": str(CACHE_DIR / "mod"),
            "GOCACHE": str(CACHE_DIR / "build"),
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
        }
        proc = GoProcess(f"go llm {name}", [*argv, "app.go"], env=env, cwd=self.app)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:  # `yomo run` starts the built function as its child
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.stop(10)
        self.procs.clear()
