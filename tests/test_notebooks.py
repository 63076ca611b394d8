"""The notebooks (issue 5): structure, the Colab set-up cell, the badge script, the environment files,
and every notebook executed top to bottom by papermill with small parameters.

Papermill runs each notebook in a real IPython kernel of this interpreter; the runs' children are
real framework processes and write to the per-test results store (``conftest.results_db``).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["00_quickstart", "01_logistic_regression", "02_mlp", "03_cnn", "04_eager_vs_compiled", "05_decision_guide",
         "06_profiler", "07_keras_backends", "08_sequence_models", "09_tabular"]  # fmt: skip
FRAMEWORK_PACKAGES = ("torch", "jax", "flax", "optax", "tensorflow", "keras", "scikit-learn")

#: What CI runs: small and fast (each notebook in well under a minute on 2 CPU cores).
SMALL = {
    "00_quickstart": dict(epochs=1, batch_size=64, latency_steps=20),
    "01_logistic_regression": dict(epochs=1, batch_size=64, latency_steps=20, parity_steps=10),
    "02_mlp": dict(epochs=1, batch_size=64, hidden=[32], latency_steps=20, parity_steps=10),
    "03_cnn": dict(epochs=1, batch_size=64, latency_steps=20, parity_steps=10),
    # jax and tensorflow: XLA compiles in well under a second, torch.compile with a cold cache in many
    "04_eager_vs_compiled": dict(frameworks=["jax", "tensorflow"], batch_sizes=[16, 128], n_samples=2000, hidden=[32],
                                 epochs=1),
    # ranks a stored suite (``db``: a copy of ``conftest.suite_store``, set by its own test below)
    "05_decision_guide": dict(run_suite=False),
    # eager: no torch.compile in CI; 2800 training samples give 10 steps an epoch at batch 256
    "06_profiler": dict(batch_sizes=[16, 256], n_samples=4000, n_features=64, hidden=[64], steps=5, mode="eager"),
    # one backend, compiled (XLA), native against Keras, then both exported to ONNX
    "07_keras_backends": dict(backends=["jax"], batch_sizes=[32, 256], mode="compiled", n_samples=4000, hidden=[32],
                              export="onnx"),
    # eager (no torch.compile in CI): 19 steps an epoch; the adding problem short and small
    "08_sequence_models": dict(frameworks=["torch", "jax", "tensorflow"], width=16, epochs=1, batch_size=64, mode="eager",
                               latency_steps=10, parity_steps=10, seq_len=10, adding_samples=600, adding_epochs=2),
    # two sizes, few rounds, the MLP eager in two frameworks
    "09_tabular": dict(sizes=[600, 3000], rounds=10, deep=["torch", "jax"], hidden=[32], epochs=2, batch_size=64,
                       mode="eager", latency_steps=10),
}
#: Notebooks run by a test of their own, not by ``test_notebook_runs_top_to_bottom``.
RUN_ALONE = ("05_decision_guide", "06_profiler")


def _load_badges():
    spec = importlib.util.spec_from_file_location("badges", ROOT / "scripts" / "badges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


badges = _load_badges()


def read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"want exactly one cell tagged 'parameters', found {len(cells)}"
    assert cells[0].cell_type == "code"
    return cells[0]


def assigned_names(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def setup_cell(nb):
    cells = [c for c in nb.cells if c.cell_type == "code" and "google.colab" in c.source]
    assert len(cells) == 1, "want one set-up cell that checks for google.colab"
    return cells[0]


# ------------------------------------------------------------------------------------ structure


def test_the_notebooks_are_those_of_the_issues():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert set(SMALL) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_structure(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    repo = badges.repository()
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the first cell is a markdown title"
    assert badges.colab_url(repo, name) in first.source, "Colab badge opening this notebook"
    assert badges.binder_url(repo, name) in first.source, "Binder badge opening this notebook"
    prose = [line for line in first.source.splitlines()[1:] if line.strip() and "badge" not in line]
    assert prose and len(" ".join(prose)) > 200, "a paragraph on what the reader will learn"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} is committed with outputs"
    params = parameters_cell(nb)
    names = assigned_names(params.source)
    if name == "05_decision_guide":  # the suite fixes its own data sets, epochs and batch sizes
        assert {"size", "frameworks", "device", "scenario", "run_suite", "db"} <= names
    else:
        # 07's frameworks are each backend's native and Keras columns, 09's the boosting and the deep ones
        columns = {"07_keras_backends": {"backends"}, "09_tabular": {"boosting", "deep"}}.get(name, {"frameworks"})
        assert {"epochs", "dataset", *columns} <= names
        assert names & {"batch_size", "batch_sizes"}, "batch size(s) are a parameter"
    assert set(SMALL[name]) <= names, f"CI sets parameters the notebook does not have: {set(SMALL[name]) - names}"
    assert nb.cells.index(setup_cell(nb)) < nb.cells.index(params), "set-up runs before anything else"


@pytest.mark.parametrize("name", NAMES)
def test_setup_cell_installs_only_on_colab(name, monkeypatch):
    """The set-up cell, transformed as IPython does (``%pip`` becomes a line magic call), does nothing
    outside Colab and installs this project from the README's repository on Colab, without torch/jax/
    tensorflow."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(setup_cell(read(name)).source)
    calls = []
    shell = types.SimpleNamespace(run_line_magic=lambda magic, line: calls.append((magic, line)))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(code, {"get_ipython": lambda: shell})
    assert calls == []

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(code, {"get_ipython": lambda: shell})
    assert len(calls) == 1 and calls[0][0] == "pip"
    line = calls[0][1]
    assert f"git+https://github.com/{badges.repository()}" in line and re.search(r"mlx-explore\[colab[],]", line), line
    words = line.replace('"', " ").replace("[", " ").split()
    assert not set(words) & {"torch", "jax", "jaxlib", "tensorflow", "keras", "flax", "optax"}, line


