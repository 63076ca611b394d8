"""``CodeCompare``: the same model's code in every framework, side by side, syntax-highlighted.

The code is read from ``mlx_explore/frameworks/<fw>/models.py``, the very files the trainers import,
so what is shown cannot drift from what is measured. Which class or function is a model's code is
each module's own declaration, ``MODEL_CODE`` (``mlx_explore.frameworks.contract.model_code``); the
module-level constants that code uses (``ACTIVATIONS``) are shown above it. The file is located with
``importlib.util.find_spec`` and the objects cut out of it with :mod:`ast` (what
:func:`inspect.getsource` does, without importing the module): showing PyTorch code must not import
PyTorch into the notebook kernel (``docs/architecture.md``: frameworks live in their child
processes; JAX could grab GPU memory the runs need). A framework that is not installed still shows
its code, with a note in the column header.
"""

from __future__ import annotations

import ast
import html
import re
from functools import lru_cache

import ipywidgets as W
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from mlx_explore import frameworks as registry
from mlx_explore.config import DEFAULT_FRAMEWORKS, FRAMEWORKS, MODELS
from mlx_explore.frameworks import REGISTRY, UNSUPPORTED_MODEL_REASON
from mlx_explore.frameworks.contract import model_code, models_path

from ._common import color

#: Install hint per framework (scikit-learn is a core dependency, the others are extras).
_INSTALL = {fw: registry.install_hint(fw) for fw in FRAMEWORKS} | {"sklearn": "pip install scikit-learn"}

#: Layer-constructing code, by kind; a line's kind is that of its leftmost match.
_ANCHORS = {
    "conv": r"\bnn\.Conv(?:2d)?\b|\bConv2D\b",
    "pool": r"MaxPool|max_pool",
    "flatten": r"\bFlatten\b|\.reshape\(",
    "dense": r"\bnn\.Linear\b|\bnn\.Dense\b|\blayers\.Dense\b|\bhidden_layer_sizes\b",
    "recurrent": r"\bnn\.GRU\b|\bnn\.RNN\b|\blayers\.GRU\b",
    "attention": r"MultiHead|TransformerEncoder",
    "norm": r"\bLayerNorm\b|\bLayerNormalization\b",
    "trees": r"HistGradientBoostingClassifier\(|XGBClassifier\(|LGBMClassifier\(",
}
_ANCHOR_RE = re.compile("|".join(f"(?P<{kind}>{rx})" for kind, rx in _ANCHORS.items()))

_MONO = "font-family: SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace; font-size: 12px; margin: 0"
#: Inline styles (no stylesheet needed in Voila or Colab); the lexer keeps leading blank lines (alignment padding).
_FORMATTER = HtmlFormatter(noclasses=True, nowrap=False, style="default", prestyles=_MONO)
_LEXER = PythonLexer(stripnl=False)


def _missing_html(fw: str) -> str:
    return f'<br><i style="font-weight: normal; font-size: 11px">not installed here: {html.escape(_INSTALL[fw])}</i>'


def _check(framework: str | None = None, model: str | None = None) -> None:
    """Raise ``ValueError`` (naming the allowed values) for an unknown framework or model."""
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; allowed: {', '.join(FRAMEWORKS)}")
    if model is not None and model not in MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")


def module_path(framework: str) -> str:
    """Repository path of a framework's models module, e.g. ``mlx_explore/frameworks/torch/models.py``."""
    return f"mlx_explore/frameworks/{REGISTRY[framework].code}/models.py"


def unsupported_note(framework: str, model: str) -> str | None:
    """The note shown instead of code when ``framework`` cannot express ``model`` (``None``: it can)."""
    _check(framework, model)
    reason = UNSUPPORTED_MODEL_REASON.get((framework, model))
    if reason is None and model not in REGISTRY[framework].models:
        reason = registry.unsupported_reason(framework, model, "auto")
    return f"{reason} (unsupported)" if reason else None


@lru_cache(maxsize=None)
def _module_text(framework: str) -> str:
    with open(models_path(framework), encoding="utf-8") as f:  # imports no framework
        return f.read()


