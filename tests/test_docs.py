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
@pytest.mark.parametrize("script", ["cli_reference.py", "methods_reference.py"])
def test_the_generated_reference_pages_are_current(script):
    """The command-line page is what the CLI prints; the methods page what the registry and the presets say."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROBUST_PLUGINS", "ROBUST_PRESETS")}
    res = subprocess.run([sys.executable, str(ROOT / "docs" / script), "--check"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, f"its page is out of date: run `python docs/{script}`\n" + res.stderr[-2000:]


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


API_PAGE = ROOT / "docs" / "reference" / "api.md"
SECTION = re.compile(r"^([A-Z][a-z]+):\n((?:(?: {4}.*)?\n)+)", re.M)


def _api_objects() -> dict:
    """The classes and functions the API page renders, by their dotted names: each ``::: name`` entry (a module
    entry expands to its ``__all__``, unless its options say ``members: false``)."""
    import importlib
    import inspect

    found = {}
    for path, options in re.findall(r"^::: (\S+)\n((?: {4}.*\n)*)", API_PAGE.read_text(), re.M):
        parent, _, attr = path.rpartition(".")
        obj = getattr(importlib.import_module(parent), attr)
        if not inspect.ismodule(obj):
            found[path] = obj
        elif "members: false" not in options:
            found.update({f"{path}.{name}": getattr(obj, name) for name in obj.__all__
                          if inspect.isclass(getattr(obj, name)) or inspect.isfunction(getattr(obj, name))})
    return found


API = _api_objects()


def _public_objects() -> dict:
    """Every class and function a module of robust lists in ``__all__``, by the dotted name of the module that
    defines it, and the API page's names."""
    import importlib
    import inspect
    import pkgutil

    import robust

    found = {}
    for info in pkgutil.walk_packages(robust.__path__, "robust."):
        if info.name == "robust.__main__":
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("robust"):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    seen = {id(obj) for obj in found.values()}
    return {**found, **{k: v for k, v in API.items() if id(v) not in seen}}


PUBLIC = _public_objects()


def _own_doc(obj: object) -> str:
    import inspect

    return inspect.cleandoc((obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__) or "") + "\n"


def _documented(section: str) -> set[str]:
    """The names a section's items document (``name: ...`` or ``name (type): ...`` at its first indentation)."""
    return set(re.findall(r"^ {4}(\*{0,2}\w+)(?: \([^)]*\))?:", section, re.M))


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_docstrings_follow_one_style(name):
    """Every public name (in an ``__all__``, or on the API page) says, in Google style: its arguments (Args, one
    item per parameter; Attributes for a dataclass's fields), what it returns (Returns), the shapes and ranges of
    the tensors it takes or gives (Shape), and one example (Examples, run by the next test)."""
    import dataclasses
    import inspect

    obj = PUBLIC[name]
    sections = dict(SECTION.findall(_own_doc(obj)))
    problems = []
    if ">>>" not in sections.get("Examples", ""):
        problems.append("an Examples section with a >>> example")
    if dataclasses.is_dataclass(obj):
        fields = {f.name for f in dataclasses.fields(obj)}
        if missing := fields - _documented(sections.get("Attributes", "")):
            problems.append(f"Attributes for {sorted(missing)}")
    elif not (inspect.isclass(obj) and issubclass(obj, BaseException)):
        signature = inspect.signature(obj)
        stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
        params = {stars.get(p.kind, "") + p.name for p in signature.parameters.values()}
        if missing := params - _documented(sections.get("Args", "")):
            problems.append(f"Args for {sorted(missing)}")
        if inspect.isfunction(obj) and signature.return_annotation not in ("None", None) and "Returns" not in sections:
            problems.append("a Returns section")
        annotations = [str(p.annotation) for p in signature.parameters.values()] + [str(signature.return_annotation)]
        if any("Tensor" in a for a in annotations) and "Shape" not in sections:
            problems.append("a Shape section (it takes or returns tensors)")
    assert not problems, f"{name}'s docstring lacks " + "; ".join(problems)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_examples_run(name, tmp_path, monkeypatch, own_registry):
    """Each public name's example runs as written, from an empty folder, its imports its own (what it registers
    stays in a copy of the registry)."""
    import doctest
    import io

    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    for test in doctest.DocTestFinder(recurse=False).find(PUBLIC[name], name, globs={}):
        runner.run(test, out=out.write)
    assert runner.tries and not runner.failures, out.getvalue()


FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
#: how each language's blocks are tested: python runs (the blocks below; the README's and the quickstart's above),
#: bash is parsed by the command line it calls (and its attack and occlusion commands run, in the slow set), toml is
#: loaded as a spec, yaml (the CI guide's Actions lines) runs in
#: tests/test_testing.py's slow test, text is the command-line page (checked above) or the README's layout (below)
CHECKED = {"python", "bash", "toml", "yaml", "text"}


def _blocks(page: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(page.read_text()) if kind == lang]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_code_block_names_a_language_a_test_checks(page):
    kinds = [kind for kind, _ in FENCE.findall(page.read_text())]
    assert set(kinds) <= CHECKED, f"{page.relative_to(ROOT)}: blocks in {sorted(set(kinds) - CHECKED)} are untested"


