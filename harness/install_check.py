"""Check an installed environment in one pass and fail with one line that names the package.

Why: a broken pair such as torchaudio 2.11.1 over torch 2.11.0 otherwise surfaces as ten
test-collection errors. `make install` runs this last (what it checks: README, "The install
check"); packages the lock leaves out, such as a preinstalled torch, are held to the ranges
ascbench declares. Only the standard library is imported at module level, so a package that is
missing or does not load is itself the reported failure.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# The torchaudio seen to work with each torch minor on Linux x86_64 (README, "Installing"; 2.13
# and 2.14 work with both); used only to suggest a fix once a pair has failed, never to decide it.
WORKING_TORCHAUDIO = {"2.11": "2.11.0", "2.12": "2.11.0", "2.13": "2.11.1", "2.14": "2.11.1", "2.15": "2.11.1"}


class InstallCheckError(Exception):
    """One line for the user: which package, which versions, what went wrong."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _requirement_class() -> type:
    """packaging's Requirement; pip's vendored copy when packaging itself is not installed yet."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            raise InstallCheckError("packaging is not installed (and pip is not there to lend its copy)") from None
    return Requirement


def _requirement_lines(lock: Path) -> Iterator[str]:
    """Requirement lines of a pip requirements file, continuation lines joined and hashes dropped."""
    joined = ""
    for raw in lock.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        joined += line
        requirement = re.sub(r"\s--hash=\S+", "", joined).strip()
        joined = ""
        if requirement and not requirement.startswith("-"):
            yield requirement


def locked_pins(lock: Path) -> dict[str, str]:
    """Name -> exact version for every requirement of `lock` whose marker holds here."""
    Requirement = _requirement_class()
    pins: dict[str, str] = {}
    for line in _requirement_lines(lock):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        (spec,) = requirement.specifier
        if spec.operator != "==":
            raise InstallCheckError(f"{lock}: {line!r} is not an exact pin (expected name==version)")
        pins[_normalise(requirement.name)] = spec.version
    return pins


def require(name: str, accepts: Callable[[str], bool], wanted: str) -> None:
    """`name` is installed at a version `accepts`; else one line saying what `wanted` it."""
    found = installed_version(name)
    if found is None:
        raise InstallCheckError(f"{name} is not installed ({wanted})")
    if not accepts(found):
        raise InstallCheckError(f"{name} {found} is installed but {wanted}")


def check_pins(pins: dict[str, str], lock: Path) -> None:
    for name, version in sorted(pins.items()):
        require(name, version.__eq__, f"the lock {lock} pins {name}=={version}")


def check_declared_ranges(skip: set[str]) -> None:
    """ascbench's own requirements (pyproject's ranges) hold for every package not in `skip`."""
    try:
        declared = metadata.requires("ascbench") or []
    except metadata.PackageNotFoundError:
        raise InstallCheckError("ascbench is not installed in this environment "
                                "(make install, or pip install -e .)") from None
    Requirement = _requirement_class()
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = _normalise(requirement.name)
        if name not in skip:
            require(name, lambda v, r=requirement: r.specifier.contains(v, prereleases=True),
                    f"ascbench requires {requirement}")


def _torch_pair() -> str:
    return f"torch {installed_version('torch')} with torchaudio {installed_version('torchaudio')}"


def _torchaudio_hint() -> str:
    torch_version = installed_version("torch") or ""
    minor = ".".join(torch_version.split("+")[0].split(".")[:2])
    good = WORKING_TORCHAUDIO.get(minor)
    return f"; torch {minor} works with torchaudio=={good}" if good else ""


def _step(package: str, action: Callable[[], object], describe: str, hint: str = "") -> None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - any failure here is reported as one line
        raise InstallCheckError(f"{package}: {describe}: {_root_cause(exc)}{hint}") from exc


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's first line: torch wraps the loader's 'undefined symbol' error."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    return f"{type(exc).__name__}: {message}"


def _load_torchaudio() -> None:
    import torch
    import torchaudio
    import torchaudio.functional as AF

    extension = importlib.import_module("torchaudio._extension")
    if not getattr(extension, "_IS_TORCHAUDIO_EXT_AVAILABLE", True):
        raise RuntimeError("its compiled extension (libtorchaudio) did not load")
    # The two front-end operations the harness uses (harness/data/features.py, audio.py).
    wave = torch.randn(1, 16000)
    torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=160, n_mels=64)(wave)
    AF.resample(wave, 16000, 44100)


def _forward_backward_tiny() -> None:
    import torch

    from ascmamba import MetaContext, create_model, get_spec

    torch.manual_seed(0)
    model = create_model("ascmamba_tiny")
    mel = torch.randn(2, 1, 64, get_spec("ascmamba_tiny").front_end.n_mels)
    logits = model(mel, MetaContext.unknown(2))
    logits.logsumexp(dim=1).sum().backward()
    if not all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad):
        raise RuntimeError("missing or non-finite gradients after one backward pass")


def smoke_test() -> None:
    _step("torch", lambda: importlib.import_module("torch"), f"torch {installed_version('torch')} does not import")
    _step("torchaudio", _load_torchaudio, f"{_torch_pair()} does not load", _torchaudio_hint())
    _step("ray", lambda: importlib.import_module("ray.tune"),
          f"ray {installed_version('ray')}: ray.tune does not import")
    _step("optuna", lambda: importlib.import_module("optuna"), f"optuna {installed_version('optuna')} does not import")
    _step("ascbench", _forward_backward_tiny, f"ascmamba_tiny forward+backward failed on {_torch_pair()}")


def run(lock: Path | None) -> str:
    """Every check in order; returns the summary line or raises InstallCheckError."""
    started = time.perf_counter()
    pinned: set[str] = set()
    if lock is not None:
        pins = locked_pins(lock)
        check_pins(pins, lock)
        pinned = set(pins)
    check_declared_ranges(skip=pinned)
    smoke_test()
    versions = ", ".join(f"{n} {installed_version(n)}" for n in ("torch", "torchaudio", "ray", "optuna"))
    source = f"{len(pinned)} packages as locked in {lock}" if lock else "ascbench's declared ranges"
    return (f"install check passed in {time.perf_counter() - started:.1f} s: {versions}; "
            f"{source}; torchaudio extension loaded; ascmamba_tiny forward+backward ran")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.install_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, help="a requirements file of exact pins (requirements/lock.txt)")
    args = parser.parse_args(argv)
    try:
        print(run(args.lock))
    except InstallCheckError as exc:
        print(f"install check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
