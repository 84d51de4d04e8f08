"""Run mutmut over the pure cores (or a subset) and print the mutation score, per module and overall.

Usage (from the repository root)::

    python tools/mutation_report.py --run                     # every module in [tool.mutmut] only_mutate
    python tools/mutation_report.py --run federated/strategy  # a subset: folders or files
    python tools/mutation_report.py federated                 # report only, from the last `mutmut run`

Why mutmut: it is maintained, runs pytest in-process, and its trampolines switch mutants at run time and run
only the tests that cover the mutated function, so a full run fits a 2-core machine. Its working copy lives in
``mutants/`` (ignored by git); every ``--run`` tests all selected mutants again, so the figure reflects the
current tests.

Score = killed / (mutants - equivalent). "Killed" counts mutants the unit tests fail on (including timeouts,
which a test run notices); everything else not listed as equivalent counts as survived, including mutants no
test covers ("no tests"). Equivalent mutants (the code behaves the same) are listed with a reason in
``tools/equivalent_mutants.toml`` and excluded from the score. The last line is::

    mutation_score=<f> mutants=<n> survived=<n> equivalent=<n> minutes=<f>
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tools" / "equivalent_mutants.toml"

# mutmut's exit-code convention (mutmut.stats.status_by_exit_code, 3.8).
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    2: "interrupted",
    None: "not checked",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}
# A timeout or crash under a mutant is a failing test run: the suite noticed the fault.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


@dataclass
class ModuleTally:
    """Counts for one source file."""

    path: str
    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant, status)
    equivalent: int = 0

    @property
    def killed(self) -> int:
        return sum(n for s, n in self.statuses.items() if s in KILLED)

    @property
    def counted(self) -> int:
        return sum(self.statuses.values())

    @property
    def score(self) -> float:
        return self.killed / self.counted if self.counted else 1.0


def mutmut_config() -> dict:
    """The ``[tool.mutmut]`` table of pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mutmut"]


