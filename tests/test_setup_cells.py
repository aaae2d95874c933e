"""The Colab setup cells and README badges follow pyproject's Repository URL, and the cell behaves in and out of Colab."""

import re
import shutil
import subprocess
import sys
import types

import nbformat
import pytest

from helpers import colab_install
from tools import notebook_paths, setup_cells

REPO_ROOT = setup_cells.REPO_ROOT
URL = "https://github.com/someone/no-such-tutorials"


def test_notebooks_and_readme_agree_with_pyproject_url():
    assert setup_cells.disagreements(REPO_ROOT) == [], "run: python -m tools.setup_cells"


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"subprocess.run{a} outside Colab"))
    path_before = list(sys.path)
    exec(setup_cells.setup_cell_source(URL), {})
    assert sys.path == path_before


@pytest.mark.parametrize(
    ("where", "clone_dir"), [("local", None), ("colab", "/content"), ("kaggle", "/kaggle/working")]
)
def test_the_setup_cell_clones_and_installs_in_colab_and_kaggle_and_does_nothing_locally(
    monkeypatch, tmp_path, where, clone_dir
):
    """Stand-ins for Colab (its module imported) and Kaggle (its kernel variable): the clone and the install go to the
    host's working folder; a local Jupyter runs nothing."""
    monkeypatch.chdir(tmp_path)  # where Colab and Kaggle open a notebook: no checkout around it
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    if where == "colab":
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    elif where == "kaggle":
        monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    commands, installs = [], []
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda args, **k: commands.append(args) or subprocess.CompletedProcess(args, 0, "", ""),
    )
    monkeypatch.setattr(colab_install, "install_requirements", installs.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(setup_cells.setup_cell_source(URL), {})
    if clone_dir is None:
        assert commands == installs == []
        return
    target = f"{clone_dir}/no-such-tutorials"
    assert commands == [["git", "clone", "-q", "--depth", "1", URL, target]]
    assert [str(path) for path in installs] == [target] and sys.path[0] == target


def test_the_setup_cell_does_nothing_in_a_notebook_opened_from_a_checkout(monkeypatch):
    """A notebook of a clone (the project around its folder) has the project already, in Kaggle too."""
    monkeypatch.chdir(REPO_ROOT / "notebooks")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"subprocess.run{a} in a checkout"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    path_before = list(sys.path)
    exec(setup_cells.setup_cell_source(URL), {})
    assert sys.path == path_before


def test_failed_clone_names_the_url(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def fake_run(args, **kwargs):
        assert args[:2] == ["git", "clone"], f"unexpected command {args}"
        return subprocess.CompletedProcess(args, 128, "", "fatal: repository not found")

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match=re.escape(URL)) as error:
        exec(setup_cells.setup_cell_source(URL), {})
    assert "public" in str(error.value)


@pytest.mark.parametrize("tomllib", [setup_cells.tomllib, None], ids=["tomllib", "regex"])
def test_repository_url(tmp_path, monkeypatch, tomllib):
    monkeypatch.setattr(setup_cells, "tomllib", tomllib)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "x"\n\n[project.urls]\nRepository = "{URL}"\n\n[tool.x]\n')
    assert setup_cells.repository_url(pyproject) == URL
    pyproject.write_text('[project]\nname = "x"\n')
    with pytest.raises(setup_cells.SetupCellsError, match="Repository"):
        setup_cells.repository_url(pyproject)


def test_write_then_check_follows_the_url(tmp_path):
    shutil.copytree(REPO_ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    if setup_cells.BADGE_START not in readme:
        readme += f"\n{setup_cells.BADGE_START}\n{setup_cells.BADGE_END}\n"
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project.urls]\nRepository = "{URL}"\n')

    setup_cells.write(tmp_path)
    assert setup_cells.disagreements(tmp_path) == []
    for path in notebook_paths(tmp_path):  # only the first code cell's source changed
        before, after = (nbformat.read(p, as_version=4) for p in (REPO_ROOT / "notebooks" / path.name, path))
        first = next(i for i, cell in enumerate(after.cells) if cell.cell_type == "code")
        assert after.cells[first].source == setup_cells.setup_cell_source(URL)
        after.cells[first].source = before.cells[first].source
        assert after == before
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"colab.research.google.com/github/someone/no-such-tutorials/blob/{setup_cells.BRANCH}/" in readme

    pyproject.write_text('[project.urls]\nRepository = "https://github.com/other/fork"\n')
    notebooks = [p.relative_to(tmp_path).as_posix() for p in notebook_paths(tmp_path)]
    assert notebooks and sorted(setup_cells.disagreements(tmp_path)) == sorted([*notebooks, "README.md"])
    assert 'REPO_DIR = Path(HOSTED) / "fork"' in setup_cells.setup_cell_source(
        "https://github.com/other/fork"
    )


def test_install_stops_run_all_once_when_an_imported_package_changed(tmp_path, monkeypatch, capsys):
    import numpy  # noqa: F401  (imported, as Colab has it)

    (tmp_path / "requirements.txt").write_text("numpy>=1\n")
    calls = []

    def fake_pip(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(colab_install.subprocess, "run", fake_pip)
    monkeypatch.setattr(colab_install.metadata, "version", lambda name: f"{len(calls) + 1}.0")  # pip bumps it
    with pytest.raises(colab_install.RestartRequired, match="numpy 1.0 -> 2.0.*Restart session"):
        colab_install.install_requirements(tmp_path)
    colab_install.install_requirements(tmp_path)  # after the restart: nothing to do
    assert len(calls) == 1 and (tmp_path / ".colab-installed").exists()


def test_install_goes_on_when_nothing_imported_changed(tmp_path, monkeypatch, capsys):
    (tmp_path / "requirements.txt").write_text("numpy>=1\n")
    monkeypatch.setattr(
        colab_install.subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 0, "", "")
    )
    colab_install.install_requirements(tmp_path)
    assert capsys.readouterr().out.startswith("Installing") and (tmp_path / ".colab-installed").exists()


def test_install_raises_with_pips_output(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("nosuchpackage\n")
    monkeypatch.setattr(
        colab_install.subprocess,
        "run",
        lambda args, **kw: subprocess.CompletedProcess(args, 1, "", "No matching"),
    )
    with pytest.raises(RuntimeError, match="No matching"):
        colab_install.install_requirements(tmp_path)
    assert not (tmp_path / ".colab-installed").exists()


def test_the_setup_cell_imports_nothing_pip_may_replace():
    """Everything the cell imports before pip runs (the cell itself, then the install module) is standard library."""
    cell = setup_cells.setup_cell_source(URL).replace('if "google.colab" in sys.modules:', "if False:")
    probe = (
        "import sys; before = set(sys.modules)\n"
        f"exec({cell!r})\n"
        "import helpers.colab_install\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['helpers']", done.stdout


def test_the_command_line_writes_checks_and_names_what_is_stale(tmp_path, capsys):
    shutil.copytree(REPO_ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".*"))
    shutil.copy(REPO_ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "pyproject.toml").write_text(f'[project.urls]\nRepository = "{URL}"\n')
    assert setup_cells.main(["--check", "--root", str(tmp_path)]) == 1
    assert "out of date: notebooks/01_scrape_dishes.ipynb" in capsys.readouterr().out
    assert setup_cells.main(["--root", str(tmp_path)]) == 0
    assert "wrote notebooks/01_scrape_dishes.ipynb" in capsys.readouterr().out
    assert setup_cells.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert setup_cells.main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
