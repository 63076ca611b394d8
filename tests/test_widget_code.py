"""``widgets.code.CodeCompare``, headless: the shown code is the real code, columns follow the controls,
the HTML is highlighted and escaped, layer lines align, and a framework not installed still shows its code."""

from __future__ import annotations

import html
import importlib
import inspect
import re
import subprocess
import sys

import pytest

from mlx_explore.frameworks import REGISTRY
from widgets import code
from widgets.code import CodeCompare, align_blocks, model_source

from .conftest import ROOT

OBJECTS = [  # (framework, model, object the column must show)
    ("torch", "logreg", "MLP"), ("torch", "mlp", "MLP"), ("torch", "cnn", "CNN"),
    ("jax", "logreg", "MLP"), ("jax", "mlp", "MLP"), ("jax", "cnn", "CNN"),
    ("tensorflow", "logreg", "mlp"), ("tensorflow", "mlp", "mlp"), ("tensorflow", "cnn", "cnn"),
    ("sklearn", "logreg", "mlp"), ("sklearn", "mlp", "mlp"),
]  # fmt: skip


#: Layer-constructing lines, written out here rather than taken from the module under test.
LAYER = re.compile(
    r"nn\.Linear|nn\.Conv|nn\.Dense|layers\.Dense|layers\.Conv2D"
    r"|MaxPool|max_pool|Flatten|\.reshape\(|hidden_layer_sizes"
)


def models_module(fw: str):
    return importlib.import_module(f"mlx_explore.frameworks.{REGISTRY[fw].code}.models")


def cell_texts(value: str) -> list[str]:
    """The visible text of each table cell (tags stripped, entities unescaped)."""
    return [html.unescape(re.sub(r"<[^>]+>", "", td)) for td in re.findall(r"<td[^>]*>(.*?)</td>", value, re.DOTALL)]


@pytest.mark.parametrize("fw,model,name", OBJECTS)
def test_shown_source_is_inspect_of_the_real_object(fw, model, name):
    real = inspect.getsource(getattr(models_module(fw), name)).rstrip("\n")
    assert real in model_source(fw, model)
    w = CodeCompare(model=model, frameworks=(fw,), align=False)
    assert real in w.sources[fw]
    assert real in cell_texts(w.html.value)[0]


@pytest.mark.parametrize("fw", ["torch", "jax", "tensorflow", "sklearn"])
def test_each_models_module_declares_what_is_shown(fw):
    declared = models_module(fw).MODEL_CODE
    assert set(declared) == set(REGISTRY[fw].models)
    for model, name in declared.items():
        assert inspect.getsource(getattr(models_module(fw), name)).rstrip("\n") in model_source(fw, model)


def test_the_widget_reads_the_declaration_not_a_map_of_its_own(monkeypatch):
    text = (
        "WIDTH = 3\nUNUSED = 4\n\nMODEL_CODE = {'logreg': 'tiny', 'mlp': 'Wide', 'cnn': 'tiny'}\n\n\n"
        "def tiny():\n    return nn.Linear(1, 2)\n\n\n"
        "@decorated\nclass Wide:\n    size = WIDTH\n"
    )
    monkeypatch.setattr(code, "_module_text", lambda fw: text)
    assert model_source("torch", "mlp") == "WIDTH = 3\n\n\n@decorated\nclass Wide:\n    size = WIDTH"
    assert model_source("jax", "cnn") == "def tiny():\n    return nn.Linear(1, 2)"
    assert model_source("tensorflow", "logreg").endswith("def tiny():\n    return nn.Linear(1, 2)")
    monkeypatch.setattr(code, "_module_text", lambda fw: text.replace("'Wide'", "'Gone'"))
    with pytest.raises(LookupError, match="no module-level class or function Gone in mlx_explore/frameworks/torch/models.py"):
        model_source("torch", "mlp")


def test_activations_line_comes_from_the_module():
    torch_models = models_module("torch")
    line = next(ln for ln in inspect.getsource(torch_models).splitlines() if ln.startswith("ACTIVATIONS ="))
    assert model_source("torch", "mlp").startswith(line)
    assert "ACTIVATIONS = " in model_source("sklearn", "mlp")
    assert "ACTIVATIONS" not in model_source("torch", "cnn")


def test_dropdown_to_cnn_shows_each_frameworks_conv_layers():
    w = CodeCompare(model="mlp")
    assert "nn.Conv2d" not in w.sources["torch"]
    w.model.value = "cnn"
    assert "nn.Conv2d" in w.sources["torch"]
    assert "nn.Conv(" in w.sources["jax"]
    assert "layers.Conv2D" in w.sources["tensorflow"]
    assert "scikit-learn has no convolutional layers" in w.sources["sklearn"]
    assert "unsupported" in w.sources["sklearn"]
    torch_cell, jax_cell, tf_cell, sk_cell = cell_texts(w.html.value)
    assert "nn.Conv2d" in torch_cell and "nn.Conv(" in jax_cell and "Conv2D" in tf_cell
    assert "no convolutional layers" in sk_cell and "class " not in sk_cell