# ------------------------------------------------------------------------------------ badges


def test_badges_point_at_the_readme_repository():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "badges.py"), "check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert badges.repository() in proc.stdout


def _copy_tree(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    for name in NAMES:
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text((NOTEBOOKS / f"{name}.ipynb").read_text())
    return tmp_path


def test_badge_script_rewrites_every_badge_and_install_line(tmp_path):
    root = _copy_tree(tmp_path)
    old = badges.repository(root / "README.md")
    changed = badges.sync(root, "acme/mlx.explore-2")
    assert len(changed) == len(NAMES) + 1  # the README and every notebook
    assert badges.repository(root / "README.md") == "acme/mlx.explore-2"
    assert badges.stale(root) == []
    for path in badges.targets(root):
        text = path.read_text()
        assert f"github/{old}/" not in text and f"gh/{old}/" not in text and f"github.com/{old}" not in text
    nb = nbformat.read(root / "notebooks" / "02_mlp.ipynb", as_version=4)
    assert badges.colab_url("acme/mlx.explore-2", "02_mlp") in nb.cells[0].source
    assert badges.sync(root) == []  # idempotent


def test_badge_script_reports_what_is_out_of_date(tmp_path):
    root = _copy_tree(tmp_path)
    repo = badges.repository(root / "README.md")
    nb = root / "notebooks" / "03_cnn.ipynb"
    nb.write_text(nb.read_text().replace("notebooks/03_cnn.ipynb", "notebooks/02_mlp.ipynb"))
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace(f"git+https://github.com/{repo}", "git+https://github.com/someone/fork"))
    problems = badges.stale(root)
    assert any(p.startswith("notebooks/03_cnn.ipynb: no Colab badge") for p in problems), problems
    assert any(p.startswith("README.md: points at another repository") for p in problems), problems


def test_badge_script_rejects_a_bad_repository(tmp_path):
    root = _copy_tree(tmp_path)
    before = (root / "README.md").read_text()
    with pytest.raises(ValueError, match="repository: 'no-slash' is not owner/name"):
        badges.sync(root, "no-slash")
    assert (root / "README.md").read_text() == before


# ------------------------------------------------------------------------------------ environments


def _dependency_names(path: Path) -> tuple[dict, set[str]]:
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-"):
                continue
            names.add(item.split("[")[0].split("=")[0].split(">")[0].split("<")[0].split("@")[0].strip().lower())
    return env, names


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_environment_files_parse_and_name_every_framework(path):
    env, names = _dependency_names(ROOT / path)
    assert env["name"] and env["channels"]
    for pkg in FRAMEWORK_PACKAGES:
        assert pkg in names or (pkg == "tensorflow" and "tensorflow-cpu" in names), f"{path} lacks {pkg}"
    assert any(str(d).startswith("python=3.") for d in env["dependencies"]), f"{path} pins the Python version"


