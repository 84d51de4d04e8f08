"""Move fedtwin's flat modules into subpackages by job and rewrite every reference to them; re-runnable.

    python tools/relayout.py                       # move what is still at its old path, rewrite references
    python tools/relayout.py --check               # exit 1 listing what is left (old references, unmapped...)
    python tools/relayout.py --map foo=streaming   # also move fedtwin/foo.py (a module added since)

Idempotent: a file already at its new path is skipped, a rewritten reference no longer matches. Several
people edit fedtwin/ in parallel, so the move is this tool, not a hand edit: after merging their branches,
run it again and it moves and rewrites whatever they added. A top-level ``fedtwin/*.py`` that is neither
mapped nor kept is reported (with the ``--map`` line to add), never guessed.

What it rewrites, in every tracked or new (not ignored) text file except this one:

- dotted module paths anywhere (imports, ``mock.patch``/``monkeypatch`` targets, ``python -m``, entry
  points, mypy overrides, mutmut names, prose): ``fedtwin.scorer`` -> ``fedtwin.streaming.scorer``;
- ``from fedtwin import a, b`` (also parenthesised, aliased): split by the package each name now lives in;
- file paths ``fedtwin/scorer.py`` and ``fedtwin/{a,b}.py`` (pyproject's mutmut list, README, docs);
- the mirrored unit tests ``tests/unit/fedtwin/test_<module>[_*].py``, moved to ``tests/unit/fedtwin/<sub>/``
  (with an ``__init__.py``, so pytest's module names stay unique), and references to their paths.

Layering (checked by ``--check``): ``app`` may import anything; ``streaming`` the data, training and adapters;
``training`` the data; ``data`` and ``adapters`` no other subpackage; only ``app`` imports flows/ or tasks/.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fedtwin"

# Subpackage -> what it holds (the docstring of its __init__.py).
SUBPACKAGES = {
    "app": "The application: the ``fedtwin`` CLI and its commands; the only fedtwin code importing flows/.",
    "streaming": "The streaming path: scoring engine and service, the live plant, what serves and rollback.",
    "training": "The training recipe, the promotion gate and the plant's recalibration for retrain. Pure.",
    "data": "The pump's data: wire formats, window features, simulated data sets and their validation. Pure.",
    "adapters": "Services: Kafka, Redis and the model store, MLflow, the embedded stack, outages.",
}

# Old module (under fedtwin/) -> subpackage.
MAPPING = {
    "cli": "app",
    "cli_stream": "app",
    "alerts_view": "app",
    "scorer": "streaming",
    "scoring": "streaming",
    "live": "streaming",
    "serving": "streaming",
    "recipe": "training",
    "recalibrate": "training",
    "promotion": "training",
    "schema": "data",
    "features": "data",
    "datasets": "data",
    "validation": "data",
    "kafka_io": "adapters",
    "redis_io": "adapters",
    "model_store": "adapters",
    "mlflow_model": "adapters",
    "tracking": "adapters",
    "stack": "adapters",
    "outages": "adapters",
    "shadows": "streaming",
    "campaign": "streaming",
    "live_eval": "training",
    "sites": "training",
    "site_executor": "training",
}

# Modules that stay at fedtwin/ top: everything imports them.
KEEP = {"__init__", "settings", "errors"}

# Subpackage -> the subpackages it may import (besides the kept top-level modules).
LAYERS = {
    "app": {"streaming", "training", "data", "adapters"},
    "streaming": {"training", "data", "adapters"},
    "training": {"data"},
    "data": set(),
    "adapters": set(),
}
UPWARD = ("flows", "tasks")  # only fedtwin.app may import these

TEXT_SUFFIXES = {".py", ".toml", ".md", ".yaml", ".yml", ".cfg", ".ini", ".txt", ".json", ".sh", ".js"}
TEXT_NAMES = {"Makefile", "Dockerfile"}
# This tool and its test hold old paths on purpose: never rewritten, never reported.
EXCLUDED = {"tools/relayout.py", "tests/unit/test_relayout.py"}


@dataclass
class Report:
    moved: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def text_files() -> list[Path]:
    """Tracked and new (not ignored) text files, EXCLUDED left out."""
    names = git("ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    out = []
    for name in sorted(set(names)):
        path = ROOT / name
        if name in EXCLUDED or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            out.append(path)
    return out


# --- the mapping -------------------------------------------------------------------------------------------


def new_module(old: str, mapping: dict[str, str]) -> str:
    return f"{PACKAGE}.{mapping[old]}.{old}"


def test_target(test_name: str, mapping: dict[str, str]) -> str | None:
    """The subpackage of the module a mirrored test ``test_<module>[_<what>]`` tests (longest name wins)."""
    stem = test_name.removeprefix("test_")
    best = None
    for mod in mapping:
        if (stem == mod or stem.startswith(mod + "_")) and (best is None or len(mod) > len(best)):
            best = mod
    # A kept module's own test (test_settings_x) stays where it is even if a mapped name is a prefix of it.
    for mod in KEEP:
        if (stem == mod or stem.startswith(mod + "_")) and (best is None or len(mod) >= len(best)):
            return None
    return mapping[best] if best else None


def unit_test_moves(mapping: dict[str, str]) -> dict[str, str]:
    """Old -> new path (relative) of every mirrored unit test still at tests/unit/fedtwin/."""
    base = ROOT / "tests" / "unit" / PACKAGE
    moves = {}
    for path in sorted(base.glob("test_*.py")):
        sub = test_target(path.stem, mapping)
        if sub:
            moves[path.relative_to(ROOT).as_posix()] = f"tests/unit/{PACKAGE}/{sub}/{path.name}"
    return moves


def test_renames(mapping: dict[str, str]) -> dict[str, str]:
    """Test file name -> subpackage, for every mirrored test, moved or not (to rewrite references)."""
    base = ROOT / "tests" / "unit" / PACKAGE
    out = {}
    for path in [*base.glob("test_*.py"), *base.glob("*/test_*.py")]:
        sub = test_target(path.stem, mapping)
        if sub:
            out[path.stem] = sub
    return out


# --- rewriting ---------------------------------------------------------------------------------------------

FROM_IMPORT = re.compile(
    rf"^(?P<indent>[ \t]*)from {PACKAGE} import (?P<names>\([^)]*\)|[^\n#]+?)(?P<comment>[ \t]*#[^\n]*)?$",
    re.MULTILINE,
)


def _split_names(raw: str) -> list[str]:
    raw = raw.strip().removeprefix("(").removesuffix(")")
    raw = "\n".join(line.split("#", 1)[0] for line in raw.splitlines())
    return [n.strip() for n in raw.replace("\n", " ").split(",") if n.strip()]


def rewrite_from_imports(text: str, mapping: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        names = _split_names(m["names"])
        if not any(n.split()[0] in mapping for n in names):
            return m[0]
        groups: dict[str, list[str]] = {}
        for n in names:
            base = n.split()[0]
            pkg = f"{PACKAGE}.{mapping[base]}" if base in mapping else PACKAGE
            groups.setdefault(pkg, []).append(n)
        lines = [f"{m['indent']}from {pkg} import {', '.join(ns)}" for pkg, ns in groups.items()]
        lines[0] += m["comment"] or ""
        return "\n".join(lines)

    return FROM_IMPORT.sub(repl, text)


def _alternation(names: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


def dotted_pattern(mapping: dict[str, str]) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){PACKAGE}\.(?P<mod>{_alternation(mapping)})(?![\w])")


def path_pattern(mapping: dict[str, str]) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w./]){PACKAGE}/(?P<mod>{_alternation(mapping)})\.py\b")


BRACES = re.compile(rf"(?P<tick>`?)(?<![\w./]){PACKAGE}/\{{(?P<mods>[\w, ]+)\}}\.py(?P=tick)")


def rewrite_braces(text: str, mapping: dict[str, str]) -> str:
    """``fedtwin/{a,b}.py`` -> ``fedtwin/x/{a,b}.py`` (or one group per subpackage, comma-separated; a path
    in backticks gives one backticked path per group)."""

    def repl(m: re.Match[str]) -> str:
        mods = [s.strip() for s in m["mods"].split(",")]
        if not any(mod in mapping for mod in mods):
            return m[0]
        groups: dict[str, list[str]] = {}
        for mod in mods:
            groups.setdefault(f"{PACKAGE}/{mapping[mod]}" if mod in mapping else PACKAGE, []).append(mod)
        parts = [
            f"{d}/{{{','.join(ms)}}}.py" if len(ms) > 1 else f"{d}/{ms[0]}.py" for d, ms in groups.items()
        ]
        tick = m["tick"]
        return ", ".join(f"{tick}{part}{tick}" for part in parts)

    return BRACES.sub(repl, text)


def rewrite_text(text: str, mapping: dict[str, str], tests: dict[str, str]) -> str:
    text = rewrite_from_imports(text, mapping)
    text = dotted_pattern(mapping).sub(lambda m: new_module(m["mod"], mapping), text)
    text = path_pattern(mapping).sub(lambda m: f"{PACKAGE}/{mapping[m['mod']]}/{m['mod']}.py", text)
    text = rewrite_braces(text, mapping)
    if tests:
        alt = _alternation(tests)
        text = re.sub(
            rf"tests/unit/{PACKAGE}/(?P<t>{alt})\.py\b",
            lambda m: f"tests/unit/{PACKAGE}/{tests[m['t']]}/{m['t']}.py",
            text,
        )
        text = re.sub(
            rf"tests\.unit\.{PACKAGE}\.(?P<t>{alt})\b",
            lambda m: f"tests.unit.{PACKAGE}.{tests[m['t']]}.{m['t']}",
            text,
        )
    return text


# --- the moves ---------------------------------------------------------------------------------------------


def ensure_init(directory: Path, doc: str, report: Report) -> None:
    init = directory / "__init__.py"
    if not init.exists():
        directory.mkdir(parents=True, exist_ok=True)
        init.write_text(f'"""{doc}"""\n' if doc else "")
        git("add", init.relative_to(ROOT).as_posix())
        report.created.append(init.relative_to(ROOT).as_posix())


def git_mv(old: str, new: str, report: Report) -> None:
    src, dst = ROOT / old, ROOT / new
    if not src.exists():
        return
    if dst.exists():
        report.problems.append(f"{old}: both it and {new} exist; merge them by hand, then re-run")
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tracked = bool(git("ls-files", old).strip())
    if tracked:
        git("mv", old, new)
    else:  # a new, uncommitted file: move it and let git see it at its new path
        shutil.move(src, dst)
        git("add", new)
    report.moved.append(f"{old} -> {new}")


def unmapped_modules(mapping: dict[str, str]) -> list[str]:
    return sorted(
        p.stem for p in (ROOT / PACKAGE).glob("*.py") if p.stem not in mapping and p.stem not in KEEP
    )


def apply(mapping: dict[str, str], report: Report) -> None:
    for sub, doc in SUBPACKAGES.items():
        if sub in mapping.values():
            ensure_init(ROOT / PACKAGE / sub, doc, report)
    for old, sub in mapping.items():
        git_mv(f"{PACKAGE}/{old}.py", f"{PACKAGE}/{sub}/{old}.py", report)
    for old, new in unit_test_moves(mapping).items():
        ensure_init((ROOT / new).parent, "", report)
        git_mv(old, new, report)
    tests = test_renames(mapping)
    changed = []
    for path in text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = rewrite_text(text, mapping, tests)
        if new != text:
            path.write_text(new)
            changed.append(path)
    report.rewritten = [p.relative_to(ROOT).as_posix() for p in changed]
    report.unmapped = unmapped_modules(mapping)
    sort_imports([p for p in changed if p.suffix == ".py"], report)


def sort_imports(paths: list[Path], report: Report) -> None:
    """Re-sort the import blocks the rewrite touched (ruff's isort rule), so `ruff check` stays clean."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not paths or not Path(ruff).exists():
        if paths:
            report.problems.append("ruff not found: run `ruff check --select I --fix` on the rewritten files")
        return
    files = [str(p) for p in paths]
    sort = [ruff, "check", "--quiet", "--select", "I", "--fix", *files]
    subprocess.run(sort, cwd=ROOT, capture_output=True, check=False)
    # Longer module paths can push a line past the limit; prose cannot be rewrapped safely, so say where.
    long = subprocess.run(
        [ruff, "check", "--quiet", "--select", "E501", "--output-format", "concise", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report.problems += [f"rewrap by hand: {line}" for line in long.stdout.splitlines() if ": E501 " in line]


# --- the check ---------------------------------------------------------------------------------------------


def old_references(mapping: dict[str, str]) -> list[str]:
    """``file:line: text`` of every reference to an old module path, file path or mirrored test path."""
    tests_left = {Path(old).stem for old in unit_test_moves(mapping)}
    patterns = [
        dotted_pattern(mapping),
        path_pattern(mapping),
        re.compile(rf"^\s*from {PACKAGE} import .*\b(?:{_alternation(mapping)})\b", re.MULTILINE),
        re.compile(rf"^\s*from {PACKAGE} import \([^)]*\b(?:{_alternation(mapping)})\b[^)]*\)", re.MULTILINE),
    ]
    if tests_left:
        patterns.append(re.compile(rf"tests/unit/{PACKAGE}/(?:{_alternation(tests_left)})\.py"))
    hits = []
    for path in text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(ROOT).as_posix()
        found = {text.count("\n", 0, m.start()) + 1 for p in patterns for m in p.finditer(text)}
        found |= {
            text.count("\n", 0, m.start()) + 1
            for m in BRACES.finditer(text)
            if any(s.strip() in mapping for s in m["mods"].split(","))
        }
        lines = text.splitlines()
        hits += [f"{rel}:{n}: {lines[n - 1].strip()}" for n in sorted(found)]
    return hits


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def layering_breaks() -> list[str]:
    """Imports against LAYERS: a subpackage importing one above it, or flows/tasks outside fedtwin.app."""
    breaks = set()
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT / PACKAGE).parts
        own = parts[0] if len(parts) > 1 else None
        rel = path.relative_to(ROOT).as_posix()
        for line, name in imported_modules(path):
            top = name.split(".")
            if top[0] in UPWARD and own != "app":
                breaks.add(f"{rel}:{line}: imports {top[0]} (only {PACKAGE}.app may import flows/tasks)")
            elif (
                top[0] == PACKAGE
                and len(top) > 1
                and own in LAYERS
                and top[1] in LAYERS
                and top[1] != own
                and top[1] not in LAYERS[own]
            ):
                allowed = sorted(LAYERS[own])
                breaks.add(f"{rel}:{line}: {PACKAGE}.{own} imports {PACKAGE}.{top[1]} (may: {allowed})")
    return sorted(breaks)


def check(mapping: dict[str, str]) -> int:
    left = [f"{PACKAGE}/{old}.py" for old in mapping if (ROOT / PACKAGE / f"{old}.py").exists()]
    left += list(unit_test_moves(mapping))
    refs = old_references(mapping)
    unmapped = unmapped_modules(mapping)
    breaks = layering_breaks()
    for f in left:
        print(f"not moved: {f}")
    for r in refs:
        print(f"old reference: {r}")
    for m in unmapped:
        print(f"unmapped: {PACKAGE}/{m}.py (add --map {m}=<{'|'.join(SUBPACKAGES)}> or to MAPPING)")
    for b in breaks:
        print(f"layering: {b}")
    bad = len(left) + len(refs) + len(unmapped) + len(breaks)
    print(
        f"relayout_check not_moved={len(left)} old_references={len(refs)} unmapped={len(unmapped)} "
        f"layering={len(breaks)}"
    )
    return 1 if bad else 0


LOCAL_IMPORT_ROOTS = ("fedtwin", "flows", "tasks", "monitoring", "plant_models", "federated")


def local_imports() -> int:
    """Print the function-local imports per file: ``kept`` ones carry a reason (a ``lazy:``/``local:`` comment
    on them or up to five lines above, or a ``try`` around them), ``to hoist`` ones do not."""
    total_kept = total_todo = 0
    for root in LOCAL_IMPORT_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            lines = path.read_text().splitlines()
            kept = todo = 0
            for node, in_try in _function_imports(ast.parse("\n".join(lines))):
                seg = lines[max(node.lineno - 6, 0) : node.end_lineno]  # a comment over its block
                reason = in_try or any("lazy:" in line or "local:" in line for line in seg)
                kept, todo = kept + reason, todo + (not reason)
            if kept or todo:
                print(f"{path.relative_to(ROOT).as_posix()}: to_hoist={todo} kept={kept}")
            total_kept, total_todo = total_kept + kept, total_todo + todo
    print(f"local_imports to_hoist={total_todo} kept={total_kept}")
    return 0


def _function_imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def walk(node: ast.AST, in_func: bool, in_try: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_func:
                out.append((child, in_try))
            func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            walk(child, func, in_try or (in_func and isinstance(child, ast.Try)))

    walk(tree, False, False)
    return out


def parse_maps(items: list[str]) -> dict[str, str]:
    extra = {}
    for item in items:
        old, _, sub = item.partition("=")
        old = old.removeprefix(f"{PACKAGE}.").removesuffix(".py").removeprefix(f"{PACKAGE}/")
        if not old.isidentifier() or sub not in SUBPACKAGES:
            raise SystemExit(
                f"relayout: --map {item!r}: expected MODULE=SUBPACKAGE, SUBPACKAGE one of "
                f"{', '.join(SUBPACKAGES)}"
            )
        extra[old] = sub
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing what is left")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="MODULE=SUBPACKAGE",
        help="move another fedtwin/MODULE.py too (repeatable)",
    )
    parser.add_argument(
        "--local-imports",
        action="store_true",
        help="only list function-local imports per file (kept with a reason / to hoist)",
    )
    args = parser.parse_args(argv)
    if args.local_imports:
        return local_imports()
    mapping = {**MAPPING, **parse_maps(args.map)}
    clash = set(SUBPACKAGES) & (set(mapping) | KEEP)
    if clash:
        raise SystemExit(f"relayout: subpackage names that are also module names: {sorted(clash)}")
    if args.check:
        return check(mapping)
    report = Report()
    apply(mapping, report)
    for line in report.created:
        print(f"created: {line}")
    for line in report.moved:
        print(f"moved: {line}")
    for line in report.rewritten:
        print(f"rewrote: {line}")
    for m in report.unmapped:
        print(f"unmapped: {PACKAGE}/{m}.py (re-run with --map {m}=<{'|'.join(SUBPACKAGES)}>)")
    for p in report.problems:
        print(f"problem: {p}")
    print(
        f"relayout moved={len(report.moved)} rewritten={len(report.rewritten)} "
        f"unmapped={len(report.unmapped)} problems={len(report.problems)}"
    )
    return 1 if report.problems or report.unmapped else 0


if __name__ == "__main__":
    sys.exit(main())