def test_unticking_a_framework_removes_its_column_and_ticking_restores_it():
    w = CodeCompare(model="mlp")
    assert "mlx_explore/frameworks/jax/models.py" in w.html.value
    assert len(cell_texts(w.html.value)) == 4
    w.framework_boxes["jax"].value = False
    assert "mlx_explore/frameworks/jax/models.py" not in w.html.value
    assert "jax" not in w.sources and len(cell_texts(w.html.value)) == 3
    w.framework_boxes["jax"].value = True
    assert "mlx_explore/frameworks/jax/models.py" in w.html.value
    assert "jax" in w.sources and len(cell_texts(w.html.value)) == 4


def test_html_is_highlighted_and_escaped(monkeypatch):
    w = CodeCompare(model="mlp", frameworks=("torch",))
    assert "<span style=" in w.html.value
    monkeypatch.setattr(code, "model_source", lambda fw, model: "ok = a < b > c  # <b>not bold</b>")
    w.render()
    assert "<b>not bold</b>" not in w.html.value and "a < b" not in w.html.value
    assert "&lt;" in w.html.value and "&gt;" in w.html.value
    assert cell_texts(w.html.value)[0].strip() == "ok = a < b > c  # <b>not bold</b>"


def test_align_blocks_puts_first_layer_lines_on_one_row():
    out = align_blocks({"a": "def f():\n    return nn.Linear(1, 2)", "b": "x = 1\ny = 2\nz = 3\nm = layers.Dense(2)"})
    assert out["a"].splitlines()[3] == "    return nn.Linear(1, 2)"
    assert out["b"] == "x = 1\ny = 2\nz = 3\nm = layers.Dense(2)"


def test_align_blocks_lines_up_every_kth_layer_when_counts_match():
    out = align_blocks({"a": "nn.Linear(1, 2)\n\n\nnn.Linear(2, 3)", "b": "layers.Dense(2)\nlayers.Dense(3)"})
    assert out["b"].splitlines() == ["layers.Dense(2)", "", "", "layers.Dense(3)"]
    assert out["a"] == "nn.Linear(1, 2)\n\n\nnn.Linear(2, 3)"
    # same count, different kinds (torch's conv+pool line beside JAX's pool line): still k-th to k-th
    torch_src, jax_src = "nn.Conv2d(1, 2, 3)\n\n\nnn.Flatten()", "y = nn.Conv(2)(x)\ny = nn.max_pool(y)"
    out = align_blocks({"torch": torch_src, "jax": jax_src})
    assert out["jax"].splitlines()[3] == "y = nn.max_pool(y)"


def test_alignment_padding_survives_highlighting(monkeypatch):
    fake = {"torch": "nn.Linear(1, 2)", "jax": "x = 1\nnn.Dense(2)"}
    monkeypatch.setattr(code, "model_source", lambda fw, model: fake[fw])
    w = CodeCompare(frameworks=("torch", "jax"))
    assert w.sources["torch"] == "\nnn.Linear(1, 2)"
    assert [cell.splitlines()[1] for cell in cell_texts(w.html.value)] == ["nn.Linear(1, 2)", "nn.Dense(2)"]


def test_align_blocks_leaves_columns_without_layers_alone():
    sources = {"a": "x = 1\nnn.Linear(1, 2)", "b": "no layers here", "c": "nn.Dense(2)"}
    out = align_blocks(sources)
    assert out["b"] == "no layers here" and out["c"] == "\nnn.Dense(2)"


@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn"])
def test_widget_alignment_on_and_off(model):
    w = CodeCompare(model=model, align=True)
    rows = {}
    for fw, src in w.sources.items():
        anchors = [i for i, ln in enumerate(src.splitlines()) if LAYER.search(ln) and not ln.lstrip().startswith("#")]
        if anchors:
            rows[fw] = anchors[0]
    assert len(rows) >= 3 and len(set(rows.values())) == 1, rows
    w.align.value = False
    for fw, src in w.sources.items():
        assert src == model_source(fw, model)


def test_unknown_model_or_framework_raises_naming_allowed_values():
    with pytest.raises(ValueError, match="allowed: torch, jax, tensorflow, sklearn"):
        model_source("mxnet", "mlp")
    with pytest.raises(ValueError, match="allowed: logreg, mlp, cnn"):
        model_source("torch", "rnn")
    with pytest.raises(ValueError, match="allowed: logreg, mlp, cnn"):
        CodeCompare(model="rnn")
    with pytest.raises(ValueError, match="allowed: torch, jax"):
        CodeCompare(frameworks=("torch", "mxnet"))


def test_a_framework_not_installed_still_shows_its_code_with_an_install_hint(monkeypatch):
    from mlx_explore import frameworks as registry

    monkeypatch.setattr(registry, "is_installed", lambda fw: fw != "jax")
    w = CodeCompare(model="mlp", frameworks=("torch", "jax"))
    assert "class MLP(nn.Module)" in w.sources["jax"]
    assert "not installed here: pip install &#x27;mlx-explore[jax]&#x27;" in w.html.value
    assert w.html.value.count("not installed here") == 1


def test_showing_code_imports_no_framework_into_the_kernel():
    code = (
        "import sys; from widgets import CodeCompare\n"
        "for m in ('logreg', 'mlp', 'cnn'): CodeCompare(model=m)\n"
        "print(sorted(k for k in ('torch', 'jax', 'tensorflow', 'keras', 'flax') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
