"""relaycheck installed from its wheel works anywhere: every command from an empty directory, in a
fresh venv outside the checkout, reading only the data the wheel ships (the proof of issue 12)."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.plugins.package import REPO_ROOT, Installed

pytestmark = pytest.mark.wheel

#: Short budgets for the installed `run`: a few operations, two examples each, a 2 s load smoke.
SHORT_RUN = """\
[contract]
max_examples = 2
include = ["GET /v1/now", "GET /v1/network*"]

[load]
duration = 2
"""


def _shipped(root: str) -> set[str]:
    return {
        p.relative_to(REPO_ROOT / root).as_posix()
        for p in (REPO_ROOT / root).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_wheel_holds_the_package_and_all_its_data(installed_wheel: Installed) -> None:
    names = set(zipfile.ZipFile(installed_wheel.wheel).namelist())
    missing = [f"relaycheck/{p}" for p in _shipped("relaycheck") if f"relaycheck/{p}" not in names]
    for root in ("fixtures", "load"):
        missing += [f"{root}/{p}" for p in _shipped(root) if f"relaycheck/_data/{root}/{p}" not in names]
    assert not missing, f"the wheel MUST ship everything relaycheck reads at run time; missing: {sorted(missing)}"


def test_installed_package_reads_its_own_data(installed_wheel: Installed) -> None:
    proc = installed_wheel.run(
        "python", "-c",
        "from relaycheck import paths; print(paths.in_checkout()); print(paths.LOAD_DIR); print(paths.SNAPSHOT_DIR)",
    )
    assert proc.returncode == 0, proc.stderr
    in_checkout, load_dir, snapshot_dir = proc.stdout.split()
    venv = installed_wheel.bin.parent
    assert in_checkout == "False"
    for path in (load_dir, snapshot_dir):
        assert Path(path).is_relative_to(venv), f"an installed relaycheck MUST read its shipped data, read {path}"
        assert Path(path).is_dir(), path


def test_run_from_an_empty_directory(installed_wheel: Installed) -> None:
    (installed_wheel.workdir / "relaycheck.toml").write_text(SHORT_RUN, encoding="utf-8")
    proc = installed_wheel.run("relaycheck", "run", "--report-dir", "run-reports", timeout=120)
    assert proc.returncode == 0, f"relaycheck run MUST pass on the fixture relay:\n{proc.stdout}\n{proc.stderr}"
    out = installed_wheel.workdir / "run-reports"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"].keys() == {"contract", "load"}
    contract = json.loads((out / "contract" / "summary.json").read_text(encoding="utf-8"))
    assert contract["verdict"] == "pass" and contract["level"] == "strict"
    assert contract["max_examples"] == 2, "relaycheck.toml's [contract] table MUST reach run's contract step"
    assert summary["provenance"]["relaycheck_commit"] is None, "an installed relaycheck has no git commit"
    assert (out / "load" / "index.html").is_file()


def test_load_smoke_with_a_user_slo_file(installed_wheel: Installed) -> None:
    # The shipped SLOs pass a healthy fixture relay (the run above); a user's --slo replaces them.
    (installed_wheel.workdir / "tight-slo.toml").write_text("[defaults]\np50_ms = 0.001\n", encoding="utf-8")
    proc = installed_wheel.run(
        "relaycheck", "load", "--profile", "smoke", "--duration", "2", "--slo", "tight-slo.toml",
        "--report-dir", "load-reports", timeout=90,
    )
    assert proc.returncode == 1, f"a user's SLO file MUST override the shipped one:\n{proc.stdout}\n{proc.stderr}"
    summary = json.loads((installed_wheel.workdir / "load-reports" / "load" / "summary.json").read_text("utf-8"))
    assert summary["verdict"] != "pass"


def test_serve_and_the_shipped_locustfile(installed_wheel: Installed) -> None:
    server = installed_wheel.popen("relaycheck", "serve", "--port", "0")
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(f"{url}/v1/now", timeout=10) as resp:
            assert resp.status == 200
            assert "now" in json.loads(resp.read())["data"]
        locustfile = installed_wheel.bin.parent.glob("lib/python*/site-packages/relaycheck/_data/load/locustfile.py")
        (path,) = locustfile
        proc = installed_wheel.run(
            "locust", "-f", str(path), "--headless", "-H", url, "-u", "2", "-r", "2", "-t", "2s", "--only-summary",
            timeout=60,
        )
        assert proc.returncode == 0, f"locust -f on the shipped locustfile MUST run:\n{proc.stdout}\n{proc.stderr}"
        assert "GET      /v1/now" in proc.stdout + proc.stderr
    finally:
        server.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = server.wait(timeout=20)
        assert time.monotonic() - started < 20
    assert code in (0, 130), f"relaycheck serve MUST stop cleanly on Ctrl-C, exit {code}"


def test_pytest_plugin_from_the_wheel(installed_wheel: Installed) -> None:
    (installed_wheel.workdir / "relaycheck.toml").write_text(SHORT_RUN, encoding="utf-8")
    proc = installed_wheel.run(
        "pytest", "-p", "no:cacheprovider", "--relaycheck", "-k", "v1/now", "--junitxml", "plugin.xml", timeout=120
    )
    assert proc.returncode == 0, f"the installed pytest plugin MUST run the gate:\n{proc.stdout}\n{proc.stderr}"
    assert '<testcase classname="relaycheck" name="GET /v1/now"' in (installed_wheel.workdir / "plugin.xml").read_text()
