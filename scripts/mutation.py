"""Mutation testing of the modules where a silent bug costs money (cosmic-ray).

``make mutation`` runs every target of ``mutation/targets.toml``; ``make mutation TARGETS=a,b``
runs some; ``make mutation-changed`` (called by ``make test``) runs only the targets whose module
or tests changed since their score was recorded in ``mutation/scores.json``.

Each target is mutated in its own copy of the working tree under ``var/mutation/<target>/``
(cosmic-ray writes mutants into the files it tests, so the developer's tree is never touched),
with ``NUMBA_DISABLE_JIT=1`` so a mutated kernel runs as Python instead of being recompiled per
mutant, and ``PYTHONDONTWRITEBYTECODE=1`` so no stale ``.pyc`` of an earlier mutant can be run.

A mutant is *equivalent* when no test could tell it apart from the original; such lines carry
``# pragma: no mutate`` (every operator on the line) or ``# pragma: no mutate: Name1, Name2``
(operators whose name contains one of the words), and each is explained in
``mutation/equivalent.md``. The score is killed / (mutants - equivalent); a target passes at
``--min`` percent (90 by default).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mutation" / "targets.toml"
SCORES = ROOT / "mutation" / "scores.json"
WORK = ROOT / "var" / "mutation"
COPY_SKIP = {".git", ".venv", "var", "node_modules", "__pycache__", "test-output", ".hypothesis"}
PRAGMA = re.compile(r"#\s*pragma:\s*no mutate(?::\s*(?P<ops>[\w, ]+))?")


@dataclass
class Target:
    name: str
    module: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    exclude_operators: list[str] = field(default_factory=list)
    timeout: float = 120.0
    env: dict[str, str] = field(default_factory=dict)
    pytest_args: str = ""

    def fingerprint(self) -> str:
        """Changes when the module, its tests or this target's settings change."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.__dict__, sort_keys=True).encode())
        files = [self.module, *(t.split("::", 1)[0] for t in self.tests)]
        for rel in sorted(set(files)):
            path = ROOT / rel
            paths = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for p in paths:
                digest.update(str(p.relative_to(ROOT)).encode())
                digest.update(p.read_bytes())
        return digest.hexdigest()


@dataclass
class Outcome:
    target: Target
    mutants: int = 0
    equivalent: int = 0
    filtered: int = 0
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    # of the files as they were copied for mutation: an edit made while the target runs
    # leaves the recorded score stale, so ``--changed`` runs it again
    fingerprint: str = ""

    @property
    def counted(self) -> int:
        return self.killed + len(self.survived)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def load_targets(path: Path = CONFIG) -> tuple[dict[str, Target], dict]:
    config = tomllib.loads(path.read_text())
    defaults = config.get("defaults", {})
    targets = {}
    for name, spec in config["targets"].items():
        merged = {
            "exclude_operators": [*defaults.get("exclude_operators", [])],
            "timeout": defaults.get("timeout", 120.0),
            "env": dict(defaults.get("env", {})),
        }
        merged["exclude_operators"] += spec.pop("exclude_operators", [])
        merged["env"].update(spec.pop("env", {}))
        merged.update(spec)
        targets[name] = Target(name=name, **merged)
        missing = [p for p in [targets[name].module, *targets[name].tests] if not _exists(p)]
        if missing:
            raise SystemExit(f"mutation target {name!r}: no such file {missing[0]!r}")
    return targets, defaults


def _exists(rel: str) -> bool:
    return (ROOT / rel.split("::", 1)[0]).exists()


