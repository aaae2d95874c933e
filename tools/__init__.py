"""Repository tooling: the series runner, the setup-cell writer, the exporter, the learning proofs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """The series' numbered notebooks in order, then the appendix notebooks (A1_..., A2_...)."""
    folder = Path(root) / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) + sorted(folder.glob("A[0-9]_*.ipynb"))
