"""Runtime of generated C layers: compiling and loading the kernels, launching them, autograd.

The C source of a layer is compiled twice (``REAL=float``, ``REAL=double``) with the system
C compiler into shared libraries cached under ``fusiondsl.core.cg.cache_dir()/c`` by a hash of the
source, the flags, the compiler and the CPU, and loaded with :mod:`ctypes`. Autograd is
:mod:`fusiondsl.backends.contract`, shared with the Triton backend: the backward of a role's
kernel is made of the other roles' kernels, so every derivative order comes from the same
kernels.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import torch

from fusiondsl.backends.c.support import CCompilerNotFoundError
from fusiondsl.backends.contract import fuse
from fusiondsl.core import cachefile
from fusiondsl.core.cg import cache_dir
from fusiondsl.core.fileio import write_atomic

FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffp-contract=fast", "-fPIC", "-shared")
# gcc's complete peeling of constant-trip loops capped at 4 trips (its default is 16), after
# FLAGS where the compiler takes it (clang does not). It stops gcc from copying out every
# 5- to 16-trip loop over channels; the kernels unroll their loops over components themselves
# (`GCC unroll`). Measured (benchmarks/RESULTS.md, ninth session): so3's kernels 2-3x faster
# and built in 4 s instead of 14, product_basis, nequip and single_path 1.5-2x, fctp 7-13%,
# conv 0-5%, the 32-channel fctp unchanged.
PEEL = ("--param=max-completely-peel-times=4",)
# Extra compiler flags, after FLAGS (so ``-O0`` or ``-O2`` there wins over ``-O3``); part of
# the cache key. The test suite sets ``-O0``: same source, builds in a fraction of the time.
CFLAGS_VAR = "FUSIONDSL_CFLAGS"
REALS = {torch.float32: "float", torch.float64: "double"}
_LOADED: dict[str, dict[str, ctypes.CDLL]] = {}
stats = {"compiles": 0}  # how many libraries this process compiled (tests read it)


def flags() -> list[str]:
    """Every build's flags: FLAGS, PEEL (if the compiler takes it), ``$FUSIONDSL_CFLAGS``."""
    try:
        extra = shlex.split(os.environ.get(CFLAGS_VAR, ""))
    except ValueError as e:  # an unclosed quote
        raise ValueError(f"${CFLAGS_VAR} is not a list of shell words: {e}") from None
    cc = compiler()
    tuned = list(PEEL) if cc is not None and _probe(cc, (*FLAGS, *PEEL)) else []
    return [*FLAGS, *tuned, *extra]


def compiler() -> str | None:
    """The C compiler: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on ``PATH``."""
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc)
    return next((p for p in map(shutil.which, ("cc", "gcc", "clang")) if p), None)


def available() -> bool:
    """Whether ``backend='c'`` can compile here: a compiler is found and OpenMP works."""
    cc = compiler()
    return cc is not None and _openmp_works(cc)


PROBE = "#include <omp.h>\nint fusiondsl_probe(void) { return omp_get_max_threads(); }\n"


def _openmp_works(cc: str) -> bool:
    """Whether ``cc`` builds a shared library with OpenMP (tried once per process and flags)."""
    return _probe(cc, tuple(flags()))