def copy_tree(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)

    def ignore(folder, names):
        return [
            n
            for n in names
            if n in COPY_SKIP or n.endswith((".nbi", ".nbc", ".pyc")) or n.endswith(".egg-info")
        ]

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def function_lines(source: str, names: list[str]) -> list[tuple[int, int]]:
    """Line spans (1-based, inclusive) of the named top-level functions or ``Class.method``s."""
    tree = ast.parse(source)
    spans, found = [], set()
    for node in tree.body:
        candidates = [(node.name, node)] if hasattr(node, "name") else []
        if isinstance(node, ast.ClassDef):
            candidates += [
                (f"{node.name}.{item.name}", item)
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
        for qualname, item in candidates:
            if qualname in names:
                first = min([item.lineno, *(d.lineno for d in getattr(item, "decorator_list", []))])
                spans.append((first, item.end_lineno))
                found.add(qualname)
    unknown = sorted(set(names) - found)
    if unknown:
        raise SystemExit(f"mutation: no function {unknown[0]!r} in the module")
    return spans


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every annotation, if the module never evaluates them.

    Under ``from __future__ import annotations`` an annotation is a string nobody runs, so a
    mutant inside one (``-> int | None`` becoming ``-> int * None``) cannot change anything.
    """
    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    spans = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations = [a.annotation for a in every if a is not None and a.annotation]
            annotations += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotations]
    return spans


def pragma_operators(line: str) -> list[str] | None:
    """None: no pragma; []: every operator; else the operator-name words it names."""
    match = PRAGMA.search(line)
    if not match:
        return None
    ops = match.group("ops")
    return [w.strip() for w in ops.split(",") if w.strip()] if ops else []


def run_target(target: Target, python: str, verbose: bool) -> Outcome:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    outcome = Outcome(target)
    started = time.monotonic()
    workdir = WORK / target.name
    src = workdir / "src"
    workdir.mkdir(parents=True, exist_ok=True)
    outcome.fingerprint = target.fingerprint()
    copy_tree(src)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "NUMBA_DISABLE_JIT": "1", **target.env})
    env.pop("CI", None)  # the mutants' test runs are unit tests; CI's integration rules don't apply
    test_command = (
        f"{python} -m pytest -x -q -p no:cacheprovider --no-header -o addopts='-p tests.env' "
        + f"{target.pytest_args} "
        + " ".join(target.tests)
    )
    baseline = subprocess.run(
        test_command, shell=True, cwd=src, env=env, capture_output=True, text=True
    )
    if baseline.returncode != 0:
        outcome.error = "the tests fail without any mutation:\n" + baseline.stdout[-3000:]
        return outcome
    baseline_seconds = time.monotonic() - started
    timeout = max(target.timeout, 5 * baseline_seconds + 10)

    cr_config = workdir / "cosmic-ray.toml"
    cr_config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(target.module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    session = workdir / "session.sqlite"
    session.unlink(missing_ok=True)
    subprocess.run(
        [Path(python).with_name("cosmic-ray"), "init", cr_config, session],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
    )

    source = (src / target.module).read_text()
    lines = source.splitlines()
    spans = function_lines(source, target.functions) if target.functions else None
    excluded = [re.compile(p) for p in target.exclude_operators]
    annotations = annotation_spans(source)

    def skip(db, job_id, why):
        db.set_result(job_id, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED))

    with use_db(session, WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            outcome.mutants += 1
            mutation = item.mutations[0]
            line_no = mutation.start_pos[0]
            op = mutation.operator_name.split("/", 1)[-1]
            if spans is not None and not any(a <= line_no <= b for a, b in spans):
                outcome.mutants -= 1
                skip(db, item.job_id, "outside the target's functions")
                continue
            position = tuple(mutation.start_pos)
            if any(a <= position < b for a, b in annotations):
                outcome.mutants -= 1
                outcome.filtered += 1
                skip(db, item.job_id, "in an annotation, which is never evaluated")
                continue
            if any(p.search(op) for p in excluded):
                outcome.mutants -= 1
                outcome.filtered += 1
                skip(db, item.job_id, "operator excluded")
                continue
            start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
            if any(a <= start and end <= b for a, b in annotations):
                outcome.mutants -= 1
                outcome.filtered += 1
                skip(db, item.job_id, "inside an annotation, which never runs")
                continue
            end_line = mutation.end_pos[0] - (1 if mutation.end_pos[1] == 0 else 0)
            words = [pragma_operators(lines[n - 1]) for n in range(line_no, end_line + 1)]
            words = [w for w in words if w is not None]
            if words and any(w == [] or any(x in op for x in w) for w in words):
                outcome.equivalent += 1
                skip(db, item.job_id, "equivalent (pragma: no mutate)")

    pending = outcome.mutants - outcome.equivalent
    if verbose:
        print(f"[{target.name}] {pending} mutants to test (timeout {timeout:.0f}s)", flush=True)
    subprocess.run(
        [Path(python).with_name("cosmic-ray"), "exec", cr_config, session],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
    )
    with use_db(session, WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            if result.test_outcome == TestOutcome.SURVIVED:
                m = item.mutations[0]
                outcome.survived.append(
                    f"{m.module_path}:{m.start_pos[0]} {m.operator_name} #{m.occurrence}\n"
                    + (result.diff or "")
                )
            else:
                outcome.killed += 1
    (workdir / "survivors.txt").write_text("\n".join(outcome.survived))
    outcome.seconds = time.monotonic() - started
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="", help="comma-separated target names")
    parser.add_argument("--changed", action="store_true", help="only targets changed since scored")
    parser.add_argument("--jobs", type=int, default=2, help="targets mutated at once")
    parser.add_argument("--min", type=float, default=90.0, help="passing score in percent")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--show", type=int, default=5, help="surviving mutants to print per target")
    parser.add_argument("--config", type=Path, default=CONFIG, help="targets file")
    parser.add_argument("--scores", type=Path, default=SCORES, help="recorded scores file")
    args = parser.parse_args(argv)

    targets, _ = load_targets(args.config)
    if args.list:
        for t in targets.values():
            scope = ", ".join(t.functions) if t.functions else "whole module"
            print(f"{t.name:20} {t.module}  ({scope})")
        return 0
    scores = json.loads(args.scores.read_text()) if args.scores.exists() else {}
    chosen = [n.strip() for n in args.targets.split(",") if n.strip()] or list(targets)
    unknown = [n for n in chosen if n not in targets]
    if unknown:
        print(f"unknown mutation target {unknown[0]!r}; choose from {', '.join(targets)}")
        return 2
    selected = [targets[n] for n in chosen]
    if args.changed:
        selected = [
            t
            for t in selected
            if scores.get(t.name, {}).get("fingerprint") != t.fingerprint()
            or scores.get(t.name, {}).get("score", 0) < args.min
        ]
        if not selected:
            print("mutation: every target is as when it was last scored; nothing to run")
            return 0
    print("mutation: " + ", ".join(t.name for t in selected), flush=True)

    python = sys.executable
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda t: run_target(t, python, True), selected))

    failed = False
    print(
        f"\n{'target':20} {'module':45} {'mutants':>7} {'equiv':>5} {'killed':>6} "
        f"{'surv':>5} {'score':>7} {'time':>6}"
    )
    for o in outcomes:
        t = o.target
        if o.error:
            failed = True
            print(f"{t.name:20} {t.module:45} ERROR: {o.error}")
            continue
        ok = o.score >= args.min
        failed |= not ok
        print(
            f"{t.name:20} {t.module:45} {o.mutants:7d} {o.equivalent:5d} {o.killed:6d} "
            f"{len(o.survived):5d} {o.score:6.1f}% {o.seconds:5.0f}s"
            + ("" if ok else f"  below {args.min:g} %")
        )
        scores[t.name] = {
            "module": t.module,
            "fingerprint": o.fingerprint,
            "mutants": o.mutants,
            "equivalent": o.equivalent,
            "killed": o.killed,
            "survived": len(o.survived),
            "score": round(o.score, 1),
        }
    for o in outcomes:
        if o.survived and args.show:
            print(
                f"\n--- {o.target.name}: {len(o.survived)} surviving mutants "
                f"(all in var/mutation/{o.target.name}/survivors.txt); first {args.show}:"
            )
            for s in o.survived[: args.show]:
                print(s)
    args.scores.write_text(json.dumps(dict(sorted(scores.items())), indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
