"""README, docs/ and the commands' help refer only to files and sections that exist.

Checked: every relative markdown link; every path (in backticks or code blocks) that starts
with a top-level entry of the repository; every upper-case ``NAME.md`` named; every
"(README, 'Section')" of the help; and the ``demo-output/...`` files of the README's examples,
against what ``fntk demo`` writes.
"""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from fntk.cli.main import app

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _tracked() -> set[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    folders = {str(Path(f).parents[k]) for f in listed for k in range(len(Path(f).parts) - 1)}
    return set(listed) | folders


def _mentions(text: str) -> set[str]:
    """Tokens in backticks and in fenced code blocks that look like paths."""
    spans = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
    return {
        token.strip("\"',;:()[]").rstrip(".")
        for span in spans
        for token in re.split(r"[\s=]+", span)
        if "/" in token or re.fullmatch(r"[\w.-]+\.\w+", token.strip("\"',;:()[]"))
    }


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_document_names_is_in_the_repository(doc):
    tracked = _tracked()
    top = {name.split("/")[0] for name in tracked}
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            path = (doc.parent / target.split("#")[0]).resolve().relative_to(ROOT)
            if str(path) not in tracked:
                missing.append(target)
    for token in _mentions(text):
        path = token.rstrip("/")
        if path.split("/")[0] in top and "*" not in path and path not in tracked:
            missing.append(token)
    for name in re.findall(r"\b[A-Z][A-Z_]+\.md\b", text):
        if not any(t == name or t.endswith("/" + name) for t in tracked):
            missing.append(name)
    assert not missing, f"{doc.name} names files that are not in the repository: {missing}"


def test_readme_layout_lists_what_the_package_holds():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Layout\s+```\n(.*?)```", readme, flags=re.S)
    assert block is not None
    tracked = _tracked()
    prefix, missing, checked = "", [], 0
    for line in block.group(1).splitlines():
        top = re.match(r"(\S+/)\s", line + " ")
        entry = re.match(r"  (\S+)\s", line)
        if top:
            prefix = top.group(1)
            name = prefix
        elif entry and prefix:
            name = prefix + entry.group(1)
        else:
            continue
        checked += 1
        if name.rstrip("/") not in tracked:
            missing.append(name)
    assert checked > 10 and missing == []


def test_help_refers_to_readme_sections_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+ (.+)$", readme, flags=re.M))
    tracked = _tracked()
    texts = []

    def walk(command) -> None:
        texts.append(command.help or "")
        texts.extend(p.help or "" for p in command.params if p.param_type_name == "option")
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(get_command(app))
    text = " ".join(" ".join(texts).split())
    sections = re.findall(r"README, '([^']+)'", text)
    assert sections  # the pattern still matches how the help cites the README
    assert [s for s in sections if s not in headings] == []
    for name in re.findall(r"\b[A-Z][A-Z_]+\.md\b", text):
        assert any(t == name or t.endswith("/" + name) for t in tracked), name


def test_readme_examples_use_files_the_demo_writes(tmp_path, monkeypatch):
    import fntk.cli.select_cmd

    monkeypatch.setattr(fntk.cli.select_cmd, "run_job", lambda *args, **kwargs: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])  # writes the inputs; the selection is skipped
    assert result.exit_code == 0, result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    demo_paths = sorted({t for t in _mentions(readme) if t.startswith("demo-output/inputs")})
    assert demo_paths  # the examples still use the demo's inputs
    for path in demo_paths:
        assert glob.glob(path), f"README names {path}, which `fntk demo` does not write"
