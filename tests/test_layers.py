"""`helpers` is layered: imports run one way, and only `runtime.Profile.smoke_kit` opens the smoke package."""

import ast

import pytest

from helpers import runtime

PACKAGE = runtime.REPO_ROOT / "helpers"
# Lower ranks never import higher ones; units of the same rank never import each other.
RANKS = {
    "bad_input": -1, "atomic": -1,  # import nothing from helpers
    "library_noise": 0, "runtime": 0, "jsonl": 0, "colab_install": 0, "vi_text": 0, "images": 0,
    "": 1,  # the package's __init__, which runs first: rank 0 only
    "data": 1, "chapters": 1,  # chapters: the code notebooks export (tools/export.py), on libraries and runtime
    "models": 2, "metrics": 2,
    "collate": 3,
    "training": 4, "viz": 4, "hub": 4, "gpu_runs": 4, "preflight": 4,
    "smoke": 5, "launch": 5,
}  # fmt: skip
SWITCH = "runtime"  # the one module allowed to reach into smoke, and only through importlib


def unit(module: str) -> str:
    """'helpers.data.scraping' -> 'data'; 'helpers' (the package's __init__) -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of the `helpers` modules `source` imports (statically or via import_module)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            names += [
                f"{node.module}.{a.name}" if node.module == "helpers" else node.module for a in node.names
            ]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("helpers")]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
        ):
            names += [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and str(a.value).startswith("helpers")
            ]
    return names


def violations(module: str, source: str) -> list[str]:
    """Every import of `module` that runs against the layering."""
    here, found = unit(module), []
    for target in imported_modules(source, module):
        there = unit(target)
        if there == here:
            continue
        if there == "smoke" and here == SWITCH and f'import_module("{target}")' in source:
            continue
        if there not in RANKS or here not in RANKS:
            found.append(f"{module} -> {target}: unit not in RANKS")
        elif RANKS[there] >= RANKS[here]:
            found.append(f"{module} -> {target}: rank {RANKS[there]} is not below {RANKS[here]}")
    return found


def modules() -> list[tuple[str, str]]:
    return [
        (
            ".".join(path.relative_to(runtime.REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"),
            path.read_text(encoding="utf-8"),
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_every_unit_has_a_rank():
    units = {unit(name) for name, _ in modules()}
    assert units <= set(RANKS), units - set(RANKS)


def test_imports_run_one_way_and_only_the_switch_opens_smoke():
    found = [line for name, source in modules() for line in violations(name, source)]
    assert not found, "\n".join(found)
    openers = [name for name, source in modules() if 'import_module("helpers.smoke")' in source]
    assert openers == ["helpers.runtime"], openers


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("helpers.data.scraping", "from helpers.smoke import scrape_fixtures"),
        ("helpers.metrics.scoring", "from helpers.models import audit"),
        ("helpers.runtime", "from helpers.smoke import tiny_models"),
        ("helpers.collate", "import helpers.training"),
        ("helpers.viz", 'importlib.import_module("helpers.smoke")'),
    ],
)
def test_the_checker_catches_imports_against_the_layers(module, source):
    assert violations(module, source)
