"""The decision guide's knowledge base: what measurements cannot tell about the four frameworks.

Two data files ship with this package, both lists of YAML mappings validated with pydantic v2
(https://docs.pydantic.dev/) when they are loaded:

``facts.yaml``
    :class:`Fact` entries: where a framework deploys (serving, mobile/edge, browser, ONNX), which
    accelerators it officially supports, its distributed-training APIs, model hubs, licence,
    release cadence and learning curve, from the frameworks' own documentation (``kind: fact``);
    plus rows of published scorecards and recommendations (``kind: published opinion``).
``claims.yaml``
    :class:`Claim` entries: quantitative claims published in articles ("JAX beats PyTorch by
    10-25 %", "scikit-learn's gradient boosting uses half XGBoost's memory"), each with the conditions it was made under and a :class:`ClaimTest` saying how our
    own benchmark suite (``mlx_explore.suite``) can audit it, or why it cannot.

Every entry names its :class:`Source` (title and publisher as the page itself gives them, URL and
publication date where known) and the date it was ``checked``. Statements are written in our own
words; the sources are only where the facts and figures come from.

Loading is strict: a file that is not valid YAML, a top level that is not a list, unknown or
missing fields, values outside the allowed sets and duplicate ids all raise
:class:`KnowledgeError`, which names the file, the entry, the field and what is allowed.

>>> from mlx_explore import knowledge
>>> kb = knowledge.default()                              # doctest: +SKIP
>>> [f.value for f in kb.facts_for("jax", "deployment")]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

# The frameworks the knowledge base and the guide choose among: the four native columns (the Keras
# columns are Keras 3 on three of them; claims about Keras name the column in their test).
from ..config import DEFAULT_FRAMEWORKS as FRAMEWORKS
from ..config import FRAMEWORKS as COLUMNS
from ..metric_docs import METRIC_DOCS

__all__ = [
    "FRAMEWORKS", "TOPICS", "KINDS", "CLAIM_KINDS", "TEST_KINDS", "SUITE_ITEMS", "PARITY_METRICS",
    "FACTS_PATH", "CLAIMS_PATH", "Source", "Fact", "Subject", "ClaimTest", "Conditions", "Claim",
    "KnowledgeBase", "KnowledgeError", "load", "default",
]  # fmt: skip

#: ``{topic: allowed values}`` of a :class:`Fact`; ``None``: free text.
#:
#: - ``deployment``: a target the framework's models reach (``serving``: a model server;
#:   ``mobile_edge``: phones, embedded devices, microcontrollers; ``browser``: in-browser
#:   inference; ``onnx_export``: export to the ONNX format). Only targets that exist are listed,
#:   never their absence.
#: - ``accelerators``: hardware with official (or officially documented experimental) support:
#:   NVIDIA ``cuda``, AMD ``rocm``, Google ``tpu``, ``apple`` GPUs through Metal.
#: - ``distributed``: multi-device training APIs: ``data_parallel`` (replicas on batch shards),
#:   ``model_parallel`` (parameters split across devices).
#: - ``ecosystem``: where pretrained models and add-on libraries come from, e.g. "Hugging Face Hub".
#: - ``licence``: the SPDX identifier of the licence, e.g. "BSD-3-Clause".
#: - ``release_cadence``: how often feature releases come, e.g. "about every 3 months".
#: - ``learning_curve``: what makes the framework easy or hard to learn.
#: - ``scorecard``: one row of a published scorecard (the value is the row's label); the fact
#:   carries ``score`` and ``scale`` and names exactly one framework.
TOPICS: dict[str, tuple[str, ...] | None] = {
    "deployment": ("serving", "mobile_edge", "browser", "onnx_export"),
    "accelerators": ("cuda", "rocm", "tpu", "apple"),
    "distributed": ("data_parallel", "model_parallel"),
    "ecosystem": None,
    "licence": None,
    "release_cadence": None,
    "learning_curve": None,
    "scorecard": None,
}

#: Kinds of :class:`Fact`: ``fact`` (stated by official documentation or checkable, e.g. a licence
#: file) or ``published opinion`` (an article's judgement or its own unverified figure).
KINDS = ("fact", "published opinion")

#: Kinds of :class:`Claim`: ``published claim`` (an article's own claim or measurement) or
#: ``vendor claim`` (a framework's or hardware maker's claim about itself, as reported).
CLAIM_KINDS = ("published claim", "vendor claim")

#: Kinds of :class:`ClaimTest`; see its docstring.
TEST_KINDS = ("ratio", "range", "winner_changes", "none")

#: Items of the benchmark suite a :class:`ClaimTest` figure may name (``mlx_explore.suite.ITEM_NAMES``,
#: suite version 2): ``small_batch`` (MLP 256-256 on digits, batch 32, eager and compiled),
#: ``large_batch`` (MLP 1024-1024 on synthetic 784-feature data, batch 1024, eager and compiled),
#: ``cnn`` (LeNet-style CNN on digits, compiled), ``parity`` (SGD MLP run twice, deterministic),
#: ``gru_small``/``transformer_small`` (width 64 on digits rows, batch 32), ``gru_large``/
#: ``transformer_large`` (width 256 on the 100-step adding task, batch 256) and ``gbdt``
#: (gradient-boosted trees, 100 rounds of depth 6, on synthetic 20-feature binary data, in
#: scikit-learn, XGBoost and LightGBM).
SUITE_ITEMS = ("small_batch", "large_batch", "cnn", "parity", "gru_small", "gru_large", "transformer_small",
               "transformer_large", "gbdt")  # fmt: skip

#: Metrics only the ``parity`` item has, besides the run metrics of
#: :data:`mlx_explore.metric_docs.METRIC_DOCS`: the largest relative difference of the per-step
#: losses between frameworks [1], and whether two identical runs gave bitwise-identical results.
PARITY_METRICS = ("max_rel_diff", "bitwise_identical")

#: The shipped data files.
FACTS_PATH = Path(__file__).parent / "facts.yaml"
CLAIMS_PATH = Path(__file__).parent / "claims.yaml"

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FIGURE_RE = re.compile(rf"^({'|'.join(SUITE_ITEMS)})\.([a-z0-9_]+)$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_YEAR_RE = re.compile(r"^\d{4}$")


def _listing(values: typing.Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a kebab-case id (lower-case letters and digits joined by single '-')")
    return value


def _check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    """Where an entry's facts or figures come from.

    - ``title``: the page's or article's own title (never a local file name).
    - ``publisher``: the site or organisation that published it, e.g. "PyTorch Foundation",
      "ChatBench.org"; ``"publisher not stated"`` where the text names none.
    - ``url``: an ``http(s)`` address of the page, or ``None`` where there is none to give.
    - ``date``: when it was published, as an ISO date (``2025-02-16``) or a year (``2025``);
      ``None`` where the page does not say. YAML dates and integer years are accepted.
    """

    title: str
    publisher: str
    url: str | None
    date: str | None

    _text = field_validator("title", "publisher")(_check_text)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _URL_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an http(s) URL; give one or null")
        return value

    @field_validator("date", mode="before")
    @classmethod
    def _date_to_text(cls, value: Any) -> Any:
        # YAML reads 2025-02-16 as a date and 2025 as an int: keep both as text.
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is None or _YEAR_RE.fullmatch(value):
            return value
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither an ISO date (YYYY-MM-DD) nor a year (YYYY); or give null") from None
        if len(value) != 10:
            raise ValueError(f"{value!r} is not written as YYYY-MM-DD")
        return value


class Fact(_Model):
    """One statement about one or more frameworks that a measurement cannot give.

    - ``id``: kebab-case, unique across facts and claims.
    - ``statement``: the fact in one or two sentences, in our own words.
    - ``frameworks``: the frameworks it is about, a non-empty subset of :data:`FRAMEWORKS`.
    - ``topic``: one of :data:`TOPICS`; ``value``: the short answer, one of ``TOPICS[topic]`` where
      that is a tuple (e.g. ``onnx_export``), else free text (e.g. ``Apache-2.0``).
    - ``kind``: one of :data:`KINDS`.
    - ``source``: a :class:`Source`; ``checked``: the date the source was last checked.
    - ``score``/``scale``: scorecard rows only (``topic: scorecard``): the published score and the
      top of its scale (``8.5`` of ``10``), ``0 <= score <= scale``; ``None`` for every other topic.
    """

    id: str
    statement: str
    frameworks: tuple[str, ...]
    topic: str
    value: str
    kind: str
    source: Source
    checked: dt.date
    score: float | None = None
    scale: float | None = None

    _id = field_validator("id")(_check_id)
    _text = field_validator("statement")(_check_text)

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one framework; allowed: {_listing(FRAMEWORKS)}")
        unknown = [f for f in value if f not in FRAMEWORKS]
        if unknown:
            raise ValueError(f"unknown framework(s) {_listing(unknown)}; allowed: {_listing(FRAMEWORKS)}")
        if len(set(value)) != len(value):
            raise ValueError("a framework is listed twice")
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if value not in TOPICS:
            raise ValueError(f"{value!r} is not a topic; allowed topics: {_listing(TOPICS)}")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str, info: ValidationInfo) -> str:
        _check_text(value)
        topic = info.data.get("topic")
        allowed = TOPICS.get(topic) if topic else None
        if allowed is not None and value not in allowed:
            raise ValueError(f"{value!r} is not allowed for topic {topic!r}; allowed values: {_listing(allowed)}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"{value!r} is not a kind of fact; allowed kinds: {_listing(KINDS)}")
        return value

    @model_validator(mode="after")
    def _scorecard(self) -> Fact:
        if self.topic != "scorecard":
            if self.score is not None or self.scale is not None:
                raise ValueError("fields 'score' and 'scale' belong to topic 'scorecard' only; remove them")
            return self
        if self.score is None or self.scale is None:
            raise ValueError("a scorecard fact needs both 'score' and 'scale' (e.g. score: 8.5, scale: 10)")
        if not 0 < self.scale or not 0 <= self.score <= self.scale:
            raise ValueError(f"'score' must lie in [0, scale] and 'scale' be positive; got {self.score} of {self.scale}")
        if len(self.frameworks) != 1:
            raise ValueError("field 'frameworks': a scorecard fact rates exactly one framework")
        return self


class Subject(_Model):
    """A framework of the suite and the execution mode whose figure a claim test reads.

    - ``framework``: one of the suite's columns, ``config.FRAMEWORKS`` (a Keras column, e.g.
      ``keras-torch``, for a claim about Keras 3 on a backend; ``xgboost`` or ``lightgbm`` for a
      claim about gradient-boosted trees, read from the ``gbdt`` item).
    - ``mode``: ``eager``, ``compiled`` (``torch.compile``, ``jax.jit``, ``tf.function``), or
      ``best`` (whichever of the framework's runs scores better on the figure; the only run of a
      framework or item with one mode: scikit-learn, the tree libraries).
    """

    framework: str
    mode: Literal["eager", "compiled", "best"] = "best"

    @field_validator("framework")
    @classmethod
    def _framework(cls, value: str) -> str:
        if value not in COLUMNS:
            raise ValueError(f"{value!r} is not a framework of the suite; allowed: {_listing(COLUMNS)}")
        return value


def _check_figure(value: str) -> str:
    match = _FIGURE_RE.fullmatch(value)
    if not match:
        raise ValueError(
            f"{value!r} is not '<item>.<metric>' with item one of {_listing(SUITE_ITEMS)} "
            "(e.g. 'large_batch.samples_per_s')"
        )
    item, metric = match.groups()
    allowed = (*METRIC_DOCS, *PARITY_METRICS) if item == "parity" else tuple(METRIC_DOCS)
    if metric not in allowed:
        raise ValueError(f"{metric!r} is not a metric of item {item!r}; allowed metrics: {_listing(allowed)}")
    return value


class ClaimTest(_Model):
    """How the benchmark suite audits a :class:`Claim`, or why it cannot.

    ``kind``:

    - ``ratio``: the claim is a relative difference between two runs. ``figure`` is the metric
      compared (``"<item>.<metric>"``, e.g. ``"large_batch.samples_per_s"``), ``subject`` and
      ``baseline`` the two runs. ``low``/``high`` bound the claimed ratio *oriented so that a value
      above 1 means the subject is better*: for a higher-is-better metric (throughput) it is
      subject/baseline, for a lower-is-better metric (time, memory, latency) baseline/subject; the
      auditing code orients the measured ratio the same way by the metric's direction. Examples:
      "JAX is 10-25 % faster than PyTorch" on throughput is subject jax, baseline torch, low 1.10,
      high 1.25; "PyTorch uses 30 % more memory than TensorFlow" is subject torch, baseline
      tensorflow, oriented ratio 1/1.3 = 0.77 (torch worse), so low 0.74, high 0.80.
    - ``range``: the claim is an absolute figure of one run: ``figure``, ``subject`` and the claimed
      range ``low``/``high`` in the metric's unit (see ``METRIC_DOCS``).
    - ``winner_changes``: the claim is that the framework ranked first on one figure is not the
      one ranked first on another: ``figures`` names the two (e.g. small- versus large-batch
      throughput).
    - ``none``: the suite cannot test it; ``why_untestable`` says what would be needed.

    ``low`` or ``high`` may be ``None`` for an open-ended claim ("up to 1.7x": ``high`` only).
    They bound the published figure itself, with its stated spread or rounding; the auditing code
    adds its own measurement tolerance. Fields that do not belong to the kind must be left out.

    ``min_size`` (``ratio``, ``range``, ``winner_changes``; optional): the smallest suite size whose
    figures can judge the claim. ``"full"`` where the small suite measures something else than the
    claim is about (the peak memory of a 20,000-sample fit is mostly the library's own footprint):
    a small suite's figure is then shown beside the claim with the verdict "conditions differ".
    ``None`` (default): any size.
    """

    kind: Literal["ratio", "range", "winner_changes", "none"]
    figure: str | None = None
    figures: tuple[str, str] | None = None
    subject: Subject | None = None
    baseline: Subject | None = None
    low: float | None = None
    high: float | None = None
    min_size: Literal["small", "full"] | None = None
    why_untestable: str | None = None

    @field_validator("figure")
    @classmethod
    def _figure(cls, value: str | None) -> str | None:
        return value if value is None else _check_figure(value)

    @field_validator("figures")
    @classmethod
    def _figures(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is None:
            return value
        for figure in value:
            _check_figure(figure)
        if value[0] == value[1]:
            raise ValueError("the two figures must differ")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClaimTest:
        needed = {
            "ratio": ("figure", "subject", "baseline"),
            "range": ("figure", "subject"),
            "winner_changes": ("figures",),
            "none": ("why_untestable",),
        }[self.kind]
        allowed = set(needed) | ({"low", "high"} if self.kind in ("ratio", "range") else set()) \
            | ({"min_size"} if self.kind != "none" else set())  # fmt: skip
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs field(s) {_listing(missing)}")
        extra = [name for name in type(self).model_fields if name != "kind" and name not in allowed
                 and getattr(self, name) is not None]  # fmt: skip
        if extra:
            raise ValueError(
                f"field(s) {_listing(extra)} do not belong to kind {self.kind!r}; "
                f"it takes {_listing(sorted(allowed))}"
            )
        if self.kind == "none" and not self.why_untestable.strip():
            raise ValueError("field 'why_untestable' must say what the suite would need")
        if self.kind in ("ratio", "range"):
            if self.low is None and self.high is None:
                raise ValueError(f"kind {self.kind!r} needs 'low', 'high' or both")
            if self.low is not None and self.high is not None and self.low > self.high:
                raise ValueError(f"'low' ({self.low}) is above 'high' ({self.high})")
        if self.kind == "ratio":
            if any(b is not None and b <= 0 for b in (self.low, self.high)):
                raise ValueError("a ratio's 'low' and 'high' must be positive")
            if self.subject == self.baseline:
                raise ValueError("'subject' and 'baseline' are the same run")
        return self


class Conditions(_Model):
    """What a claim was measured on, as far as its source says (``None``: not stated).

    - ``device``: ``cpu``, ``gpu``, ``tpu``, or ``any`` (not tied to a device type).
    - ``hardware``: the machine or chip, e.g. "NVIDIA A100".
    - ``model``: the network and data set, e.g. "ResNet-50 on ImageNet".
    - ``batch_size``: samples per step [samples]; ``precision``: e.g. "fp16", "mixed".
    - ``other``: anything else that matters, including how our suite's conditions differ.
    """

    device: Literal["cpu", "gpu", "tpu", "any"]
    hardware: str | None = None
    model: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    other: str | None = None

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be a positive number of samples, got {value}")
        return value


class Claim(_Model):
    """A quantitative claim from a published source, which our benchmark suite may audit.

    - ``id``: kebab-case, unique across facts and claims; ``statement``: the claim in our words.
    - ``frameworks``: the tools the claim is about, lower-case names not limited to
      :data:`FRAMEWORKS` (e.g. ``keras``, ``xgboost``).
    - ``kind``: one of :data:`CLAIM_KINDS`.
    - ``source``/``checked``: as for :class:`Fact`.
    - ``conditions``: the published conditions (:class:`Conditions`).
    - ``test``: how the suite audits it (:class:`ClaimTest`).
    """

    id: str
    statement: str
    frameworks: tuple[str, ...]
    kind: Literal["published claim", "vendor claim"]
    source: Source
    checked: dt.date
    conditions: Conditions
    test: ClaimTest

    _id = field_validator("id")(_check_id)
    _text = field_validator("statement")(_check_text)

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one framework or tool")
        bad = [f for f in value if not _NAME_RE.fullmatch(f)]
        if bad:
            raise ValueError(f"{_listing(bad)}: give lower-case names such as torch, keras, xgboost")
        if len(set(value)) != len(value):
            raise ValueError("a framework is listed twice")
        return value


class KnowledgeBase(_Model):
    """All facts and claims, with lookups. Build it with :func:`load` or :func:`default`."""

    facts: tuple[Fact, ...] = ()
    claims: tuple[Claim, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> KnowledgeBase:
        seen: set[str] = set()
        for entry in (*self.facts, *self.claims):
            if entry.id in seen:
                raise ValueError(f"duplicate id {entry.id!r}; ids must be unique across facts and claims")
            seen.add(entry.id)
        return self

    def facts_for(self, framework: str, topic: str | None = None) -> list[Fact]:
        """The facts about ``framework`` (one of :data:`FRAMEWORKS`), of ``topic`` (one of
        :data:`TOPICS`) if given, in file order. Raises ``ValueError`` for an unknown name."""
        if framework not in FRAMEWORKS:
            raise ValueError(f"unknown framework {framework!r}; allowed: {_listing(FRAMEWORKS)}")
        if topic is not None and topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; allowed: {_listing(TOPICS)}")
        return [f for f in self.facts if framework in f.frameworks and (topic is None or f.topic == topic)]

    def fact(self, id: str) -> Fact:  # noqa: A002 - the field is called id
        """The fact with this ``id``; ``KeyError`` naming the id if there is none."""
        for entry in self.facts:
            if entry.id == id:
                return entry
        raise KeyError(f"no fact with id {id!r}")

    def claim(self, id: str) -> Claim:  # noqa: A002
        """The claim with this ``id``; ``KeyError`` naming the id if there is none."""
        for entry in self.claims:
            if entry.id == id:
                return entry
        raise KeyError(f"no claim with id {id!r}")


class KnowledgeError(ValueError):
    """A knowledge file that cannot be loaded.

    ``path`` is the file (a :class:`~pathlib.Path`); ``entry`` the offending entry's ``id``, or
    ``"entry #N"`` (counting from 1) when it has no readable id, or ``None`` when the whole file is
    at fault (not YAML, not a list, unreadable). The message names the file, the entry, the field
    and what is allowed.
    """

    def __init__(self, path: str | Path, entry: str | None, detail: str) -> None:
        self.path = Path(path)
        self.entry = entry
        self.detail = detail
        where = f"{self.path}" if entry is None else f"{self.path}: {_entry_label(entry)}"
        super().__init__(f"{where}: {detail}")


def _entry_label(entry: str) -> str:
    return entry if entry.startswith("entry #") else f"entry {entry!r}"


def _entry_name(raw: object, number: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return raw["id"]
    return f"entry #{number}"


def _submodel(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class at ``loc`` inside ``model`` (to list a nested model's fields)."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [a for a in (field.annotation, *typing.get_args(field.annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)]  # fmt: skip
        if not candidates:
            return None
        model = candidates[0]
    return model


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per error of ``exc``: the field, what is wrong and what is allowed."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc)
        kind = err["type"]
        if kind == "value_error":
            msg = str(err["ctx"]["error"])
        elif kind == "extra_forbidden":
            parent = _submodel(model, loc[:-1])
            allowed = f"; allowed fields: {_listing(parent.model_fields)}" if parent else ""
            msg = f"unknown field{allowed}"
        elif kind == "missing":
            msg = "required field is missing"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        parts.append(f"field {field!r}: {msg}" if field else msg)
    return "; ".join(parts)


def _load_entries(path: Path, model: type[Fact] | type[Claim], taken: dict[str, Path]) -> tuple[Any, ...]:
    """Validate every entry of the YAML list in ``path``; ``taken`` maps ids already used (by any
    file) to their file and is updated."""
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except OSError as exc:
        raise KnowledgeError(path, None, f"cannot read the file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, None, f"not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise KnowledgeError(path, None, f"the top level must be a list of entries ('- id: ...'), got {got}")
    entries = []
    for number, raw in enumerate(data, start=1):
        name = _entry_name(raw, number)
        if not isinstance(raw, dict):
            raise KnowledgeError(path, name, f"an entry must be a mapping of fields, got a {type(raw).__name__}")
        try:
            entry = model.model_validate(raw)
        except ValidationError as exc:
            raise KnowledgeError(path, name, _describe(exc, model)) from exc
        if entry.id in taken:
            where = "earlier in this file" if taken[entry.id] == path else f"in {taken[entry.id]}"
            raise KnowledgeError(path, name, f"field 'id': duplicate id {entry.id!r}, already used {where}; ids must be unique")
        taken[entry.id] = path
        entries.append(entry)
    return tuple(entries)


def load(facts_path: str | Path | None = None, claims_path: str | Path | None = None) -> KnowledgeBase:
    """Read and validate the facts and claims files (default: the shipped :data:`FACTS_PATH` and
    :data:`CLAIMS_PATH`). Ids must be unique across both files. Raises :class:`KnowledgeError`.
    Each call reads the files again; :func:`default` caches the shipped ones."""
    facts_file = FACTS_PATH if facts_path is None else Path(facts_path)
    claims_file = CLAIMS_PATH if claims_path is None else Path(claims_path)
    taken: dict[str, Path] = {}
    facts = _load_entries(facts_file, Fact, taken)
    claims = _load_entries(claims_file, Claim, taken)
    return KnowledgeBase(facts=facts, claims=claims)


@functools.lru_cache(maxsize=1)
def default() -> KnowledgeBase:
    """The shipped knowledge base, loaded once per process (the result is immutable)."""
    return load()
