"""Every floor is a promise CI keeps: no floor sits below what CI's "colab" job installs and tests."""

import importlib.util
import re

import pytest
from packaging.version import Version

from helpers import runtime

CI = runtime.REPO_ROOT / ".ci"
spec = importlib.util.spec_from_file_location("colab_constraints", CI / "colab_constraints.py")
colab_constraints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab_constraints)

REQUIREMENTS = (runtime.REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
CONSTRAINTS = (CI / "colab-constraints.txt").read_text(encoding="utf-8")


def test_every_requirement_has_a_floor_and_a_ceiling():
    lines = [line for line in REQUIREMENTS.splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(re.search(r">=[^,]+,<", line) for line in lines), lines


@pytest.mark.parametrize("name", sorted(colab_constraints.requirement_floors(REQUIREMENTS)))
def test_floor_is_the_version_the_colab_job_tests(name):
    """A floor equals the version CI's colab job installs: Colab's own, or the floor itself where Colab has none."""
    floor = Version(colab_constraints.requirement_floors(REQUIREMENTS)[name])
    pins = colab_constraints.colab_pins(CONSTRAINTS)
    # torch and torchvision: Colab's CUDA builds are recorded in the file's header; CI installs the nearest pair.
    if name in colab_constraints.TORCH:
        colab = re.search(rf"\b{name}: (?:Colab ships )?([^+;\s]+)", CONSTRAINTS).group(1)
        assert floor == Version(colab) and Version(pins[name]) >= floor
    else:
        assert Version(pins[name]) == floor, f"{name}: floor {floor}, the colab job tests {pins[name]}"


def test_constraints_come_from_colabs_list_and_our_floors():
    freeze = (
        "# generated\ntorch==2.11.0+cu128\ntorchvision==0.26.0+cu128\nsetuptools==75.2.0\ntriton==3.6.0\n"
        "cuda-toolkit==12.8.1\nnvidia-cublas-cu12==12.8.4.1\n"
        "Transformers==5.15.0\ngoogle-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\nipywidgets==7.7.1\n"
    )
    requirements = "torch>=2.11,<3\ntransformers>=5.15,<6  # why\nevaluate>=0.4.5,<1\n"
    text = colab_constraints.constraints_text(freeze, requirements, "2026-08-19")
    pins = colab_constraints.colab_pins(text)
    assert pins == {
        **colab_constraints.TORCH,
        "evaluate": "0.4.5",
        "transformers": "5.15.0",
        "ipywidgets": "7.7.1",
    }
    assert "on 2026-08-19" in text and "Colab ships 2.11.0+cu128" in text


def test_the_committed_constraints_record_their_source_and_date():
    assert re.search(r"googlecolab/backend-info \(pip-freeze\.gpu\.txt\) on \d{4}-\d{2}-\d{2}", CONSTRAINTS)
    assert "transformers==" in CONSTRAINTS and "bitsandbytes==" in CONSTRAINTS
