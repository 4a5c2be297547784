"""Slim installs: the light parts import no heavy library, and a missing extra is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ewmbench.errors import MissingExtra, Unavailable, require

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "torchvision",
    "transformers",
    "ultralytics",
    "pybullet",
    "open_clip",
    "lpips",
    "diffusers",
    "ray",
    "fastapi",
    "matplotlib",
)


def _heavy_modules_after(code: str) -> list[str]:
    """Heavy modules loaded after running ``code`` in a fresh interpreter."""
    script = code + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_metrics_results_and_the_model_list_import_no_heavy_library():
    assert _heavy_modules_after("import ewmbench.metrics, ewmbench.results, ewmbench.run.runner") == []
    listing = "from typer.testing import CliRunner\nfrom ewmbench.cli import app\nassert CliRunner().invoke(app, ['models', '--json']).exit_code == 0"
    assert _heavy_modules_after(listing) == []


def test_writing_provenance_imports_no_torch(tmp_path):
    code = (
        "from pathlib import Path\nfrom ewmbench.protocols import resolve_protocol\n"
        "from ewmbench.run import Plan, RunConfig, provenance\n"
        f"config = RunConfig(output=Path({str(tmp_path)!r}))\n"
        "plan = Plan('evaluate', config, resolve_protocol(config.protocol), [], [], None)\n"
        "record = provenance(plan, 'cpu')\n"
        "assert record['torch'] and record['numpy'] and record['protocol']['name'] == 'ewmbench-v1'"
    )
    assert _heavy_modules_after(code) == []


def test_a_missing_extra_is_named_with_its_install_command():
    with pytest.raises(MissingExtra) as info:
        require("ewmbench_no_such_module", "neural", "metric 'x'")
    assert isinstance(info.value, Unavailable)  # a metric that needs it is skipped, never scored 0
    assert info.value.fix == 'pip install "ewmbench[neural]"'
    assert "metric 'x' needs the Python package 'ewmbench_no_such_module'" in info.value.reason
    assert require("json", "neural").dumps([]) == "[]"


def test_a_metric_whose_packages_are_missing_is_skipped_with_the_extra(monkeypatch):
    from ewmbench.metrics.scene import SceneConsistency

    monkeypatch.setattr(SceneConsistency, "modules", ("ewmbench_no_such_module",))
    with pytest.raises(MissingExtra) as info:
        SceneConsistency().check_available({"random_init": {"hidden_size": 8}})
    assert info.value.fix == 'pip install "ewmbench[neural]"'


def test_every_extra_is_declared_and_dev_installs_everything():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {
        "detect",
        "neural",
        "sim",
        "generate",
        "serve",
        "report",
        "leaderboard",
        "scale",
        "all",
        "dev",
    } <= set(extras)
    assert "ewmbench[all]" in extras["dev"] and {"torch==2.14.1", "torchvision==0.29.1"} <= set(extras["dev"])
    core = " ".join(project["dependencies"])
    assert not any(name in core for name in ("torch", "ultralytics", "pybullet", "transformers"))
    (everything,) = extras["all"]
    assert set(everything.removeprefix("ewmbench[").removesuffix("]").split(",")) == set(extras) - {
        "all",
        "dev",
    }


BLOCK_HEAVY = f'''
import sys
class _NotInstalled:
    """Acts as if the heavy libraries were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
'''


@pytest.mark.slow
def test_a_core_install_scores_the_weight_free_metrics_and_names_the_missing_extras(tmp_path):
    from ewmbench.data.layout import write_trial
    from tests.helpers.datasets import make_ground_truth, moving_square_frames

    gt = make_ground_truth(tmp_path / "gt", tasks=("1",), episodes=("10",), num_frames=4)
    write_trial(tmp_path / "mine_dataset", "1", "10", "1", moving_square_frames(4, seed=1))
    detector = tmp_path / "detector.pt"
    detector.write_bytes(b"a checkpoint")
    code = (
        BLOCK_HEAVY
        + f"""
import json
from pathlib import Path
from ewmbench.run import RunConfig, evaluate
config = RunConfig(output=Path({str(tmp_path / "out")!r}), gt=Path({str(gt)!r}), generated=Path({str(tmp_path / "mine_dataset")!r}),
                   metrics=["psnr", "ssim", "trajectory_consistency", "scene_consistency"], cache_dir=Path({str(tmp_path / "cache")!r}),
                   detector_weights=Path({str(detector)!r}), device="cpu")
result = evaluate(config, show_progress=False)
print(json.dumps({{"overall": result.summary["overall"], "skipped": result.summary["skipped_metrics"],
                  "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["overall"]["psnr"] > 0 and 0 < report["overall"]["ssim"] <= 1
    assert report["skipped"]["scene_consistency"]["fix"] == 'pip install "ewmbench[neural]"'
    assert report["skipped"]["trajectory_consistency"]["fix"] == 'pip install "ewmbench[detect]"'
