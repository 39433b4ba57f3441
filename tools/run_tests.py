"""Run every notebook's tests (as `nbdev-test` does) and end with a line `N passed, M failed`.

Usage: python tools/run_tests.py [--flags "gpu slow"] [--workers 2] [notebook ...]
"""
import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

def _test_one(fn, flags):
    "Run one notebook's tests in this process (IPython takes over `__main__`, so one notebook per process)."
    import torch; torch.set_num_threads(1)
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config()
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    ok, _ = test_nb(fn, skip_flags=skip, force_flags=flags.split(), cell_timeout=cfg.cell_timeout)
    sys.exit(0 if ok else 1)

def _run(fn, flags):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one thread per notebook: no oversubscription
    t = time.time()
    r = subprocess.run([sys.executable, __file__, "--one", str(fn), "--flags", flags], env=env)
    return r.returncode == 0, time.time() - t

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--flags", default="", help="test flags to run that are normally skipped (e.g. 'gpu slow')")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    if a.one: return _test_one(a.one, a.flags)
    root = Path(__file__).resolve().parent.parent
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted(p for p in (root/"nbs").rglob("*.ipynb")
                                                           if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))
    os.chdir(root)
    with ThreadPoolExecutor(a.workers) as ex:
        results = list(ex.map(_run, nbs, [a.flags] * len(nbs)))
    for nb, (ok, secs) in zip(nbs, results):
        print(f"{'PASS' if ok else 'FAIL'}  {nb.relative_to(root)}  ({secs:.0f}s)")
    passed = sum(ok for ok, _ in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)

if __name__ == "__main__": main()
