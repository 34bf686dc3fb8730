"""Where relaycheck's data lives: the repository that holds the package."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: relaycheck runs from its repository (the README installs it editable); data sits beside the package.
REPO_ROOT = PACKAGE_DIR.parent
FIXTURES_DIR = REPO_ROOT / "fixtures"
SNAPSHOT_DIR = FIXTURES_DIR / "openapi"
OVERLAY_DIR = FIXTURES_DIR / "overlays"
DEVIATIONS_DIR = FIXTURES_DIR / "deviations"
CONTRACTS_DIR = REPO_ROOT / "contracts"
LOAD_DIR = REPO_ROOT / "load"
DEFAULT_REPORT_DIR = Path("reports")
