"""The scan's compiled pass, loaded as machine code without starting Numba.

`scan_kernel.py` holds the per-person pass as Numba code and four C entry points over it
(`ENTRY_POINTS`). Started in a new process, Numba spends CPU time before the first call (its
import, then its typing and lowering registries), nearly all of it holding the GIL. So Numba
compiles the entry points once, and their machine code for this CPU is kept as one object file.
Later runs load it with llvmlite (the code generator Numba itself uses, installed with it) and
call it through ctypes, which releases the GIL as Numba's nogil code does. The object is keyed
by the kernel's source, the Numba, llvmlite and Python versions and the CPU: any change builds it
again, as Numba's own cache does after an install or an upgrade (the cold first run of
docs/benchmarks.md).

Where it is kept: NUMBA_CACHE_DIR/trdstage when that is set (as Numba's own cache), else
`__pycache__` next to this file when it is writable, else the user's cache folder
(XDG_CACHE_HOME, or ~/.cache)/trdstage. A file that does not read back as written (truncated,
another key) is built again; one that cannot be written leaves the run on the code just built.

The compiled code allocates nothing and raises nothing (no bounds checks, division as NumPy
does it): every buffer, scratch included, comes from the functions below, each checked against
`scan_layout`'s argument tables (dtype, C order) before a call. The object names a few of
Numba's runtime functions, for the error and memory-release paths of Numba's calling convention
that this code never takes; when Numba is not loaded they are bound to abort(), so that a path
believed unreachable stops the process rather than run on (Python's own C API, named on the same
paths, is bound to itself; Numba, if a later import loads it, binds its functions again).
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import os
import re
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trdstage.cohort import scan_layout as lay

ENTRIES = ("group", "needs", "months", "stage")
SOURCES = ("scan_kernel.py", "scan_layout.py")  # what the machine code is compiled from
FORMAT = b"trdstage-scan-kernel 1\n"
# Numba settings that change the machine code (part of the key)
NUMBA_CODEGEN = ("NUMBA_OPT", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_BOUNDSCHECK",
                 "NUMBA_FASTMATH")
_CALL = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)

# the sorted streams among `stage_persons`' arguments (their person-id column first), the
# person ids, and the two offset arrays
_STREAMS = ((8, 10), (10, 13), (13, 15), (15, 17))
_PEOPLE = 17
_AD_OFF = 6
_AUG_OFF = 7
# below this many persons a second thread costs more than it saves
MIN_PERSONS_PER_THREAD = 50_000


class KernelError(RuntimeError):
    """The compiled pass could not be built or loaded, or was called wrongly (a bug here)."""


@dataclass
class Kernel:
    """The entry points, callable (ctypes functions releasing the GIL), and how they came."""

    functions: dict[str, Any]
    origin: str  # "cache": loaded from the object file; "built": compiled by Numba in this run
    path: Path | None = None
    owner: Any = field(default=None, repr=False)  # what holds the machine code in memory
    stubbed: tuple[str, ...] = ()  # Numba runtime functions bound to abort() (never called)

    def call(self, name: str, args: tuple[Any, ...], table: tuple[Any, ...]) -> int:
        """Entry point `name` on `args`, each an array of the dtype `table` names for it (C
        order; the two results tables: two-dimensional) or, where it names None, an int."""
        if len(args) != len(table):
            raise KernelError(f"{name}: {len(args)} arguments, {len(table)} expected")
        addresses = np.zeros(len(args), np.int64)
        sizes = np.zeros(len(args), np.int64)
        for k, (value, dtype) in enumerate(zip(args, table, strict=True)):
            if dtype is None:
                sizes[k] = int(value)
                continue
            if not (isinstance(value, np.ndarray) and value.dtype == dtype
                    and value.flags.c_contiguous and value.ndim in (1, 2)):
                raise KernelError(f"{name}: argument {k} is not a C-ordered {np.dtype(dtype)} "
                                  "array")
            addresses[k] = value.ctypes.data
            sizes[k] = value.shape[-1]
        return int(self.functions[name](addresses.ctypes.data, sizes.ctypes.data))


_lock = threading.Lock()
_kernel: Kernel | None = None


def kernel() -> Kernel:
    """The entry points: loaded from the cache, or built (Numba) and cached; once a process."""
    global _kernel
    with _lock:
        if _kernel is None:
            _kernel = _load_or_build()
        return _kernel


def cache_dir() -> Path:
    """Where the object file is kept (see the module's docstring)."""
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "trdstage"
    here = Path(__file__).parent / "__pycache__"
    with suppress(OSError):
        here.mkdir(exist_ok=True)
    if os.access(here, os.W_OK):
        return here
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trdstage"


def cache_key() -> str:
    """What the machine code depends on, hashed: the kernel's source, the versions of Numba,
    llvmlite and Python, the target and CPU, Numba's code-generation settings."""
    from importlib.metadata import version

    import llvmlite  # type: ignore[import-untyped]
    import llvmlite.binding as llvm  # type: ignore[import-untyped]

    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    cpu_name, cpu_features = _cpu()
    for part in (version("numba"), llvmlite.__version__, sys.version, llvm.get_process_triple(),
                 cpu_name, cpu_features,
                 *(f"{k}={os.environ.get(k, '')}" for k in NUMBA_CODEGEN)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _cpu() -> tuple[str, str]:
    """The CPU Numba compiles for (its settings, else this machine's)."""
    import llvmlite.binding as llvm

    return (os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name(),
            os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten())


def _llvm() -> tuple[Any, Any]:
    """llvmlite's binding, ready for this machine, and a target machine for the CPU Numba
    compiles for (as Numba's own JIT makes it)."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    cpu_name, cpu_features = _cpu()
    return llvm, llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu_name, features=cpu_features, codemodel="jitdefault")


def _load_or_build() -> Kernel:
    key = cache_key()
    path = cache_dir() / f"scan_kernel-{key[:20]}.o"
    cached = _read(path, key)
    if cached is not None:
        try:
            return _link(*cached, origin="cache", path=path)
        except KernelError:
            pass  # (built again below)
    return _build(path, key)


def _read(path: Path, key: str) -> tuple[bytes, dict[str, str], list[str]] | None:
    """The object, its entry points' symbols and its external names, if `path` holds them for
    `key` intact; else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(FORMAT):
        return None
    header_end = data.find(b"\n", len(FORMAT))
    if header_end < 0:
        return None
    try:
        header = json.loads(data[len(FORMAT):header_end])
    except ValueError:
        return None
    obj = data[header_end + 1:]
    if not isinstance(header, dict) or header.get("key") != key \
            or header.get("sha256") != hashlib.sha256(obj).hexdigest() \
            or set(header.get("symbols", {})) != set(ENTRIES):
        return None
    return obj, dict(header["symbols"]), list(header.get("externals", []))


def _link(obj: bytes, symbols: dict[str, str], externals: list[str], origin: str,
          path: Path | None) -> Kernel:
    """The object's entry points, linked into this process by llvmlite's MCJIT."""
    llvm, machine = _llvm()
    process = ctypes.CDLL(None)  # (this process's symbols: Python's C API, the C library)
    stubbed = []
    for name in externals:
        if llvm.address_of_symbol(name):
            continue  # (Numba's, when Numba is loaded)
        found = getattr(process, name, None)
        if found is None:  # Numba's runtime, Numba not loaded: never called (see above)
            found = process.abort
            stubbed.append(name)
        llvm.add_symbol(name, ctypes.cast(found, ctypes.c_void_p).value)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
    try:
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
    except Exception as exc:  # llvmlite's own errors: the object does not fit this process
        raise KernelError(f"the compiled scan could not be loaded: {exc}") from exc
    functions = {}
    for name in ENTRIES:
        address = engine.get_function_address(symbols[name])
        if not address:
            raise KernelError(f"the compiled scan has no entry point {name!r}")
        functions[name] = _CALL(address)
    return Kernel(functions=functions, origin=origin, path=path, owner=engine,
                  stubbed=tuple(stubbed))


def _build(path: Path, key: str) -> Kernel:
    """Numba compiles the entry points (or loads them from its own cache); their optimised LLVM
    module becomes one object file, written to `path` (if it can be) and linked as a cached one
    would be."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        raise KernelError("NUMBA_DISABLE_JIT is set: the scan's compiled pass is built by Numba's "
                          "compiler (unset it, or use --engine expression)")
    from trdstage.cohort import scan_kernel

    llvm, machine = _llvm()
    module = None
    symbols = {}
    for name in ENTRIES:
        entry = scan_kernel.ENTRY_POINTS[name]
        symbols[name] = entry.native_name
        ir = entry.inspect_llvm()
        _check_self_contained(name, ir)
        part = llvm.parse_assembly(ir)
        if module is None:
            module = part
        else:
            module.link_in(part)
    assert module is not None  # noqa: S101 - ENTRIES is not empty
    module.verify()
    externals = sorted(f.name for f in module.functions
                       if f.is_declaration and not f.name.startswith("llvm."))
    obj = bytes(machine.emit_object(module))
    header = {"key": key, "sha256": hashlib.sha256(obj).hexdigest(), "symbols": symbols,
              "externals": externals}
    written: Path | None = path
    try:
        _write_atomic(path, FORMAT + json.dumps(header).encode() + b"\n" + obj)
    except OSError:
        written = None  # (a read-only place: this run uses the code all the same)
    try:
        return _link(obj, symbols, externals, origin="built", path=written)
    except KernelError:  # Numba's own functions, as it loaded them
        return Kernel(functions={name: _CALL(scan_kernel.ENTRY_POINTS[name].address)
                                 for name in ENTRIES}, origin="built", path=written)


# Numba's runtime: reference counts on arrays, inline, a no-op on the views of the caller's
# buffers the entry points make (they own no memory); everything else it offers allocates,
# raises or reshapes, which this code must not need.
_RUNTIME_ALLOWED = {"NRT_incref", "NRT_decref"}
_FUNCTION = re.compile(r"^define [^@]*@\"?([^\"(]+)", re.MULTILINE)
_CALLEE = re.compile(r"call [^@]*@\"?([A-Za-z_][\w.]*)")


def _check_self_contained(entry: str, ir: str) -> None:
    """The kernel behind an entry point allocates nothing and raises nothing: no call into
    Numba's runtime or Python but reference counts, no raise site (Numba's exception constants,
    `.const.picklebuf`). Only the entry's own wrapper (`cfunc.*`, whose error path is then never
    taken) and Numba's `NRT_decref` (which frees nothing here) may name them."""
    starts = [m.start() for m in _FUNCTION.finditer(ir)] + [len(ir)]
    for begin, end in itertools.pairwise(starts):
        body = ir[begin:end]
        match = _FUNCTION.match(body)
        name = match.group(1) if match else "?"
        if name.startswith("cfunc.") or name == "NRT_decref":
            continue
        runtime = {c for c in _CALLEE.findall(body)
                   if c.startswith(("numba_", "NRT_", "Py"))} - _RUNTIME_ALLOWED
        if runtime or "picklebuf" in body:
            what = ", ".join(sorted(runtime)) or "a raise"
            raise KernelError(f"the compiled scan's {entry!r} entry point needs Numba's runtime "
                              f"in {name} ({what}): the kernel must allocate and raise nothing")


def _write_atomic(path: Path, data: bytes) -> None:
    """`data` to `path` through a temporary file beside it; older objects of other keys in the
    folder are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # (as Python's bytecode files: readable, written by its owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in path.parent.glob("scan_kernel-*.o"):
        if old != path:
            with suppress(OSError):
                old.unlink()


# --------------------------------------------------------------------------- the calls


def _arrays(values: tuple[Any, ...], table: tuple[Any, ...]) -> list[Any]:
    """C-ordered arrays of the table's dtypes (copies only where one differs)."""
    return [np.ascontiguousarray(v, dtype) for v, dtype in zip(values, table, strict=True)]


def warm_up() -> None:
    """Load (or, the first time, build) the compiled pass."""
    kernel()


def shift_months(days: Any, months: int) -> Any:
    """`date + INTERVAL months MONTH` on day numbers since 1970 (`scan_kernel.add_months`)."""
    days = np.ascontiguousarray(days, np.int64)
    if not months:
        return days
    n = len(days)
    out = np.empty(n, np.int64)
    table = np.empty(0, np.int64)
    if n:
        lo, hi = int(days.min()), int(days.max())
        if hi - lo < n // 4:  # many persons share a day: each day computed once
            table = np.empty(hi - lo + 1, np.int64)
    kernel().call("months", (days, int(months), out, table), lay.MONTHS_ARGS)
    return out


