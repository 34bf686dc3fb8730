"""Packaging: the ``relaycheck`` package plus the data it reads at run time.

The data keeps its place in the repository (``fixtures/``, ``load/``) and ships inside the wheel as
``relaycheck/_data/fixtures`` and ``relaycheck/_data/load``; ``relaycheck.paths`` is the one reader
of both layouts. Packages are found, not listed, so a new subpackage ships without an edit here.
Everything else (metadata, dependencies, entry points) is in ``pyproject.toml``.
"""

from setuptools import find_namespace_packages, find_packages, setup

#: Repository directory -> package it ships as.
DATA_PACKAGES = {"relaycheck._data.fixtures": "fixtures", "relaycheck._data.load": "load"}
#: The kinds of data file those directories hold (the locustfiles ship as the package's modules).
DATA_FILES = ["**/*.json", "**/*.txt", "**/*.toml", "**/*.md", "**/*.yaml"]


def _data_packages() -> list[str]:
    # Every data subdirectory is named as a package of its own, or setuptools warns that it would be
    # ignored (and a future setuptools would drop it).
    found = list(DATA_PACKAGES)
    for package, directory in DATA_PACKAGES.items():
        found += [f"{package}.{sub}" for sub in find_namespace_packages(where=directory)]
    return found


setup(
    packages=[*find_packages(include=["relaycheck", "relaycheck.*"]), *_data_packages()],
    package_dir=dict(DATA_PACKAGES),
    package_data=dict.fromkeys(DATA_PACKAGES, DATA_FILES),
)
