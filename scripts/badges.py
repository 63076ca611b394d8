"""Keep every "Open in Colab" / Binder badge and Colab install line pointing at this repository.

The repository's owner/name lives in one place, the README line ``Repository: `OWNER/NAME```.
Every notebook's first cell has a Colab and a Binder badge for that notebook, and every notebook's
set-up cell installs the project from that repository on Colab. This script rewrites them all
from the README's constant (``sync``), sets a new constant and rewrites (``set``), or only checks
(``check``, used by the test suite; exit status 1 lists what is out of date).

    python scripts/badges.py set acme/mlx-explore    # once the repository exists
    python scripts/badges.py check

Badge URLs follow Colab's GitHub loader (https://colab.research.google.com/github/) and Binder's
(https://mybinder.org/, ``labpath`` opens the notebook in JupyterLab).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOTEBOOKS = ROOT / "notebooks"
#: GitHub owner and repository names: letters, digits, '-', '_', '.'.
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
CONSTANT_RE = re.compile(r"^Repository: `([^`]*)`$", re.M)
_NAME = r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
#: (pattern, replacement) for every place the repository appears: only owner/name changes ({repo}).
_REWRITES = (
    (re.compile(rf"https://colab\.research\.google\.com/github/{_NAME}/blob/main/notebooks/"),
     "https://colab.research.google.com/github/{repo}/blob/main/notebooks/"),
    (re.compile(rf"https://mybinder\.org/v2/gh/{_NAME}/HEAD"), "https://mybinder.org/v2/gh/{repo}/HEAD"),
    (re.compile(rf"git\+https://github\.com/{_NAME}"), "git+https://github.com/{repo}"),
)  # fmt: skip

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def repository(readme: Path = README) -> str:
    """The owner/name in the README's ``Repository:`` line.

    Raises:
        ValueError: no such line, or it is not ``owner/name``.
    """
    match = CONSTANT_RE.search(readme.read_text())
    if not match:
        raise ValueError(f"{readme}: no line 'Repository: `owner/name`'")
    repo = match.group(1)
    if not REPO_RE.match(repo):
        raise ValueError(f"{readme}: repository {repo!r} is not owner/name (letters, digits, '-', '_', '.')")
    return repo


def colab_url(repo: str, notebook: str) -> str:
    """``https://colab.research.google.com/github/<repo>/blob/main/notebooks/<notebook>.ipynb``."""
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{notebook}.ipynb"


def binder_url(repo: str, notebook: str) -> str:
    """``https://mybinder.org/v2/gh/<repo>/HEAD?labpath=notebooks%2F<notebook>.ipynb``."""
    return f"https://mybinder.org/v2/gh/{repo}/HEAD?labpath=notebooks%2F{notebook}.ipynb"


def badges(repo: str, notebook: str) -> str:
    """The Markdown badge line of one notebook (``notebook`` without ``.ipynb``)."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(repo, notebook)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo, notebook)})")  # fmt: skip


def rewrite(text: str, repo: str) -> str:
    """``text`` with every Colab/Binder URL and ``git+https`` install line pointing at ``repo`` (the
    notebook each badge opens is kept)."""
    for pattern, template in _REWRITES:
        text = pattern.sub(lambda _m, t=template: t.format(repo=repo), text)
    return text


def targets(root: Path = ROOT) -> list[Path]:
    """Files to rewrite: the README and every ``notebooks/*.ipynb``."""
    return [root / "README.md", *sorted((root / "notebooks").glob("*.ipynb"))]


def stale(root: Path = ROOT) -> list[str]:
    """What is out of date with the README's repository: files whose rewrite would change them, and
    notebooks without both badges (opening that notebook) or without the Colab install line."""
    repo = repository(root / "README.md")
    problems = []
    for path in targets(root):
        text, nb = path.read_text(), path.stem
        if rewrite(text, repo) != text:
            problems.append(f"{path.relative_to(root)}: points at another repository")
        if path.suffix == ".ipynb":
            for what, url in (("Colab badge", colab_url(repo, nb)), ("Binder badge", binder_url(repo, nb)),
                              ("Colab install line", f"git+https://github.com/{repo}")):  # fmt: skip
                if url not in text:
                    problems.append(f"{path.relative_to(root)}: no {what} ({url})")
    return problems


def sync(root: Path = ROOT, repo: str | None = None) -> list[Path]:
    """Set the README's repository to ``repo`` (``None``: keep it) and rewrite every target; returns the
    files changed.

    Raises:
        ValueError: ``repo`` is not ``owner/name``.
    """
    readme = root / "README.md"
    if repo is not None:
        if not REPO_RE.match(repo):
            raise ValueError(f"repository: {repo!r} is not owner/name (letters, digits, '-', '_', '.')")
        text = readme.read_text()
        if not CONSTANT_RE.search(text):
            raise ValueError(f"{readme}: no line 'Repository: `owner/name`' to set")
        readme.write_text(CONSTANT_RE.sub(f"Repository: `{repo}`", text, count=1))
    repo = repository(readme)
    changed = []
    for path in targets(root):
        text = path.read_text()
        new = rewrite(text, repo)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


@app.command("set")
def set_(repo: str = typer.Argument(..., help="owner/name on GitHub, e.g. acme/mlx-explore")) -> None:
    """Set the README's repository and rewrite every badge and install line."""
    try:
        changed = sync(ROOT, repo)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"repository {repo}: {len(changed)} file(s) rewritten")


@app.command("sync")
def sync_cmd() -> None:
    """Rewrite every badge and install line from the README's repository."""
    changed = sync(ROOT)
    typer.echo(f"repository {repository()}: {len(changed)} file(s) rewritten")


@app.command()
def check() -> None:
    """Exit 1 and list what does not point at the README's repository."""
    problems = stale(ROOT)
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"every badge and install line points at {repository()}")


if __name__ == "__main__":
    sys.exit(app())
