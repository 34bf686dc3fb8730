"""Where relaycheck's data lives: the one reader of the data that ships with the package.

The data is kept in the repository's ``fixtures/`` and ``load/`` and ships inside the wheel as
``relaycheck/_data/<dir>`` (see ``setup.py``). Installed from a wheel, the package's own copy is
used; run from a checkout (an editable install), the repository's directories are.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The checkout relaycheck runs from; outside a checkout nothing is read from here.
REPO_ROOT = PACKAGE_DIR.parent
#: The shipped data directories: under these names in the checkout and in ``relaycheck._data``.
DATA_DIRS = ("fixtures", "load")


def in_checkout() -> bool:
    """True when the package runs from its repository (not from an installed wheel)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and all((REPO_ROOT / d).is_dir() for d in DATA_DIRS)


def data_dir(name: str) -> Path:
    """The directory ``name`` (one of DATA_DIRS) as shipped, on disk (Locust and granian need real files)."""
    if name not in DATA_DIRS:
        raise ValueError(f"{name!r} is not one of relaycheck's data directories {DATA_DIRS}")
    shipped = resources.files("relaycheck") / "_data" / name
    if shipped.is_dir():
        return Path(str(shipped))
    return REPO_ROOT / name


def data_file(relative: str | Path) -> Path | None:
    """A shipped file named the way the repository lays it out (``load/slo.toml``); None if there is none.

    Lets a user write the repository's relative paths (``--slo load/slo.toml``) from any directory.
    """
    parts = Path(relative).parts
    if len(parts) < 2 or parts[0] not in DATA_DIRS:
        return None
    path = data_dir(parts[0]).joinpath(*parts[1:])
    return path if path.exists() else None


FIXTURES_DIR = data_dir("fixtures")
SNAPSHOT_DIR = FIXTURES_DIR / "openapi"
OVERLAY_DIR = FIXTURES_DIR / "overlays"
DEVIATIONS_DIR = FIXTURES_DIR / "deviations"
LOAD_DIR = data_dir("load")
DEFAULT_REPORT_DIR = Path("reports")