def test_binder_uses_cpu_builds_and_postbuild_installs_the_project():
    env, names = _dependency_names(ROOT / "binder" / "environment.yml")
    assert "tensorflow-cpu" in names and "tensorflow" not in names
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip
    post = ROOT / "binder" / "postBuild"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "\nset -euo pipefail\n" in text
    assert 'pip install --no-cache-dir -e ".[notebook]"' in text
    assert subprocess.run(["bash", "-n", str(post)]).returncode == 0


# ------------------------------------------------------------------------------------ execution


def _outputs(nb) -> tuple[list[str], list[str]]:
    """(markdown outputs, stream text) of an executed notebook."""
    md, streams = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                streams.append(out.text)
            elif "text/markdown" in out.get("data", {}):
                md.append(out.data["text/markdown"])
    return md, streams


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [n for n in NAMES if n not in RUN_ALONE])
def test_notebook_runs_top_to_bottom(name, tmp_path, results_db):
    import papermill as pm

    from mlx_explore.results import load_runs

    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=SMALL[name], cwd=str(NOTEBOOKS),
                        kernel_name="python3", progress_bar=False)  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    md, streams = _outputs(nb)
    text = "\n".join(md)
    runs = load_runs()
    frameworks = ["torch", "jax", "tensorflow", "sklearn"] if name[:2] in ("01", "02", "03") else ["jax", "tensorflow", "torch"]
    if name == "04_eager_vs_compiled":
        assert "Fastest at each batch size: 16:" in text and "128:" in text
        assert any("batch 128: 4 runs" in s for s in streams)
        assert len(runs) == 2 * 2 * 2 and (runs["status"] == "ok").all()  # 2 batch sizes x 2 modes x 2 frameworks
        assert sorted(set(runs["framework"])) == ["jax", "tensorflow"]
        return
    if name == "07_keras_backends":
        # the sweep (2 batch sizes x jax, keras-jax) and the deployment comparison (jax, keras-jax), all ok
        assert len(runs) == 3 * 2 and (runs["status"] == "ok").all(), runs[["framework", "status", "reason"]]
        assert re.search(r"Keras 3 \(fit\) on jax reaches batch 32 compiled: \d\.\d\dx; batch 256 compiled: \d\.\d\dx", text), text
        assert "Compile time on jax at batch 256: native" in text
        assert re.search(r"ONNX Runtime against the framework itself .*: jax \d+\.\d\dx, keras-jax \d+\.\d\dx", text), text
        assert "**keras-jax**: jax2onnx.to_onnx on model.stateless_call" in text
        return
    if name == "08_sequence_models":
        # gru and transformer in three frameworks on digits, then each on the adding problem in the first one
        assert len(runs) == 2 * 3 + 2 and (runs["status"] == "ok").all(), runs[["framework", "model", "status", "reason"]]
        for fw in ("jax", "tensorflow"):
            pattern = rf"\*\*{fw}\*\* vs torch: largest relative loss difference over the first 10 steps is \S+, within"
            assert len(re.findall(pattern, text)) == 2, text  # once per model
        assert re.search(r"\*\*gru\*\*: best test accuracy \d\.\d{4} \(torch\)", text), text
        assert re.search(r"\*\*transformer\*\*: best test accuracy \d\.\d{4} \(torch\)", text), text
        assert "of always answering the majority class" in text
        return
    if name == "09_tabular":
        # at each of 2 sizes: the three boosting libraries and the MLP in two frameworks
        assert len(runs) == 2 * (3 + 2) and (runs["status"] == "ok").all(), runs[["framework", "model", "status", "reason"]]
        assert sorted(set(runs.loc[runs["model"] == "gbdt", "framework"])) == ["lightgbm", "sklearn", "xgboost"]
        for n in ("600", "3,000"):
            assert re.search(rf"At {n} samples the best (boosted trees|MLP) leads by \d+\.\d\d points", text), text
        assert re.search(r"At 3000 samples \w+ trains fastest: ", text), text
        assert "**gbdt @ 3000**: best test accuracy" in text and "**mlp @ 600**: best test accuracy" in text
        return
    ran = [fw for fw in frameworks if not (name == "03_cnn" and fw == "sklearn")]
    assert f"{len(ran)} of {len(frameworks)} runs finished" in text
    assert sorted(runs.loc[runs["status"] == "ok", "framework"]) == sorted(ran)
    if name != "00_quickstart":
        for fw in ran[1:]:  # against the torch run; sklearn with rtol 1e-3
            pattern = rf"\*\*{fw}\*\* vs torch: largest relative loss difference over the first 10 steps is \S+, within"
            assert re.search(pattern, text), text
    if name == "03_cnn":
        assert "**sklearn** is `unsupported`: scikit-learn has no convolutional layers" in text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_decision_guide_notebook_ranks_a_stored_suite(tmp_path, suite_store):
    """Notebook 05 with ``run_suite=False`` on a copy of the shared suite store: every cell runs, the
    recommendation and its reasons are the guide's for that suite, the audit and the widget are shown."""
    import shutil

    import papermill as pm

    from mlx_explore import guide

    db = tmp_path / "suite.db"
    shutil.copy(suite_store, db)
    out = tmp_path / "05_decision_guide.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "05_decision_guide.ipynb"), str(out), parameters=SMALL["05_decision_guide"] | {"db": str(db)},
                        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False)  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    md, streams = _outputs(nb)
    text, printed = "\n".join(md), "".join(streams)
    rec = guide.recommend(guide.load_evidence(db), "research")
    assert f"**{rec.top}** ranks first with a score of {rec.scores[rec.top]:.3f}" in text
    assert f"**Why {rec.top}**" in text and all(r.text in text for r in rec.reasons)
    assert "**What would change the answer**" in text and all(c in text for c in rec.caveats)
    assert "run_suite is False" in printed and f"suite session {rec.evidence.session}" in printed
    html = [o.data.get("text/html", "") for c in nb.cells for o in c.get("outputs", []) if "data" in o]
    widgets_shown = [o for c in nb.cells for o in c.get("outputs", [])
                     if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]  # fmt: skip
    assert widgets_shown, "the DecisionGuide is displayed"
    audit = guide.audit_claims(rec.evidence)
    assert any(all(v in h for v in set(audit["verdict"])) for h in html), "the claims audit table is shown"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_profiler_notebook_profiles_every_framework_at_two_batch_sizes(tmp_path, results_db):
    """Notebook 06: every framework profiled at both batch sizes, the per-category tables and the
    ProfileViews shown, the findings computed from this run's profiles, the merged trace written."""
    import papermill as pm

    from mlx_explore import profiling, report
    from mlx_explore.results import load_profile_runs

    out = tmp_path / "06_profiler.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "06_profiler.ipynb"), str(out), parameters=SMALL["06_profiler"], cwd=str(NOTEBOOKS),
                        kernel_name="python3", progress_bar=False)  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    md, streams = _outputs(nb)
    text, printed = "\n".join(md), "".join(streams)
    assert "batch 16: 4 of 4 runs profiled" in printed and "batch 256: 4 of 4 runs profiled" in printed, printed
    stored = load_profile_runs(results_db)
    assert sorted(stored["framework"]) == sorted(["torch", "jax", "tensorflow", "sklearn"] * 2)
    # the findings are those of the stored profiles: the first sentence names each run's largest category
    first = {}
    for label, p in profiling.load(results_db).items():
        first.setdefault(label.split("/")[0], []).append(p)
    for fw, (small, _) in first.items():
        cats = small.by_category()
        top = max(cats, key=cats.get)
        assert f"{fw}: {top} (" in text, (fw, top, text)
    assert "At batch 16, the largest part of a profiled step is" in text and "At batch 256" in text
    assert "framework overhead goes from" in text and "The profiler itself made steps" in text
    assert report.profile_findings({}) == []
    views = [o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 2, "one ProfileView per batch size"
    merged = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("merged trace"))
    events = json.loads(Path(merged).read_text())["traceEvents"]
    assert {e["args"]["name"] for e in events if e["name"] == "process_name"} == {"torch", "jax", "tensorflow", "sklearn"}
