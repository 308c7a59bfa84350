"""Find Play files by path or by name (`--play ema_cross`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..features.catalog import did_you_mean

SUFFIXES = (".yml", ".yaml")


def search_dirs() -> list[Path]:
    """Where names are looked up: ./plays/* under the working directory, then the source checkout."""
    roots = [Path.cwd(), Path(__file__).resolve().parents[3]]
    dirs: list[Path] = []
    for root in roots:
        for sub in ("plays/examples", "plays/validation", "plays"):
            d = root / sub
            if d.is_dir() and d not in dirs:
                dirs.append(d)
    return dirs


def find_play(name_or_path: str) -> Path:
    """A Play path as given, or the file named `<name>.yml` in the Play directories."""
    p = Path(name_or_path)
    if p.suffix in SUFFIXES or "/" in name_or_path:
        if p.is_file():
            return p
        raise InputError(f"Play file not found: {name_or_path}")
    known: list[str] = []
    for d in search_dirs():
        for suffix in SUFFIXES:
            candidate = d / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
        known += [f.stem for f in d.glob("*.y*ml")]
    hint = did_you_mean(name_or_path, known)
    raise InputError(
        f"unknown Play {name_or_path!r}{hint}; give a path or one of: {', '.join(sorted(set(known))) or 'none found'}"
    )


def play_files(paths: list[Path]) -> list[Path]:
    """Expand directories into their Play files (sorted); files are kept as given and a Play name
    (`ema_cross`) is looked up as `--play` does, so every command resolves names alike."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            out.append(find_play(str(p)))
    return out


def play_dir(name: str) -> Path:
    """The Play directory called `name` (examples, validation) among `search_dirs()`, so commands
    that default to one work from any working directory."""
    for d in search_dirs():
        if d.name == name:
            return d
    raise InputError(f"no plays/{name} directory under {Path.cwd()} or the TRADE checkout")