@functools.cache
def _probe(cc: str, cflags: tuple[str, ...]) -> bool:
    """Build :data:`PROBE`; a success is remembered on disk, so a warm start runs no compiler.

    The record's name hashes what the answer depends on: the compiler (path, size and
    modification time, so an upgrade or a ``$CC`` pointing elsewhere probes again), the flags
    and the CPU. Failures are not recorded (an OpenMP runtime installed later is found).
    """
    try:
        st = os.stat(cc)
        key = "\n".join([cc, str(st.st_size), str(st.st_mtime_ns), *cflags, _cpu_key()])
    except OSError:
        key = None
    record = library_dir() / f"probe-{cachefile.digest(key.encode())[:24]}.ok" if key else None
    if record is not None and record.is_file():
        return True
    with tempfile.TemporaryDirectory(prefix="fusiondsl-probe-") as tmp:
        src = FilePath(tmp) / "probe.c"
        src.write_text(PROBE)
        try:
            done = subprocess.run([cc, *cflags, "-o", str(src.with_suffix(".so")), str(src)],
                                  capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            return False
    if done.returncode != 0:
        return False
    if record is not None:
        with contextlib.suppress(OSError):
            record.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(record, key + "\n")
    return True


def require_compiler() -> str:
    """The compiler's path, or a one-line :class:`CCompilerNotFoundError`."""
    cc = compiler()
    if cc is None:
        raise CCompilerNotFoundError("backend='c' needs a C compiler with OpenMP (cc, gcc or "
                                     "clang on PATH, or $CC); none was found")
    return cc


@functools.cache
def _cpu_key() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags."""
    try:
        info = FilePath("/proc/cpuinfo").read_text()
    except OSError:
        return os.uname().machine
    lines = [x for x in info.splitlines() if x.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def library_dir() -> FilePath:
    """Where compiled kernel libraries are cached."""
    return cache_dir() / "c"


@contextlib.contextmanager
def _build_lock(digest: str) -> Iterator[None]:
    """Hold ``<digest>.lock`` while checking and building one source's libraries.

    Two processes compiling the same layer for the first time then build it once: the second
    waits, finds both libraries intact and loads them. Without ``fcntl`` (not POSIX), or
    where the cache folder takes no lock file, builds go unlocked (each still atomic).
    """
    try:
        import fcntl
        folder = library_dir()
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / f"{digest}.lock", "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: as if unlocked
        yield  # closing the file releases the lock


def _compile(cc: str, source: FilePath, target: FilePath, real: str) -> subprocess.Popen:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".so")
    os.close(fd)
    cmd = [cc, *flags(), f"-DREAL={real}", "-o", tmp, str(source), "-lm"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.tmp = tmp  # type: ignore[attr-defined]
    return proc


def _build(cc: str, source: str, src: FilePath, paths: dict[str, FilePath],
           reals: list[str]) -> None:
    """Compile the ``reals`` builds of ``source`` (written to ``src``) into ``paths``, sealed."""
    if not reals:
        return
    write_atomic(src, source)
    procs = {real: _compile(cc, src, paths[real], real) for real in reals}
    for real, proc in procs.items():
        log, _ = proc.communicate()
        if proc.returncode:
            FilePath(proc.tmp).unlink(missing_ok=True)  # type: ignore[attr-defined]
            raise RuntimeError(f"compiling {src} failed:\n{log}")
        os.replace(proc.tmp, paths[real])  # type: ignore[attr-defined]
        cachefile.seal(paths[real])
        stats["compiles"] += 1


def _digest(source: str, cc: str) -> str:
    """The cache key of a source's libraries: source, flags, compiler and CPU."""
    key = "\n".join([source, " ".join(flags()), cc, _cpu_key()])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def is_built(source: str) -> bool:
    """Whether both builds of a C source are loaded or intact in the cache (no compile due)."""
    cc = compiler()
    if cc is None:
        return False
    digest = _digest(source, cc)
    if digest in _LOADED:
        return True
    with _build_lock(digest):  # another process's build in progress is waited for
        return all(cachefile.verify(library_dir() / f"{digest}_{real}.so")
                   for real in REALS.values())


def load_library(source: str) -> dict[str, ctypes.CDLL]:
    """The float and double builds of a C source (compiled once, then read from the cache).

    A cached library whose bytes do not match the hash stored beside it, or that the dynamic
    loader refuses, is rebuilt (with one :class:`~fusiondsl.core.cachefile.CacheWarning` line).
    """
    cc = require_compiler()
    digest = _digest(source, cc)
    if digest in _LOADED:
        return _LOADED[digest]
    folder = library_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {real: folder / f"{digest}_{real}.so" for real in REALS.values()}
    src = folder / f"{digest}.c"
    with _build_lock(digest):
        _build(cc, source, src, paths,
               [real for real, p in paths.items() if not cachefile.verify(p)])
        try:
            libraries = {real: ctypes.CDLL(str(p)) for real, p in paths.items()}
        except OSError as err:  # intact bytes the loader still refuses: rebuild once
            for p in paths.values():
                cachefile.reject(p, f"the loader refused it: {err}")
            _build(cc, source, src, paths, list(paths))
            libraries = {real: ctypes.CDLL(str(p)) for real, p in paths.items()}
    _LOADED[digest] = libraries
    return libraries


@dataclass(frozen=True, eq=False)
class NodeKernels:
    """The kernels of one fuse node, one per role, and the layout of each role's tensor.

    Attributes:
        libraries: the float and double builds of the layer's C source.
        name: the node's name in the diagram.
        roles: ``x0``…, ``out`` and (when weighted) ``w``, in kernel argument order.
        widths: per role, the row width (``[Z, width]``) or the weight count.
        external: whether the weights are per sample (``[Z, count]``).
        functions: per role, the C function's name.
    """

    libraries: dict[str, ctypes.CDLL]
    name: str
    roles: tuple[str, ...]
    widths: tuple[int, ...]
    external: bool
    functions: dict[str, str]
    _cache: dict = field(default_factory=dict)

    @property
    def operands(self) -> list[str]:
        """The operand roles ``x0``, ``x1``…."""
        return [r for r in self.roles if r.startswith("x")]

    @property
    def joint(self) -> bool:
        """Whether the node has ``<node>_xs``, every operand's gradient in one call."""
        return "xs" in self.functions

    def launch(self, target: str, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The kernel of ``target`` on the other roles (:func:`launch`).

        A node with ``<node>_xs`` gives an operand's gradient from it, with one ``want`` bit.
        """
        if target not in self.functions:
            (result,) = launch_joint(self, inputs, (target,))
            return result
        return launch(self, target, inputs)

    def launch_joint(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Every operand's gradient from one call (:func:`launch_joint`)."""
        return launch_joint(self, inputs)

    def function(self, role: str, real: str) -> Any:
        """The ctypes function of one role in one precision."""
        if (role, real) not in self._cache:
            fn = getattr(self.libraries[real], self.functions[role])
            fn.restype = None
            # xs: every role in, one result per operand, then the want bits
            results = ([ctypes.c_void_p] * len(self.operands) + [ctypes.c_int]
                       if role == "xs" else [])
            fn.argtypes = ([ctypes.c_void_p] * len(self.roles) + results
                           + [ctypes.c_int64, ctypes.c_int])
            self._cache[role, real] = fn
        return self._cache[role, real]


def _prepared(node: NodeKernels, inputs: Sequence[torch.Tensor | None]
              ) -> tuple[torch.dtype, torch.dtype, list[torch.Tensor | None], int]:
    """The result dtype, the kernel's dtype, the inputs in it (contiguous) and the rows."""
    present = [x for x in inputs if x is not None]
    dtype = functools.reduce(torch.promote_types, [x.dtype for x in present])
    if any(x.device.type != "cpu" for x in present):
        raise RuntimeError("the c backend runs on CPU tensors; use backend='triton' on CUDA")
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    tensors = [None if x is None else x.to(compute).contiguous() for x in inputs]
    rows = next(x.shape[0] for x, r in zip(inputs, node.roles)
                if x is not None and (r != "w" or node.external))
    return dtype, compute, tensors, rows


def launch(node: NodeKernels, target: str, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Run the kernel of one role on the other roles' tensors (``None`` at ``target``)."""
    dtype, compute, tensors, rows = _prepared(node, inputs)
    tensors = [x for x in tensors if x is not None]
    width = node.widths[node.roles.index(target)]
    summed = target == "w" and not node.external  # internal weights: per-thread partial sums
    threads = max(1, min(torch.get_num_threads(), rows))
    result = (torch.zeros((threads, width), dtype=compute) if summed
              else torch.empty((rows, width), dtype=compute))
    if rows:
        fn = node.function(target, REALS[compute])
        fn(*[x.data_ptr() for x in tensors], result.data_ptr(), rows, threads)
    return (result.sum(0) if summed else result).to(dtype)


def launch_joint(node: NodeKernels, inputs: Sequence[torch.Tensor | None],
                 wanted: Sequence[str] | None = None) -> tuple[torch.Tensor, ...]:
    """Operand gradients from one call of ``<node>_xs``: those ``wanted``.

    By default every operand's, all roles given; a wanted operand's own input may be ``None``.
    """
    wanted = node.operands if wanted is None else list(wanted)
    dtype, compute, tensors, rows = _prepared(node, inputs)
    results = {r: torch.empty((rows, node.widths[node.roles.index(r)]), dtype=compute)
               for r in wanted}
    if rows:
        threads = max(1, min(torch.get_num_threads(), rows))
        pointers = [None if x is None else x.data_ptr() for x in tensors]
        pointers += [results[r].data_ptr() if r in results else None for r in node.operands]
        want = sum(1 << int(r[1:]) for r in wanted)
        node.function("xs", REALS[compute])(*pointers, want, rows, threads)
    return tuple(results[r].to(dtype) for r in wanted)


__all__ = ["NodeKernels", "fuse", "launch", "launch_joint", "load_library"]
