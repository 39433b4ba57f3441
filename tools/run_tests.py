"""Run every notebook's tests (as `nbdev-test` does) and end with a line `N passed, M failed`.

The notebooks that stream layers run a second time on the simulated GPU (`LEMA_SIMULATE_DEVICE`, notebook 01e), so
that the CUDA code path (streams, events, page-locked staging, the offloader's side stream) runs in CI too; and the
GPU check (`tools/gpu_check.sh quick`) runs its CPU dry run (`tools/gpu_quick.py --cpu`), so it does not rot unrun.

Usage: python tools/run_tests.py [--flags "gpu slow"] [--workers 2] [--no-simulated] [notebook ...]
"""
import argparse, os, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# streamed training and generation: equivalence with PEFT, every strategy, fixed layers, offload, 4-bit, close
SIMULATED = ["nbs/01a_quant.ipynb", "nbs/02_memory.ipynb", "nbs/04_adapters.ipynb", "nbs/06_model.ipynb",
             "nbs/09_reliability.ipynb"]

def _test_one(fn, flags):
    "Run one notebook's tests in this process (IPython takes over `__main__`, so one notebook per process)."
    import torch; torch.set_num_threads(1)
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config()
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    ok, _ = test_nb(fn, skip_flags=skip, force_flags=flags.split(), cell_timeout=cfg.cell_timeout)
    sys.exit(0 if ok else 1)

def _run(job, flags):
    fn, simulated = job
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one thread per notebook: no oversubscription
    if simulated: env["LEMA_SIMULATE_DEVICE"] = "1"  # the seed of its random delays
    t = time.time()
    if fn.suffix == ".py":  # the GPU check's dry run on the CPU: its results into a scratch folder, not assets/
        with tempfile.TemporaryDirectory() as out:
            r = subprocess.run([sys.executable, str(fn), "--cpu", "--out", out], env=env, stdout=subprocess.DEVNULL)
    else: r = subprocess.run([sys.executable, __file__, "--one", str(fn), "--flags", flags], env=env)
    return r.returncode == 0, time.time() - t

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--flags", default="", help="test flags to run that are normally skipped (e.g. 'gpu slow')")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-simulated", action="store_true", help="skip the second run on the simulated GPU")
    ap.add_argument("--simulated-only", action="store_true", help="only the runs on the simulated GPU")
    a = ap.parse_args()
    if a.one: return _test_one(a.one, a.flags)
    root = Path(__file__).resolve().parent.parent
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted(p for p in (root/"nbs").rglob("*.ipynb")
                                                           if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))
    os.chdir(root)
    sim = {(root/n).resolve() for n in SIMULATED}
    jobs = [] if a.simulated_only else [(nb, False) for nb in nbs]
    if not a.no_simulated and "gpu" not in a.flags.split(): jobs += [(nb, True) for nb in nbs if nb in sim]
    if not a.notebooks and not a.simulated_only: jobs.append((root/"tools/gpu_quick.py", False))  # `gpu_check.sh quick`, dry
    jobs.sort(key=lambda j: j[0].name in ("08_bench.ipynb", "05a_distributed.ipynb", "05_trainer.ipynb"), reverse=True)  # long first
    with ThreadPoolExecutor(a.workers) as ex:
        results = list(ex.map(_run, jobs, [a.flags] * len(jobs)))
    for (nb, simulated), (ok, secs) in zip(jobs, results):
        print(f"{'PASS' if ok else 'FAIL'}  {nb.relative_to(root)}{'  [simulated GPU]' if simulated else ''}  ({secs:.0f}s)")
    passed = sum(ok for ok, _ in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)

if __name__ == "__main__": main()