def _commands(block: str) -> list[list[str]]:
    """The command lines of a bash block: continuations joined, comments and blank lines dropped."""
    import shlex

    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()
            if shlex.split(line, comments=True)]


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "bash")],
                         ids=[str(p.relative_to(ROOT)) for p in PAGES if _blocks(p, "bash")])
def test_every_shell_command_in_the_docs_parses(page):
    """Each ``robust`` command of a bash block is one the command line accepts, options and values included
    (parsed, not run: training for 4,000 steps is the guide's, not the test's); each ``make`` target exists."""
    import click
    import typer

    from robust.cli import app

    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for block in _blocks(page, "bash"):
        for words in _commands(block):
            if words[0] == "make":
                assert set(words[1:]) <= targets, f"{page.name}: `{' '.join(words)}` names a missing make target"
                continue
            if words[0] != "robust":
                continue
            command, args = typer.main.get_command(app), words[1:]
            ctx = None
            while True:
                ctx = command.make_context(words[0], list(args), parent=ctx, resilient_parsing=False)
                if not isinstance(command, click.Group):
                    break
                name, command, args = command.resolve_command(ctx, ctx.protected_args + ctx.args)
                assert command is not None, f"{page.name}: `{' '.join(words)}`: no command {name!r}"


#: the commands of the docs' bash blocks that run in a minute: training (30 epochs, 4,000 steps), a whole board and
#: the make targets (`make test` is CI itself) are parsed above, not run
RUNNABLE = (["robust", "attack", "run"], ["robust", "occlusion", "run"])


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.subprocess
def test_the_docs_attack_and_occlusion_commands_run_as_written(tmp_path):
    import shutil

    robust = shutil.which("robust", path=str(Path(sys.executable).parent))
    commands = [words for page in PAGES for block in _blocks(page, "bash") for words in _commands(block)
                if words[:3] in RUNNABLE]
    assert len(commands) >= 2
    for words in commands:
        res = subprocess.run([robust, *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"`{' '.join(words)}` failed:\n{res.stdout[-1500:]}{res.stderr[-1500:]}"


def test_the_spec_in_the_leaderboards_guide_loads(tmp_path):
    from robust.runner.spec import load_spec

    (block,) = _blocks(ROOT / "docs" / "guides" / "leaderboards.md", "toml")
    (tmp_path / "mine.toml").write_text(block)
    spec = load_spec(tmp_path / "mine.toml")
    assert len(spec.models) == 2 and spec.title == "my models under 12 % patches"


@pytest.fixture
def own_registry(monkeypatch):
    """A copy of the registry's tables for a test that registers methods, so the session's stay as they were."""
    from robust import registry

    registry.attacks()  # the built-ins, imported before the copy
    monkeypatch.setattr(registry, "_ATTACKS", dict(registry._ATTACKS))
    monkeypatch.setattr(registry, "_EVALUATIONS", dict(registry._EVALUATIONS))
    monkeypatch.setattr(registry, "_DEFENSES", dict(registry._DEFENSES))


def test_the_plugin_guides_evaluation_registers_and_runs(own_registry):
    from robust import load_dataset, load_model, run_evaluation

    namespace: dict = {}
    (block,) = _blocks(ROOT / "docs" / "guides" / "plugins.md", "python")
    exec(compile(block, "docs/guides/plugins.md", "exec"), namespace)
    curve = run_evaluation("grey-wash", load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m"),
                           samples=8, seeds=1)
    assert curve.x == [0.0, 0.5] and curve.n == 8 and curve.ylabel == "error"


def test_the_defenses_guides_examples_run(capsys):
    namespace: dict = {}
    certified, empirical = _blocks(ROOT / "docs" / "guides" / "defenses.md", "python")
    exec(compile(certified, "docs/guides/defenses.md", "exec"), namespace)
    assert namespace["counts"].n == 8 and namespace["label"].shape == (8,)
    exec(compile(empirical, "docs/guides/defenses.md", "exec"), namespace)
    assert namespace["smoothed"].shape == (8, 3, 32, 32)
    out = capsys.readouterr().out
    assert "defended accuracy" in out and "clean accuracy behind LGS" in out


def test_the_patch_mixing_guides_training_script_runs(monkeypatch):
    """The guide's three blocks in one namespace, as a script would run them; its epoch over digits-m's training
    split is cut to two batches."""
    from robust.data.base import ImageSet

    batches = ImageSet.batches
    monkeypatch.setattr(ImageSet, "batches", lambda self, size, *a, **k: batches(self, size, *a, **{**k, "limit": 256}))
    namespace: dict = {}
    for block in _blocks(ROOT / "docs" / "guides" / "patch-mixing.md", "python"):
        exec(compile(block, "docs/guides/patch-mixing.md", "exec"), namespace)
    assert namespace["target"].shape == (128, 1000) and namespace["x"].shape == (128, 3, 32, 32)


def test_the_readmes_layout_names_folders_that_exist():
    (block,) = _blocks(ROOT / "README.md", "text")
    folders = re.findall(r"^(\S+)/ ", block, re.M)
    assert len(folders) >= 7 and not [f for f in folders if not (ROOT / f).is_dir()]
