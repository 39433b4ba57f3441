"""What LEMA's first contact costs — `import lema`, `lema --help`, reading a config — beside `import torch`.

Each command runs in a fresh python, `--runs` times, interleaved (round 1: every command once, round 2: again, ...),
so that a busy moment on the machine hits all of them alike; the table gives each command's median wall time, its
spread, and the median over `import torch`'s. `lema --help` runs what the `lema` console script runs
(`from lema.cli import main; main()`), on this checkout (PYTHONPATH = the repository root, before any install).

Usage: python tools/import_times.py [--runs 5] [--reference]   # --reference: also `import transformers`, `import peft`
       python tools/import_times.py --check 1.5                 # exit 1 unless `lema --help` <= 1.5x `import torch`
       python tools/import_times.py --root /tmp/old-checkout    # another checkout's lema (e.g. before a change)
"""
import argparse, os, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """import pathlib, tempfile
from lema import LemaConfig
d = pathlib.Path(tempfile.mkdtemp())
LemaConfig(model_name_or_path=str(d), lora_rank=8).to_yaml(d/"run.yaml")
LemaConfig.from_yaml(d/"run.yaml").validate()"""
COMMANDS = {
    "python -c 'import torch'": "import torch",
    "python -c 'import lema'": "import lema",
    "lema --help": "import sys; sys.argv = ['lema', '--help']; from lema.cli import main; main()",
    "a config: to_yaml, from_yaml, validate": CONFIG,
}
REFERENCE = {"python -c 'import transformers'": "import transformers", "python -c 'import peft'": "import peft"}

def once(code: str, root=ROOT) -> float:
    "Wall seconds of a fresh python running `code` (its output discarded; a failure stops the measurement)."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,  # cwd: `python -c` puts it first on sys.path
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0: raise SystemExit(f"{code!r} failed:\n{r.stderr}")
    return secs

def measure(commands: dict, runs: int, root=ROOT) -> dict[str, list[float]]:
    times = {name: [] for name in commands}
    for _ in range(runs):
        for name, code in commands.items(): times[name].append(once(code, root))
    return times

def table(times: dict[str, list[float]], base="python -c 'import torch'") -> str:
    ref = statistics.median(times[base])
    rows = ["| command | median s | min–max s | × import torch |", "|---|---:|---:|---:|"]
    for name, ts in times.items():
        m = statistics.median(ts)
        rows.append(f"| `{name}` | {m:.2f} | {min(ts):.2f}–{max(ts):.2f} | {m / ref:.2f} |")
    return "\n".join(rows)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each command, interleaved (default 5)")
    ap.add_argument("--reference", action="store_true", help="also time `import transformers` and `import peft`")
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose lema is timed (default: this one)")
    ap.add_argument("--check", type=float, metavar="RATIO",
                    help="exit 1 unless `lema --help` <= RATIO x `import torch`")
    a = ap.parse_args()
    once("import torch")  # warm the page cache: the first run would otherwise pay for reading torch from disk
    times = measure({**COMMANDS, **(REFERENCE if a.reference else {})}, a.runs, a.root)
    print(f"{a.runs} interleaved runs each, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"lema from {a.root}\n")
    print(table(times))
    ratio = statistics.median(times["lema --help"]) / statistics.median(times["python -c 'import torch'"])
    if a.check is not None and ratio > a.check:
        print(f"\n`lema --help` is {ratio:.2f}x `import torch`, over {a.check}x"); return 1
    return 0

if __name__ == "__main__": sys.exit(main())
