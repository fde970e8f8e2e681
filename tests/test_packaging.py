"""The wheel built from the repository holds every package of webapp and imports on its own."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the build must not see or write to: the build writes build/ and *.egg-info beside
# pyproject.toml, so it works on a copy.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "instance", "build", "*.egg-info", "__pycache__", ".*_cache"
)


def test_the_wheel_has_every_subpackage_and_imports_from_where_it_is_installed(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
        "--wheel-dir", str(tmp_path / "dist"), str(source),
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("atelier-*.whl")
    installed = tmp_path / "installed"
    packages = sorted(
        ".".join(init.relative_to(ROOT).parent.parts) for init in ROOT.glob("webapp/**/__init__.py")
    )
    assert "webapp.public" in packages and "webapp.dev" in packages
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(installed)
    for package in packages:
        assert f"{package.replace('.', '/')}/__init__.py" in names
    distribution = "-".join(wheel.name.split("-")[:2])  # atelier-0.1.0
    assert {name.split("/")[0] for name in names} == {"webapp", f"{distribution}.dist-info"}

    # -I: neither the current directory nor PYTHONPATH, so only the installed copy can be found.
    imported = run(
        sys.executable,
        "-I",
        "-c",
        "import importlib, sys; sys.path.insert(0, sys.argv[1]);"
        "from webapp import create_app;"
        "[print(importlib.import_module(name).__file__) for name in sys.argv[2:]]",
        str(installed),
        *packages,
        cwd=tmp_path,
    )
    paths = [Path(path) for path in imported.splitlines()]
    assert len(paths) == len(packages)
    assert all(path.is_relative_to(installed) for path in paths), paths


def run(*command: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout
