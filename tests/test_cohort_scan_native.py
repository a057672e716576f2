"""The scan's compiled pass as cached machine code (`cohort/scan_native.py`).

- a new process builds it once (Numba) and keeps it; the next loads it without starting Numba
  and gives the same answers;
- a damaged or foreign cache file is built again, not run; a cache that cannot be written leaves
  the run on the code just built;
- the build refuses a kernel that would need Numba's runtime (allocation, a raise), which the
  cached code cannot reach;
- a call with an array of the wrong dtype or layout is refused before any compiled code runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trdstage.cohort import scan_layout as lay
from trdstage.cohort import scan_native

_PROBE = """
import json, sys
import numpy as np
from trdstage.cohort import scan_native
kernel = scan_native.kernel()
days = np.array([19753, 19782, 19812, -1, 0], np.int64)  # 2024-01-31, 2024-02-29, ...
order, offsets = scan_native.group_drugs(
    np.array([7, 5, 7, 5], np.int64), np.array([1, 0, 0, 2], np.int32),
    np.array([10, 30, 20, 5], np.int32), np.array([1, 2, 3, 4], np.int64),
    np.array([True, True, True, False]), np.zeros(4, bool), np.array([5, 7], np.int64))
print(json.dumps({"origin": kernel.origin, "numba": "numba" in sys.modules,
                  "stubbed": list(kernel.stubbed),
                  "path": str(kernel.path), "months": scan_native.shift_months(days, 1).tolist(),
                  "order": order.tolist(), "offsets": offsets.tolist()}))
"""


def _probe(cache: Path) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env=env, check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_built_once_then_loaded_without_numba(tmp_path: Path) -> None:
    first = _probe(tmp_path)
    assert first["origin"] == "built"
    assert Path(str(first["path"])).is_file()
    assert Path(str(first["path"])).parent == tmp_path / "trdstage"
    again = _probe(tmp_path)
    assert again["origin"] == "cache"
    assert again["numba"] is False  # the point: no Numba start in a run
    # only Numba's runtime (never called) is bound to abort(); Python's C API is itself
    stubbed = list(again["stubbed"])  # type: ignore[call-overload]
    assert stubbed and all(name.startswith(("numba_", "NRT_")) for name in stubbed)
    assert first["stubbed"] == []  # (Numba loaded: its own functions)
    for key in ("months", "order", "offsets"):
        assert again[key] == first[key]
    # 2024-01-31, 02-29, 03-30, 1969-12-31, 1970-01-01 + 1 month: 2024-02-29, 03-29, 04-30,
    # 1970-01-31, 02-01; person 5: its antidepressant row, then its augmenter
    assert first["months"] == [19782, 19811, 19843, 30, 31]
    assert first["order"] == [1, 2, 0, 3]
    assert first["offsets"] == [0, 1, 3, 4, 4]


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of its own, and no kernel loaded yet in this process (restored afterwards)."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(scan_native, "_kernel", None)
    return tmp_path / "trdstage"


def _cached_file(folder: Path) -> Path:
    (path,) = folder.glob("scan_kernel-*.o")
    return path


def test_a_damaged_cache_file_is_built_again(fresh: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert scan_native.kernel().origin == "built"
    path = _cached_file(fresh)
    good = path.read_bytes()
    for damaged in (good[:len(good) // 2],  # truncated: the object's hash differs
                    good.replace(b'"key": "', b'"key": "0', 1),  # another key
                    b"not a kernel"):
        path.write_bytes(damaged)
        monkeypatch.setattr(scan_native, "_kernel", None)
        again = scan_native.kernel()
        assert again.origin == "built"
        assert path.read_bytes() == good  # written again, whole
    monkeypatch.setattr(scan_native, "_kernel", None)
    assert scan_native.kernel().origin == "cache"


def test_a_cache_that_cannot_be_written(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(scan_native, "_write_atomic", refuse)
    compiled = scan_native.kernel()
    assert (compiled.origin, compiled.path) == ("built", None)
    assert not fresh.exists() or not list(fresh.glob("scan_kernel-*.o"))
    days = np.array([19753], np.int64)
    assert scan_native.shift_months(days, 1).tolist() == [19782]


@pytest.mark.parametrize("body", [
    "  %r = call i32 @numba_attempt_nocopy_reshape(i64 %a)\n",  # array.min() reshapes
    "  %m = call ptr @NRT_MemInfo_alloc_aligned(i64 8, i32 32)\n",  # np.empty
    '  store ptr @".const.picklebuf.1", ptr %excinfo\n',  # a raise
])
def test_the_build_refuses_a_kernel_needing_numba_runtime(body: str) -> None:
    ir = ('define i32 @"cfunc.entry"(ptr %a) {\n  call void @numba_gil_ensure()\n}\n'
          f'define i32 @"_ZN8trdstage6kernel"(ptr %a) {{\n{body}  ret i32 0\n}}\n')
    with pytest.raises(scan_native.KernelError, match="allocate and raise nothing"):
        scan_native._check_self_contained("stage", ir)
    # the entry's own wrapper and reference counts are fine
    counted = ir.replace(body, "  call void @NRT_incref(ptr %a)\n")
    scan_native._check_self_contained("stage", counted)


def test_a_wrong_argument_is_refused_before_the_call() -> None:
    days = np.array([1, 2, 3], np.int64)
    out = np.empty(3, np.int64)
    table = np.empty(0, np.int64)
    compiled = scan_native.kernel()
    for bad in (days.astype(np.int32), np.arange(6, dtype=np.int64)[::2], [1, 2, 3]):
        with pytest.raises(scan_native.KernelError, match="argument 0"):
            compiled.call("months", (bad, 1, out, table), lay.MONTHS_ARGS)
    with pytest.raises(scan_native.KernelError, match="3 arguments"):
        compiled.call("months", (days, 1, out), lay.MONTHS_ARGS)
    compiled.call("months", (days, 1, out, table), lay.MONTHS_ARGS)
    assert out.tolist() == [32, 33, 34]


def test_numba_disable_jit_is_named(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Numba's debugging switch cannot build the kernel: the message says so and what to do."""
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    with pytest.raises(scan_native.KernelError, match=r"NUMBA_DISABLE_JIT.*--engine expression"):
        scan_native.kernel()
