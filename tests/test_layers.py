"""`helpers` is layered: import-linter checks pyproject's contracts (imports run one way, no cycle, nothing from the
repository's tooling or tests); run-time imports stay inside their own subpackage."""

import ast
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT = str(
    Path(sysconfig.get_path("scripts")) / "lint-imports"
)  # import-linter's command, in this interpreter's env


def lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the `helpers` package under `root`, with the contract of `root`'s pyproject."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # before the editable install: the copy is the one checked
    return subprocess.run(
        [LINT, "--no-logo", "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_contract_is_kept():
    result = lint(REPO)
    assert result.returncode == 0 and "2 kept, 0 broken" in result.stdout, result.stdout + result.stderr


def dynamic_imports(path: Path) -> list[str]:
    """The literal start of every `importlib.import_module` argument in `path` ("{__name__}" for the package's own)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            first = node.args[0]
            parts = first.values if isinstance(first, ast.JoinedStr) else [first]
            head = parts[0]
            found.append(
                head.value if isinstance(head, ast.Constant) else "{" + ast.unparse(head.value) + "}"
            )
    return found


def test_dynamic_imports_stay_inside_their_own_subpackage():
    # import-linter reads import statements only: `import_module` may load modules of its caller's own subpackage.
    for path in sorted((REPO / "helpers").rglob("*.py")):
        own = ".".join(path.relative_to(REPO).parts[:2]) + "."
        for start in dynamic_imports(path):
            allowed = start.startswith(own) or (start == "{__name__}" and path.name == "__init__.py")
            assert allowed, f"{path.relative_to(REPO)} imports {start!r}... at run time, outside {own}"


def test_the_dynamic_import_check_sees_a_module_loaded_by_name(tmp_path):
    source = tmp_path / "runtime.py"
    source.write_text('import importlib\nkit = importlib.import_module(f"helpers.smoke.{1}")\n')
    assert dynamic_imports(source) == ["helpers.smoke."]


def test_the_package_init_imports_library_noise_only():
    tree = ast.parse((REPO / "helpers" / "__init__.py").read_text(encoding="utf-8"))
    imported = [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    ]
    assert imported == ["library_noise"]


@pytest.mark.parametrize(
    ("module", "line", "reported"),
    [
        (
            "data/scraping.py",
            "from helpers.smoke import scrape_fixtures",
            "helpers.data.scraping -> helpers.smoke.scrape_fixtures",
        ),
        (
            "metrics/scoring.py",
            "from helpers.models import audit",
            "helpers.metrics.scoring -> helpers.models.audit",
        ),
        ("runtime.py", "from helpers import profiles", "helpers.runtime -> helpers.profiles"),
        ("collate.py", "import helpers.training", "helpers.collate -> helpers.training"),
        (
            "smoke/cache.py",
            "from helpers import launch",
            "helpers.smoke.cache -> helpers.launch",
        ),
        ("atomic.py", "from tools.proofs import controls", "helpers.atomic -> tools"),
        ("smoke/cache.py", "import stand_ins", "helpers.smoke.cache -> stand_ins"),
    ],
)
def test_the_contract_catches_an_import_against_the_layers(tmp_path, module, line, reported):
    shutil.copytree(REPO / "helpers", tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "helpers" / module).open("a", encoding="utf-8") as source:
        source.write(f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0 and reported in result.stdout, result.stdout + result.stderr


def test_a_new_unit_needs_a_line_in_the_contract(tmp_path):
    shutil.copytree(REPO / "helpers", tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "helpers" / "extras.py").write_text('"""A unit the contract does not list."""\n')
    result = lint(tmp_path)
    assert result.returncode != 0 and "helpers.extras" in result.stdout, result.stdout + result.stderr