def mutated_files(cfg: dict) -> list[str]:
    """Every source file mutmut mutates, relative to the repository root."""
    out = []
    for src in cfg["source_paths"]:
        for path in sorted((ROOT / src).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(fnmatch.fnmatch(rel, p) for p in cfg.get("only_mutate", ["*"])):
                out.append(rel)
    return out


def select(files: list[str], modules: list[str]) -> list[str]:
    """Files under any of ``modules`` (a folder, a file, or a dotted module name)."""
    if not modules:
        return files
    picked = []
    for m in modules:
        m = m.rstrip("/")
        if not m.endswith(".py") and "/" not in m and "." in m:
            m = m.replace(".", "/")  # dotted module name
        base = m[:-3] if m.endswith(".py") else m
        hits = [f for f in files if f == base + ".py" or f.startswith(base + "/")]
        if not hits:
            raise SystemExit(f"MODULES: {m!r} matches no mutated file (see [tool.mutmut] only_mutate)")
        picked += [h for h in hits if h not in picked]
    return picked


def mutant_glob(path: str) -> str:
    """mutmut mutant-name pattern for every mutant of one file (``a/b/c.py`` -> ``a.b.c.*``)."""
    mod = path[:-3].replace("/", ".")
    if mod.endswith(".__init__"):
        mod = mod[: -len(".__init__")]
        return mod + ".x*"  # mutmut drops "__init__." from the names; keep submodules out
    return mod + ".*"


def load_equivalent() -> dict[str, str]:
    """Mutant name -> reason it is equivalent (behaves like the original)."""
    if not EQUIVALENT_FILE.exists():
        return {}
    with open(EQUIVALENT_FILE, "rb") as f:
        data = tomllib.load(f)
    table = data.get("equivalent", {})
    for name, reason in table.items():
        if not isinstance(reason, str) or not reason.strip():
            raise SystemExit(f"{EQUIVALENT_FILE.name}: {name!r} needs a non-empty reason")
    return dict(table)


def tally(files: list[str], equivalent: dict[str, str]) -> tuple[list[ModuleTally], list[str]]:
    """Read mutmut's per-file results from ``mutants/<file>.meta``; also return stale equivalence entries."""
    tallies, seen, stale = [], set(), []
    for path in files:
        meta = ROOT / "mutants" / (path + ".meta")
        t = ModuleTally(path)
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            for name, code in sorted(codes.items()):
                status = STATUS_BY_EXIT_CODE.get(code, "suspicious")
                if name in equivalent:
                    seen.add(name)
                    t.equivalent += 1
                    if status in KILLED:
                        stale.append(f"{name} is listed as equivalent but a test kills it")
                    continue
                t.statuses[status] += 1
                if status not in KILLED:
                    t.survivors.append((name, status))
        tallies.append(t)
    prefixes = tuple(p[:-3].replace("/", ".").removesuffix(".__init__") + "." for p in files)
    for name in equivalent:
        if name.startswith(prefixes) and name not in seen:
            stale.append(f"{name} is listed as equivalent but no such mutant exists (renumbered?)")
    return tallies, stale


def forget_stale_test_map() -> None:
    """Drop mutmut's test -> function map when any unit test changed since it was made.

    mutmut maps tests to the functions they call once and afterwards only adds some new tests, so an edited
    or added test could be missing from a function's list (a false survivor). The map is keyed here by a hash
    of every unit-test file; mutmut rewrites its stats file on each run, so its mtime cannot tell.
    """
    stats = ROOT / "mutants" / "mutmut-stats.json"
    stamp = ROOT / "mutants" / "unit-tests.sha256"
    h = hashlib.sha256()
    for p in sorted((ROOT / "tests" / "unit").rglob("*.py")):
        h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    digest = h.hexdigest()
    if stats.exists() and (not stamp.exists() or stamp.read_text() != digest):
        print("unit tests changed since the last run: mutmut re-maps tests to functions", flush=True)
        stats.unlink()
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(digest)


def run_mutmut(files: list[str], max_children: int | None) -> int:
    """``mutmut run`` over every mutant of ``files``.

    Naming the mutants makes mutmut test them all again (with no names it keeps cached verdicts of functions
    that did not change, even when new tests would now kill a survivor).
    """
    cmd = [sys.executable, "-m", "mutmut", "run"]
    if max_children:
        cmd += ["--max-children", str(max_children)]
    return _stream(cmd + [mutant_glob(f) for f in files])


def _stream(cmd: list[str]) -> int:
    """Run mutmut from the repository root, passing its output on without spinner frames."""
    env = dict(os.environ)
    # The tests must import the mutated copy in mutants/, never this checkout or an editable install.
    env.pop("PYTHONPATH", None)
    shown = cmd if len(cmd) < 40 else [*cmd[:8], f"... ({len(cmd) - 8} more names)"]
    print("+", " ".join(shown), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        # Drop spinner frames (braille characters, one per \r) and mutmut's emoji line per named mutant: the
        # report below lists the mutants that matter.
        text = line.strip()
        if (text and "\u2800" <= text[0] <= "\u28ff") or "__mutmut_" in text:
            continue
        sys.stdout.write(line)
        sys.stdout.flush()
    return proc.wait()


def generate_mutants() -> None:
    """Let mutmut (re)generate mutants so verdicts of changed functions are reset before they are read.

    Uses mutmut's own generation step (``mutmut.__main__``, 3.8), the first thing ``mutmut run`` does.
    """
    code = (
        "import os\n"
        "from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths\n"
        "os.makedirs('mutants', exist_ok=True)\n"
        "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(os.cpu_count() or 1)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def run_cached(files: list[str], max_children: int | None) -> int:
    """Re-test every mutant of ``files`` not already killed (survived, untested, never run, reset)."""
    generate_mutants()
    names = []
    for path in files:
        meta = ROOT / "mutants" / (path + ".meta")
        if not meta.exists():
            return run_mutmut(files, max_children)
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += [n for n, c in codes.items() if STATUS_BY_EXIT_CODE.get(c, "suspicious") not in KILLED]
    print(f"cached: re-testing {len(names)} mutants that were not killed", flush=True)
    if not names:
        return 0
    cmd = [sys.executable, "-m", "mutmut", "run"]
    if max_children:
        cmd += ["--max-children", str(max_children)]
    return _stream(cmd + names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="folders/files to report (default: every mutated file)")
    ap.add_argument("--run", action="store_true", help="run mutmut first (otherwise report the last run)")
    ap.add_argument(
        "--cached",
        action="store_true",
        help="with --run: keep killed verdicts from earlier runs (mutmut still resets functions whose code "
        "changed) and re-test only the other mutants; faster, assumes the tests only got stronger",
    )
    ap.add_argument("--max-children", type=int, default=None, help="parallel mutant workers (default: CPUs)")
    ap.add_argument("--show-survivors", type=int, default=200, help="list at most this many survivors")
    args = ap.parse_args(argv)
    cfg = mutmut_config()
    everything = mutated_files(cfg)
    files = select(everything, args.modules)
    equivalent = load_equivalent()
    t0 = time.perf_counter()
    if args.run:
        forget_stale_test_map()
        code = run_cached(files, args.max_children) if args.cached else run_mutmut(files, args.max_children)
        if code != 0:
            print(f"mutmut run exited with {code}", file=sys.stderr)
            return code
    minutes = (time.perf_counter() - t0) / 60.0
    tallies, stale = tally(files, equivalent)

    print()
    for t in tallies:
        detail = ", ".join(f"{s}={n}" for s, n in sorted(t.statuses.items()) if s not in KILLED)
        print(
            f"{t.path}: mutation_score={t.score:.3f} killed={t.killed} mutants={t.counted + t.equivalent} "
            f"equivalent={t.equivalent}" + (f" ({detail})" if detail else "")
        )
    survivors = [(t.path, name, status) for t in tallies for name, status in t.survivors]
    if survivors:
        print(f"\nsurvivors ({len(survivors)}; inspect one with `mutmut show <name>`):")
        for _path, name, status in survivors[: args.show_survivors]:
            print(f"  {name}  [{status}]")
        if len(survivors) > args.show_survivors:
            print(f"  ... {len(survivors) - args.show_survivors} more")
    for msg in stale:
        print(f"warning: {msg}")
    killed = sum(t.killed for t in tallies)
    counted = sum(t.counted for t in tallies)
    n_equiv = sum(t.equivalent for t in tallies)
    if counted + n_equiv == 0:
        print("no mutation results: run with --run (or `mutmut run`) first", file=sys.stderr)
        return 1
    score = killed / counted if counted else 1.0
    print(
        f"mutation_score={score:.3f} mutants={counted + n_equiv} survived={counted - killed} "
        f"equivalent={n_equiv} minutes={minutes:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
