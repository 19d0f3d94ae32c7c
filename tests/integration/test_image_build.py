"""The image installs the whole project, as pyproject lists it (no Docker engine needed).

The build stage of deploy/Dockerfile is replayed on disk: the build context is the checkout
less what .dockerignore excludes, its COPY instructions are applied to a scratch WORKDIR, and
the wheel its `pip wheel` would build is built from there. Every module and data file of the
packages that pyproject's `packages.find` names must be in that wheel, with the `claimledger`
command; the final stage must install that wheel. An image that left out a package (as it
once left out `claimledger/`, so `claimledger import` failed in it) fails here.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


# -- .dockerignore -----------------------------------------------------------------------


def _regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus `**`), anchored at the context root."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore(root: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception `!`, pattern) in file order; the last match decides."""
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _regex(line.removeprefix("!").strip())))
    return rules


def excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """A path is out when it, or a folder it is in, matches (Docker's rule)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negate, rule in rules:
        if any(rule.fullmatch(p) for p in prefixes):
            verdict = not negate
    return verdict


def context_files(root: Path) -> list[str]:
    rules = dockerignore(root)
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not excluded(rel, rules):
            found.append(rel)
    return sorted(found)


# -- the Dockerfile's stages -------------------------------------------------------------


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)


def stages(text: str) -> list[Stage]:
    joined = re.sub(r"\\\n", " ", text)
    out: list[Stage] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            words = args.split()
            out.append(Stage(words[2] if len(words) > 2 and words[1].upper() == "AS" else ""))
        out[-1].instructions.append((keyword.upper(), args.strip()))
    return out


def replay_build_stage(stage: Stage, context: Path, files: list[str], into: Path) -> Path:
    """Applies the stage's COPY instructions to `into` (the image's root); its WORKDIR."""
    workdir = PurePosixPath("/")
    for keyword, args in stage.instructions:
        if keyword == "WORKDIR":
            workdir = workdir / args
        elif keyword == "COPY":
            words = shlex.split(args)
            assert not any(w.startswith("--from") for w in words), "build stage copies the context"
            *sources, dest = [w for w in words if not w.startswith("--")]
            target = into / str(workdir / dest).lstrip("/")
            for source in sources:
                _copy(source, target, dest.endswith("/") or len(sources) > 1, context, files)
    return into / str(workdir).lstrip("/")


def _copy(source: str, target: Path, into_dir: bool, context: Path, files: list[str]) -> None:
    src = source.strip("/")
    assert not any(c in src for c in "*?["), "wildcards in COPY are not replayed"
    if src in ("", "."):  # the whole context, into the target
        chosen = {rel: rel for rel in files}
    elif src in files:  # one file
        chosen = {src: Path(src).name if into_dir else ""}
    else:  # a folder: its contents, into the target
        chosen = {rel: rel[len(src) + 1 :] for rel in files if rel.startswith(src + "/")}
    assert chosen, f"COPY {source}: not in the build context (.dockerignore?)"
    for rel, name in chosen.items():
        dest = target / name if name else target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(context / rel, dest)


# -- what pyproject says the project is ------------------------------------------------


def project_files(root: Path) -> set[str]:
    """Modules and package data of the packages `packages.find` includes."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]  # e.g. "services*"
    packages = set()
    for init in root.rglob("__init__.py"):
        rel = init.parent.relative_to(root)
        hidden = not rel.parts or rel.parts[0].startswith(".")  # .venv, .git
        if not hidden and any(fnmatch.fnmatch(".".join(rel.parts), p) for p in include):
            packages.add(rel.as_posix())
    wanted = {f"{p}/{m.name}" for p in packages for m in (root / p).glob("*.py")}
    for package, patterns in setuptools["package-data"].items():
        folder = root / package.replace(".", "/")
        for pattern in patterns:
            wanted |= {f.relative_to(root).as_posix() for f in folder.glob(pattern) if f.is_file()}
    return wanted


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("claimledger-*.whl")
    return zipfile.ZipFile(wheel)


# -- the tests ---------------------------------------------------------------------------


def test_the_build_stage_context_builds_a_wheel_with_every_package_and_the_command(
    tmp_path: Path,
) -> None:
    build, *_ = stages(DOCKERFILE.read_text())
    runs = [args for keyword, args in build.instructions if keyword == "RUN"]
    assert any(re.search(r"pip wheel .*\s\.$", r) for r in runs), runs  # builds its WORKDIR
    source = replay_build_stage(build, ROOT, context_files(ROOT), tmp_path / "image")
    wheel = build_wheel(source, tmp_path / "wheels")
    names = set(wheel.namelist())
    missing = sorted(project_files(ROOT) - names)
    assert missing == [], f"the image would lack {missing[:10]}"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "claimledger = services.cli:main" in wheel.read(entry_points).decode()


def test_the_final_stage_installs_that_wheel_with_postgres_support() -> None:
    build, final = stages(DOCKERFILE.read_text())[-2:]
    assert build.name
    copies = [a for k, a in final.instructions if k == "COPY"]
    assert any(a.startswith(f"--from={build.name} /wheels") for a in copies), copies
    runs = " ".join(a for k, a in final.instructions if k == "RUN")
    assert re.search(r"pip install .*/wheels/claimledger-\*\.whl\)?\[postgres\]", runs), runs
    assert _cmd(final)[:2] == ["claimledger", "serve"]


def test_the_image_user_may_write_its_working_directory() -> None:
    # `claimledger import` writes its checkpoint and rejects file in the working directory
    final = stages(DOCKERFILE.read_text())[-1]
    (user,) = [a for k, a in final.instructions if k == "USER"]
    workdirs = [a for k, a in final.instructions if k == "WORKDIR"]
    runs = " ".join(a for k, a in final.instructions if k == "RUN")
    assert workdirs and f"chown {user} {workdirs[-1]}" in runs


def _cmd(stage: Stage) -> list[str]:
    (cmd,) = [a for k, a in stage.instructions if k == "CMD"]
    words: list[str] = json.loads(cmd)
    return words


@pytest.mark.parametrize(
    ("rel", "out"),
    [
        ("tests/unit/test_x.py", True),
        ("services/__pycache__/cli.cpython-311.pyc", True),
        ("claimledger.egg-info/PKG-INFO", True),
        ("var/claimledger.db", True),
        ("claimledger/client.py", False),
        ("services/query/web/index.html", False),
        ("pyproject.toml", False),
        ("README.md", False),
    ],
)
def test_dockerignore_keeps_the_project_and_drops_the_rest(rel: str, out: bool) -> None:
    assert excluded(rel, dockerignore(ROOT)) is out
