"""The documentation stays true: every relative link in the README and under docs/ resolves (raw outputs and
boards included, which the site's own strict build cannot see), and the command-line page is what the CLI prints.
`make test` builds the site strict (`make docs`) before running these."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    broken = [target for target in LINK.findall(text)
              if not re.match(r"[a-z]+:", target) and not target.startswith("#")
              and not (page.parent / target.split("#")[0]).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def _run_python_blocks(page: Path) -> None:
    """Every Python block of ``page``, in order, in one namespace."""
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
        exec(compile(block, str(page.relative_to(ROOT)), "exec"), namespace)


def test_the_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run_python_blocks(ROOT / "docs" / "quickstart.md")
    tcs, asr, n = capsys.readouterr().out.split()
    assert int(n) == 40 and 0 <= float(tcs) <= float(asr) <= 1


def test_the_readmes_ten_lines_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run_python_blocks(ROOT / "README.md")
    out = capsys.readouterr().out
    assert out.startswith("zoo:digits-m/vit (vit, Grad-CAM at ") and out.strip().endswith("%")


def test_the_readmes_demo_table_is_the_committed_boards():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import demo_table
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "README.md").read_text() == demo_table.rendered(), "run `python docs/demo_table.py`"


@pytest.mark.subprocess
def test_the_command_line_page_is_what_the_cli_prints():
    env = {k: v for k, v in os.environ.items() if k not in ("ROBUST_PLUGINS", "ROBUST_PRESETS")}
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "cli_reference.py"), "--check"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, ("docs/reference/cli.md is out of date: run `python docs/cli_reference.py`\n"
                                 + res.stderr[-2000:])


def test_every_public_name_has_a_docstring():
    """What the API page is generated from: every class and function a module lists in ``__all__`` says what it is
    (a dataclass's generated ``Name(field, ...)`` does not count)."""
    import importlib
    import inspect
    import pkgutil

    import robust

    missing = []
    for info in pkgutil.walk_packages(robust.__path__, "robust."):
        if info.name == "robust.__main__":
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not (doc or "").strip() or doc.startswith(f"{obj.__name__}("):
                missing.append(f"{info.name}.{name}")
    assert not missing, missing