def group_drugs(*arrays: Any) -> tuple[Any, Any]:
    """`scan_kernel.group_drug_rows` on (person ids, agent, start, drug_exposure_id, is_ad,
    skip, persons): (row numbers in order, offsets)."""
    P, G, S, ID, is_ad, skip, people = _arrays(arrays, lay.GROUP_ARGS[:7])
    n, m = len(P), len(people)
    table = np.empty(0, np.int32)
    if m and float(people[-1]) - float(people[0]) <= 4.0 * m + 1024.0:  # dense ids: a table
        table = np.empty(int(people[-1] - people[0]) + 1, np.int32)
    order = np.empty(n, np.int64)
    offsets = np.empty(2 * m + 1, np.int64)
    kept = kernel().call("group", (
        P, G, S, ID, is_ad, skip, people, np.empty(n, np.int32), table, order, offsets,
        np.empty(2 * m, np.int64), np.empty(n, np.int64)), lay.GROUP_ARGS)
    return order[:kept], offsets


def run_into(out: tuple[Any, Any, Any], at: int, *arrays: Any, threads: int = 1) -> int:
    """`stage_persons` on the arrays (STAGE_ARGS up to the persons and settings), with the
    offsets of `group_drugs` (one array of 2m + 1) in place of its two offset arguments,
    writing the n staged persons of the m in the arrays' person table to columns
    at .. at + n - 1 of `out` (`new_results`, room for m from `at`; person ids, int results
    [N_INT, m], float results [N_FLOAT, m]); returns n. The sorted
    streams may hold rows of other persons (each range reads only its persons' rows). With
    threads > 1 the persons are cut into that many ranges, each staged on its own thread (the
    compiled pass releases the GIL; persons are independent) into its own columns, then moved
    together."""
    out_p, out_i, out_f = out
    if out_i.shape[0] != lay.N_INT or out_f.shape[0] != lay.N_FLOAT:
        raise KernelError("the results tables are not laid out as scan_layout says")
    offsets = np.ascontiguousarray(arrays[_AD_OFF], np.int64)
    m = len(arrays[_PEOPLE - 1])  # (one offsets array: people one place earlier)
    arrays = (*arrays[:_AD_OFF], offsets[:m + 1], offsets[m:], *arrays[_AD_OFF + 1:])
    ready = _arrays(arrays, lay.STAGE_ARGS[:24])
    if len(ready[_AD_OFF]) != m + 1 or len(ready[_AUG_OFF]) != m + 1:
        raise KernelError("the offsets do not match the persons")
    needs = np.zeros(2, np.int64)
    compiled = kernel()
    compiled.call("needs", (ready[_AD_OFF], ready[_AUG_OFF], ready[8], needs), lay.NEEDS_ARGS)
    parts = max(1, min(threads, m // MIN_PERSONS_PER_THREAD))
    bounds = [m * k // parts for k in range(parts + 1)]
    calls = []
    for k in range(parts):
        lo, hi = bounds[k], bounds[k + 1]
        part = list(ready)
        part[_PEOPLE] = ready[_PEOPLE][lo:hi]
        part[_AD_OFF] = ready[_AD_OFF][lo:hi + 1]
        part[_AUG_OFF] = ready[_AUG_OFF][lo:hi + 1]
        for first, past in _STREAMS:  # each stream's rows of this range's persons
            ids = ready[first]
            a = b = 0
            if hi > lo:
                a = int(np.searchsorted(ids, ready[_PEOPLE][lo], "left"))
                b = int(np.searchsorted(ids, ready[_PEOPLE][hi - 1], "right"))
            for column in range(first, past):
                part[column] = ready[column][a:b]
        calls.append((*part, out_p, out_i, out_f, at + lo))

    def stage(call: tuple[Any, ...]) -> int:
        scratch = (np.empty(int(needs[0]), np.int64), np.empty(int(needs[1]), np.bool_))
        staged = compiled.call("stage", (*call, *scratch), lay.STAGE_ARGS)
        if staged < 0:
            raise KernelError("the compiled pass was given too little scratch")
        return staged

    if parts == 1:
        counts = [stage(calls[0])]
    else:
        with ThreadPoolExecutor(max_workers=parts) as pool:
            counts = list(pool.map(stage, calls))
    n = counts[0]
    for k in range(1, parts):  # each range's staged persons, moved up behind the previous
        lay.move_results(out, at + bounds[k], at + n, counts[k])
        n += counts[k]
    return int(n)


__all__ = ["ENTRIES", "Kernel", "KernelError", "cache_dir", "cache_key", "group_drugs",
           "kernel", "run_into", "shift_months", "warm_up"]
