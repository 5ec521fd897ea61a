"""Optional native builds; everything else is declared in pyproject.toml.

- `smolmix_cli.netstack.wire._checksum`: the Internet checksum's ones'-complement
  sum in C (checksum.py keeps a pure-Python form).
- The netstack's sans-io core (`NATIVE_CORE`) compiled by mypyc from the same
  Python sources: the engine is CPU-bound at sub-millisecond round trips and
  compiled it needs a third to a half less CPU (bench/README.md). The sources stay
  the reference: every module still runs as plain Python.

Both are optional: without a C compiler the install succeeds and the package
is plain Python. Without mypyc, or with SMOLMIX_PURE_PYTHON=1, the core alone
stays plain Python (and an earlier in-place build of it is removed).
If any part of the mypyc build fails, all of it is removed again: its modules
share one runtime library and are only usable together.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _native_core_names() -> tuple[str, ...]:
    # by path: importing the package would need its dependencies at build time
    path = Path(__file__).resolve().parent / "smolmix_cli" / "netstack" / "native.py"
    spec = importlib.util.spec_from_file_location("_smolmix_native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.NATIVE_CORE)


NATIVE_CORE = _native_core_names()

GROUP = "smolmix_cli.netstack._core"  # mypyc's shared library: smolmix_cli/netstack/_core__mypyc.*
# every module the group builds, by dotted name within smolmix_cli.netstack
GROUP_MODULES = (*NATIVE_CORE, GROUP.rsplit(".", 1)[1] + "__mypyc")


def _have_compiler() -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


def _native_core() -> list[Extension]:
    if os.environ.get("SMOLMIX_PURE_PYTHON") or not _have_compiler():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    paths = [f"smolmix_cli/netstack/{name.replace('.', '/')}.py" for name in NATIVE_CORE]
    exts: list[Extension] = mypycify(paths, opt_level="3", group_name=GROUP)
    for ext in exts:
        ext.optional = True
    return exts


class BuildExt(build_ext):
    """Drops the whole mypyc group when any of its extensions failed to build."""

    def run(self) -> None:
        self._failed: set[str] = set()
        super().run()
        names = {f"smolmix_cli.netstack.{n}" for n in GROUP_MODULES}
        group = [e for e in self.extensions if e.name in names]
        if group and any(e.name in self._failed for e in group):
            for ext in group:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            print(
                "smolmix: the mypyc build failed; the netstack stays pure Python", file=sys.stderr
            )
        here = Path(__file__).resolve().parent / "smolmix_cli" / "netstack"
        if not group:
            # A plain-Python build: an earlier editable build's modules would still win.
            for name in GROUP_MODULES:
                base = here.joinpath(*name.split("."))
                for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                    base.with_name(base.name + suffix).unlink(missing_ok=True)
        _remove_orphans(here, {e.name for e in self.extensions})

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception:
            self._failed.add(ext.name)
            raise


def _remove_orphans(here: Path, extensions: set[str]) -> None:
    """Remove in-place builds of modules that have no source any more (moved or deleted).

    An editable install keeps builds beside the sources, where such a build would
    still import under its old name.
    """
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    root = here.parent.parent
    for path in here.rglob("*"):
        suffix = next((s for s in suffixes if path.name.endswith(s)), None)
        if suffix is None:
            continue
        stem = path.name[: -len(suffix)]
        module = ".".join((*path.parent.relative_to(root).parts, stem))
        if module not in extensions and not path.with_name(stem + ".py").exists():
            path.unlink()


setup(
    ext_modules=[
        Extension(
            "smolmix_cli.netstack.wire._checksum",
            ["smolmix_cli/netstack/wire/_checksum.c"],
            optional=True,
        ),
        *_native_core(),
    ],
    cmdclass={"build_ext": BuildExt},
)