def _source(lines: list[str], node: ast.AST) -> str:
    """Source lines of a module-level statement (decorators included)."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[start - 1 : node.end_lineno])


def _segments(framework: str, name: str) -> list[str]:
    """The module-level class or function ``name`` of ``framework``'s models module, preceded by
    the module-level constants (single-name assignments) and the module-level classes and functions
    it uses (a transformer's encoder block, a GRU cell), transitively, in file order."""
    text = _module_text(framework)
    lines, body = text.splitlines(), ast.parse(text).body
    defs = {n.name: n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    if name not in defs:
        raise LookupError(f"no module-level class or function {name} in {module_path(framework)}")
    keep, todo, used = {name}, [defs[name]], set()
    while todo:
        names = {n.id for n in ast.walk(todo.pop()) if isinstance(n, ast.Name)}
        used |= names
        for dep in names & defs.keys() - keep:
            keep.add(dep)
            todo.append(defs[dep])
    constants = [
        n for n in body
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
        and n.targets[0].id in used
    ]  # fmt: skip
    helpers = [n for n in defs.values() if n.name in keep - {name}]
    return [_source(lines, n) for n in constants + helpers] + [_source(lines, defs[name])]


def model_source(framework: str, model: str) -> str:
    """The code of ``model`` in ``framework``, cut with :mod:`ast` out of its real models module.

    Args:
        framework: one of :data:`mlx_explore.config.FRAMEWORKS`.
        model: one of :data:`mlx_explore.config.MODELS`.

    Returns:
        The module-level constants the model's code uses (``ACTIVATIONS``), then the class or
        function the module's ``MODEL_CODE`` names for ``model`` (``logreg`` is the MLP with
        ``hidden=()``, said in a leading comment); for an unsupported pair, the note from
        :func:`unsupported_note`. Identical to ``inspect.getsource`` of the imported object (a test
        checks it).

    Raises:
        ValueError: unknown framework or model (the message lists the allowed values).
    """
    note = unsupported_note(framework, model)
    if note:
        return note
    out = "\n\n\n".join(_segments(framework, model_code(framework, _module_text(framework))[model]))
    if model == "logreg":
        out = f"# logreg: the MLP with hidden=() (softmax regression)\n{out}"
    return out


def _anchors(source: str) -> list[tuple[int, str]]:
    """``(row, kind)`` of each line that constructs a layer (comment lines skipped)."""
    out = []
    for row, line in enumerate(source.splitlines()):
        m = None if line.lstrip().startswith("#") else _ANCHOR_RE.search(line)
        if m:
            out.append((row, m.lastgroup))
    return out


def align_blocks(sources: dict[str, str]) -> dict[str, str]:
    """Pad sources with blank lines so equivalent layer lines sit on the same row.

    The first layer line of every column lands on one row. If all columns have the same number of layer
    lines, the k-th ones line up; otherwise later layer lines of the same kind and occurrence (``dense`` #2
    beside ``dense`` #2) line up across the columns that have them, kept in order. Columns without layer lines
    are returned untouched; padding goes just before an anchor line, so the code still runs as written.

    Args:
        sources: column name -> source text.

    Returns:
        column name -> padded source text (same keys, same order).
    """
    anchors = {k: a for k, a in ((k, _anchors(s)) for k, s in sources.items()) if a}
    if len(anchors) < 2:
        return dict(sources)
    if len({len(a) for a in anchors.values()}) == 1:
        groups = [dict(zip(anchors, rows)) for rows in zip(*([r for r, _ in a] for a in anchors.values()))]
    else:
        keyed = {}
        for k, a in anchors.items():
            seen: dict[str, int] = {}
            keyed[k] = {}
            for row, kind in a:
                keyed[k][(kind, seen.setdefault(kind, 0))] = row
                seen[kind] += 1
        groups = [{k: a[0][0] for k, a in anchors.items()}]
        last = dict(groups[0])
        for key in dict.fromkeys(key for kk in keyed.values() for key in kk):
            rows = {k: kk[key] for k, kk in keyed.items() if key in kk and kk[key] > last[k]}
            if len(rows) >= 2:
                groups.append(rows)
                last.update(rows)
    pad = {k: {} for k in anchors}
    shift = dict.fromkeys(anchors, 0)
    for rows in groups:
        target = max(rows[k] + shift[k] for k in rows)
        for k, row in rows.items():
            pad[k][row] = target - row - shift[k]
            shift[k] = target - row
    out = {}
    for k, src in sources.items():
        if k not in pad:
            out[k] = src
            continue
        lines = []
        for row, line in enumerate(src.splitlines()):
            lines += [""] * pad[k].get(row, 0) + [line]
        out[k] = "\n".join(lines)
    return out


def _code_html(code: str) -> str:
    return f'<div style="overflow-x: auto">{highlight(code, _LEXER, _FORMATTER)}</div>'


def _note_html(text: str) -> str:
    return f'<div style="color: #666; font-style: italic; padding: 6px 0">{html.escape(text)}</div>'


class CodeCompare(W.VBox):
    """The same model's code in each picked framework, one highlighted column each, layer lines aligned.

    Example::

        from widgets.code import CodeCompare
        CodeCompare(model="cnn", frameworks=("torch", "jax"))

    Attributes:
        model: ``Dropdown`` of the model (``logreg``, ``mlp``, ``cnn``).
        framework_boxes: framework -> ``Checkbox``; ticked ones get a column.
        align: ``Checkbox`` "align layers" (:func:`align_blocks`).
        html: ``HTML`` widget holding the table.
        sources: framework -> text currently shown in its column (after alignment; a note where no code).
    """

    def __init__(self, model: str = "mlp", frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS, align: bool = True):
        _check(model=model)
        for fw in frameworks:
            _check(fw)
        self.model = W.Dropdown(options=list(MODELS), value=model, description="model")
        self.framework_boxes = {
            fw: W.Checkbox(value=fw in frameworks, description=REGISTRY[fw].title, indent=False,
                           layout=W.Layout(width="auto", margin="0 12px 0 0"))
            for fw in dict.fromkeys((*DEFAULT_FRAMEWORKS, *frameworks))  # the Keras columns share TensorFlow's code
        }  # fmt: skip
        self.align = W.Checkbox(value=align, description="align layers", indent=False, layout=W.Layout(width="auto"))
        self.html = W.HTML()
        self.sources: dict[str, str] = {}
        for w in (self.model, self.align, *self.framework_boxes.values()):
            w.observe(lambda _change: self.render(), names="value")
        controls = W.HBox([self.model, W.HBox(list(self.framework_boxes.values())), self.align],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))  # fmt: skip
        super().__init__([controls, self.html])
        self.render()

    def _column(self, fw: str) -> tuple[str, bool]:
        """(text, is_code) for one framework's column."""
        return model_source(fw, self.model.value), unsupported_note(fw, self.model.value) is None

    def render(self) -> None:
        """Rebuild ``sources`` and the table from the current controls."""
        picked = [fw for fw, box in self.framework_boxes.items() if box.value]
        columns = {fw: self._column(fw) for fw in picked}
        code = {fw: text for fw, (text, is_code) in columns.items() if is_code}
        if self.align.value:
            code = align_blocks(code)
        self.sources = {fw: code.get(fw, text) for fw, (text, _) in columns.items()}
        if not picked:
            self.html.value = _note_html("Tick at least one framework.")
            return
        width = f"{100 / len(picked):.2f}%"
        heads = "".join(
            f'<th style="text-align: left; vertical-align: bottom; padding: 4px 8px; width: {width}; '
            f'border-bottom: 3px solid {color(fw)}">{html.escape(REGISTRY[fw].title)}<br>'
            f'<code style="font-weight: normal; font-size: 11px; color: #555">{module_path(fw)}</code>'
            f"{'' if registry.is_installed(fw) else _missing_html(fw)}</th>"
            for fw in picked
        )
        cells = "".join(
            f'<td style="vertical-align: top; padding: 0 8px; max-width: 0">'
            f"{_code_html(self.sources[fw]) if columns[fw][1] else _note_html(self.sources[fw])}</td>"
            for fw in picked
        )
        self.html.value = (
            '<div style="overflow: auto; max-height: 80vh">'
            f'<table style="table-layout: fixed; width: 100%; border-collapse: collapse">'
            f"<tr>{heads}</tr><tr>{cells}</tr></table></div>"
        )
