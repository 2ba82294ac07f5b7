"""The docs' references stay true: files they name exist, command lines in their code
blocks name existing benchmark scripts and options, gdmlx command lines parse, and
internal links resolve. Reads only text and argparse definitions (no script is run)."""

import ast
import os
import re
import shlex

import pytest

from gdmlx.cli.main import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/guide.md", "benchmarks/README.md"]
# named in benchmarks/README.md's history as removed since
REMOVED = {"gdmlx/kernels/internal_assembly.py"}


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _code_lines(text):
    """Lines of ``` blocks, continuation lines joined, comments dropped."""
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            yield re.sub(r"\s#.*", "", line).strip()


def _expand(path):
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [q for alt in m.group(1).split(",") for q in _expand(path[:m.start()] + alt + path[m.end():])]


def _script_options(name):
    tree = ast.parse(_read(f"benchmarks/{name}.py"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant)
                      and isinstance(a.value, str) and a.value.startswith("-")}
        if isinstance(node, ast.ImportFrom) and any(a.name == "parser" for a in node.names):
            found |= _script_options(node.module)
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_named_files_exist(doc):
    text = _read(doc)
    missing = []
    for m in re.finditer(r"(?<![\w/.$-])((?:benchmarks|gdmlx|tests|examples|results|docs)/[\w./{},-]*"
                         r"\.(?:jsonl|json|py|log|png|sh|md|npz))", text):
        for path in set(_expand(m.group(1))) - REMOVED:
            if not any(os.path.exists(os.path.join(ROOT, base, path)) for base in ("", "benchmarks")):
                missing.append(path)
    assert not missing


@pytest.mark.parametrize("doc", DOCS)
def test_benchmark_commands_use_existing_scripts_and_options(doc):
    bad = []
    for line in _code_lines(_read(doc)):
        for m in re.finditer(r"python3? (?:benchmarks/)?(\w+)\.py((?:\s+(?!&&|\||;|python)[^\s;&|]+)*)", line):
            name, rest = m.groups()
            if not os.path.exists(os.path.join(ROOT, "benchmarks", f"{name}.py")):
                bad.append(name)
                continue
            options = _script_options(name)
            bad += [f"{name} {t}" for t in rest.split()
                    if re.match(r"--[a-z]", t) and t.split("=")[0] not in options]
    assert not bad


@pytest.mark.parametrize("doc", ["README.md", "docs/guide.md"])
def test_gdmlx_command_lines_parse(doc):
    parser = build_parser()
    bad = []
    for line in _code_lines(_read(doc)):
        m = re.match(r"(?:\$ )?gdmlx (?!\S+: )(.*)", line)
        if not m or "[" in line:
            continue
        try:
            parser.parse_args(shlex.split(m.group(1)))
        except SystemExit:
            bad.append(line)
    assert not bad


def _anchor(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS + ["docs/cli.md"])
def test_internal_links_resolve(doc):
    text = re.sub(r"```.*?```", "", _read(doc), flags=re.S)
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith("http"):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        if not os.path.exists(os.path.join(ROOT, full)):
            bad.append(target)
        elif anchor:
            heads = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", _read(full), flags=re.S), flags=re.M)
            if anchor not in {_anchor(h) for h in heads}:
                bad.append(target)
    assert not bad
