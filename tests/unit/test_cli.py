"""The ``yomo`` command line: version, config errors of ``serve``, usage errors, logging."""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import yomo
from yomo.cli import cli, configure_logging

GOOD = "name: z\nhost: 127.0.0.1\nport: 9000\n"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("YOMO_LOG_LEVEL", raising=False)
    return CliRunner()


def _env_without_log_level() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "YOMO_LOG_LEVEL"}


# -- version -------------------------------------------------------------------------------


def test_version_prints_every_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0, result.output
    lines = dict(
        (label.strip(), value.strip())
        for label, value in (line.split(":", 1) for line in result.stdout.splitlines())
    )
    assert lines["yomo"] == yomo.__version__
    assert lines["spec"] == yomo.SPEC_VERSION == "2024-01-03"
    assert re.search(r"\b(qh3|aioquic)\b \d+\.\d+", lines["quic"]), lines["quic"]
    assert lines["python"].startswith(platform.python_version())
    assert result.stderr == ""


def test_dash_capital_v_prints_the_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["-V"])
    assert result.exit_code == 0
    assert result.stdout == f"YoMo for Python version: {yomo.__version__}\n"


def test_python_dash_m_yomo_runs_the_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yomo", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env_without_log_level(),
    )
    assert done.returncode == 0, done.stderr
    assert f"spec:   {yomo.SPEC_VERSION}" in done.stdout


def test_commands_are_registered() -> None:
    assert {"serve", "version"} <= set(cli.commands)


# -- serve with a broken config ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("zipper.json", GOOD, 'the extension of the config file must be ".yaml" or ".yml"'),
        ("zipper.yaml", "name: z\nhost: [1\n", "invalid YAML: "),
        ("zipper.yaml", "host: h\nport: 1\n", "name: missing; expected a non-empty string"),
        (
            "zipper.yaml",
            "name: z\nhost: h\nport: abc\n",
            "port: expected an integer 0..65535, got 'abc' (line 3, column 7)",
        ),
        (
            "zipper.yaml",
            GOOD + "auth:\n  type: jwt\n",
            "auth.type: expected one of 'none', 'token', got 'jwt'",
        ),
        (
            "zipper.yaml",
            GOOD + "auth:\n  type: token\n",
            "auth.token: expected a non-empty token",
        ),
        (
            "zipper.yml",
            GOOD + "mesh:\n  zipper-aus:\n    host: 10.0.0.2\n    port: 70000\n",
            "mesh.zipper-aus.port: expected an integer 1..65535, got 70000",
        ),
    ],
)
def test_serve_rejects_a_broken_config(
    runner: CliRunner, tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["serve", "-c", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: yomo: {path}: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash


def test_serve_rejects_a_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    result = runner.invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: yomo: {path}: cannot read the file: No such file or directory\n"
    )


# -- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["serve", "--bogus"], ["--bogus", "version"], ["version", "extra"], ["nope"], ["serve", "-c"]],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "Error: " in result.stderr
    assert "Traceback" not in result.stderr


# -- logging -------------------------------------------------------------------------------


def test_log_level_option_env_and_verbose(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    assert runner.invoke(cli, ["version"]).exit_code == 0
    assert root.level == logging.INFO
    assert runner.invoke(cli, ["--log-level", "ERROR", "version"]).exit_code == 0
    assert root.level == logging.ERROR
    assert runner.invoke(cli, ["-v", "--log-level", "error", "version"]).exit_code == 0
    assert root.level == logging.DEBUG
    monkeypatch.setenv("YOMO_LOG_LEVEL", "warn")
    assert runner.invoke(cli, ["version"]).exit_code == 0
    assert root.level == logging.WARNING
    assert runner.invoke(cli, ["--log-level", "debug", "version"]).exit_code == 0
    assert root.level == logging.DEBUG


def test_bad_log_level_env_is_a_usage_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOMO_LOG_LEVEL", "loud")
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 2
    assert "YOMO_LOG_LEVEL" in result.stderr


def test_log_lines_are_compact_and_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO)
    configure_logging(logging.INFO)  # idempotent: still one line per record
    logging.getLogger("yomo.test").info("hello %s", "world")
    logging.getLogger("yomo.test").debug("hidden")
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO    yomo\.test: hello world\n", err
    ), err


def test_dotenv_in_the_working_directory_is_loaded(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("YOMO_LOG_LEVEL=from-dotenv\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "yomo", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env_without_log_level(),
    )
    assert done.returncode == 2
    assert "'from-dotenv' is not one of" in done.stderr


@pytest.mark.parametrize("command", ["serve", "run", "pub", "sub", "stats", "init", "version"])
def test_every_command_takes_log_options_after_it(runner: CliRunner, command: str) -> None:
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--log-level" in result.output and "-v, --verbose" in result.output


@pytest.mark.parametrize(
    ("args", "level"),
    [
        (["version", "-v"], logging.DEBUG),
        (["version", "--log-level", "error"], logging.ERROR),
        (["--log-level", "error", "version", "-v"], logging.DEBUG),  # the later one wins
        (["-v", "version", "--log-level", "warn"], logging.WARNING),
    ],
)
def test_log_options_after_the_command_win(runner: CliRunner, args: list[str], level: int) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert logging.getLogger().level == level
