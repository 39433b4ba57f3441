"""Mutation smoke test: plant one realistic bug at a time and check that the notebook tests catch it.

For each mutant of `tools/mutants.py` this copies the working tree (uncommitted edits included) to a scratch
directory, replaces the mutant's `old` snippet by `new` both in the exported module (lema/X.py) and in the notebook
cell it is exported from (named by the module's `File to edit:` header), then runs the notebooks there, as
`tools/run_tests.py --one` does (one process per notebook, OMP_NUM_THREADS=1, 2 at a time): the mutant's hint
notebooks first, then every other notebook, stopping at the first failure.
  killed    a notebook failed          timeout   a notebook ran past --timeout (a hang is a caught bug too)
  survived  every notebook passed      stale     `old` is not exactly once in the module / in one notebook cell
The scratch copy is what the notebooks import: PYTHONPATH=<scratch> comes before the editable install's finder
(which setuptools appends to sys.meta_path), and each run checks that `lema` resolves into the scratch copy, in the
child and in a grandchild process; `--list` and `--baseline` also run a throwaway notebook exactly as the suite does
(run_tests.py --one) that imports `lema` and starts a `python -c` importing it: both must come from the scratch copy.

Usage:
  python tools/mutate.py                 # every mutant: markdown table, `K killed, S survived, E stale`; exit 1 if any survived/stale
  python tools/mutate.py --only lora-scaling pad-labels
  python tools/mutate.py --list          # check that every mutant still applies (no tests run), and the import isolation
  python tools/mutate.py --baseline      # run the unmutated suite first (it must pass, else abort: exit 2)
  python tools/mutate.py --keep          # keep the scratch copies (and their logs, in <scratch>/.mutate-logs) to inspect
  python tools/mutate.py --nbs nbs/03_lora.ipynb ...   # restrict the suite to these notebooks (quick checks only)

Adding a mutant: append a dict to MUTANTS in tools/mutants.py (name, file, old, new, notebooks, sees); copy `old`
verbatim from lema/*.py and run `--list`. When the code changes under a mutant, `--list` says "stale": update `old`.

Time (2 shared CPU cores): the copy and checks take a few seconds; a killed mutant then costs only the notebooks
run until the first failure (lora-scaling: 14 s, killed by nbs/03_lora.ipynb); a survivor costs the whole suite,
about 6-7 minutes. The whole list: about (survivors x 7 min) + (killed x 1-2 min); --baseline adds one suite.
"""
import argparse, importlib.util, json, os, re, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ".mutate-logs"

class Stale(Exception): "The mutant's snippet cannot be placed exactly once."

def load_mutants():
    spec = importlib.util.spec_from_file_location("_lema_mutants", Path(__file__).with_name("mutants.py"))
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod.MUTANTS

def all_notebooks(root: Path) -> list[str]:
    "Every notebook, as tools/run_tests.py finds them (relative paths)."
    return [str(p.relative_to(root)) for p in sorted(p for p in (root/"nbs").rglob("*.ipynb")
            if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))]

# ---------------------------------------------------------------- the scratch copy
def copy_tree(dst: Path, root: Path = ROOT) -> Path:
    "Copy the working tree (tracked and untracked-not-ignored files, as they are on disk now) to `dst`."
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # no git: everything but the usual junk
        files = None
    if files is None:
        shutil.copytree(root, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", "output", "*.egg-info", "_proc", "_docs", ".ipynb_checkpoints"))
        return dst
    for f in files:
        src = root/f
        if not src.is_file(): continue  # deleted in the working tree
        (dst/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst/f)
    return dst

def child_env(scratch: Path) -> dict:
    "The environment of the notebook processes: scratch copy first on the import path, one thread each."
    pp = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(scratch) + (os.pathsep + pp if pp else ""),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}

_CHECK = """
import importlib.util, subprocess, sys
deep = sys.argv[1] == "import"
def where():
    if deep:
        import lema, lema.lora; return lema.__file__ + " " + lema.lora.__file__
    return importlib.util.find_spec("lema").origin
print(where())
code = "import importlib.util, lema, lema.lora; print(lema.__file__, lema.lora.__file__)" if deep else "import importlib.util; print(importlib.util.find_spec('lema').origin)"
print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
"""

def check_import(scratch: Path, deep=False):
    "Raise unless `lema` resolves into `scratch`, in a child (run from nbs/, as the notebooks are) and in its own child."
    r = subprocess.run([sys.executable, "-c", _CHECK, "import" if deep else "spec"], cwd=scratch/"nbs", env=child_env(scratch),
                       capture_output=True, text=True)
    lines = r.stdout.split()
    want = str((scratch/"lema").resolve())
    if r.returncode or not lines or not all(str(Path(l).resolve()).startswith(want + os.sep) for l in lines):
        raise RuntimeError(f"`lema` does not resolve into the scratch copy {scratch}:\n{r.stdout}{r.stderr}")
    return lines

_NB_CHECK = """import json, os, subprocess, sys
from pathlib import Path
import lema, lema.lora
want = Path(os.environ["LEMA_MUTATE_SCRATCH"]).resolve()/"lema"
sub = subprocess.run([sys.executable, "-c", "import lema, lema.lora; print(lema.__file__); print(lema.lora.__file__)"],
                     capture_output=True, text=True, check=True).stdout.split()
files = [lema.__file__, lema.lora.__file__, *sub]
Path(os.environ["LEMA_MUTATE_CHECK_OUT"]).write_text(json.dumps({"cwd": os.getcwd(), "files": files}))
assert all(Path(f).resolve().is_relative_to(want) for f in files), files
"""

def check_import_nb(scratch: Path) -> dict:
    "The strongest check: a throwaway notebook run exactly as the suite runs one (run_tests.py --one, nbdev's test_nb)"
    " imports `lema`, and starts a `python -c` that imports it too: all must come from the scratch copy."
    nb, out = scratch/"nbs"/"_mutate_import_check.ipynb", scratch/LOG_DIR/"import_check.json"
    out.parent.mkdir(exist_ok=True)
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
                                         "source": _NB_CHECK.splitlines(keepends=True)}],
                              "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
                              "nbformat": 4, "nbformat_minor": 5}, indent=1))
    env = {**child_env(scratch), "LEMA_MUTATE_SCRATCH": str(scratch), "LEMA_MUTATE_CHECK_OUT": str(out)}
    r = subprocess.run([sys.executable, str(scratch/"tools"/"run_tests.py"), "--one", str(nb)], cwd=scratch, env=env,
                       capture_output=True, text=True)
    nb.unlink()
    res = json.loads(out.read_text()) if out.is_file() else {}
    if r.returncode: raise RuntimeError(f"a notebook in {scratch} does not import `lema` from it: {res}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return res

# ---------------------------------------------------------------- placing a mutant
def _source(cell) -> str: return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def _is_export(src: str) -> bool: return bool(re.search(r"^#\s*\|\s*export", src, re.M))

def locate(m: dict, root: Path):
    "(module path, notebook path, its JSON, index of the cell holding `old`); `Stale` says why not."
    mod = root/m["file"]
    if not mod.is_file(): raise Stale(f"no module {m['file']}")
    text = mod.read_text()
    if (n := text.count(m["old"])) != 1: raise Stale(f"`old` occurs {n} times in {m['file']}")
    if m["old"] == m["new"]: raise Stale("`new` is `old`")
    hdr = re.search(r"File to edit: (\S+?\.ipynb)", text)
    if not hdr: raise Stale(f"{m['file']} has no `File to edit:` header")
    nb = (mod.parent/hdr[1]).resolve()
    if not nb.is_file(): raise Stale(f"{m['file']}'s notebook {hdr[1]} does not exist")
    js = json.loads(nb.read_text())
    cells = [i for i, c in enumerate(js["cells"]) if c["cell_type"] == "code" and m["old"] in _source(c)]
    if len(cells) > 1: cells = [i for i in cells if _is_export(_source(js["cells"][i]))]  # e.g. a test cell repeats the line
    if not cells: raise Stale(f"`old` is in no code cell of {nb.relative_to(root)} (notebook edited since the last nbdev-export?)")
    if len(cells) != 1 or _source(js["cells"][cells[0]]).count(m["old"]) != 1:
        raise Stale(f"`old` is in {len(cells)} exported cells of {nb.relative_to(root)} (expected exactly once in one cell)")
    return mod, nb, js, cells[0]

def apply(m: dict, root: Path):
    "Plant mutant `m` in the tree at `root` (module and notebook)."
    mod, nb, js, i = locate(m, root)
    mod.write_text(mod.read_text().replace(m["old"], m["new"], 1))
    cell = js["cells"][i]
    new = _source(cell).replace(m["old"], m["new"], 1)
    cell["source"] = new.splitlines(keepends=True) if isinstance(cell["source"], list) else new
    nb.write_text(json.dumps(js, indent=1, ensure_ascii=False) + "\n")

# ---------------------------------------------------------------- running the notebooks
def _kill(p):
    "End notebook process `p` and whatever it started (its own process group)."
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    p.wait()

def run_suite(scratch: Path, order: list[str], timeout: float, workers=2, flags="", say=lambda *a: None):
    "Run `order`'s notebooks in `scratch`, `workers` at a time, until the first failure: `(status, notebook, results)`."
    logs = scratch/LOG_DIR; logs.mkdir(exist_ok=True)
    pending, running, results, bad = list(order), {}, {}, None
    try:
        while (pending or running) and bad is None:
            while pending and len(running) < workers:
                nb = pending.pop(0)
                log = open(logs/(nb.replace("/", "__") + ".log"), "w")
                p = subprocess.Popen([sys.executable, str(scratch/"tools"/"run_tests.py"), "--one", str(scratch/nb), "--flags", flags],
                                     cwd=scratch, env=child_env(scratch), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                running[nb] = (p, time.time(), log)
            time.sleep(0.5)
            for nb, (p, t0, log) in list(running.items()):
                rc, secs = p.poll(), time.time() - t0
                if rc is None and secs <= timeout: continue
                if rc is None: _kill(p); status = "timeout"
                else: status = "pass" if rc == 0 else "fail"
                log.close(); del running[nb]
                results[nb] = (status, secs); say(f"    {status:7} {nb} ({secs:.0f}s)")
                if status != "pass" and bad is None: bad = (status, nb)
    finally:
        for nb, (p, t0, log) in running.items(): _kill(p); log.close()  # the first failure decides: stop the rest
    if bad is None: return "survived", None, results
    return ("killed" if bad[0] == "fail" else "timeout"), bad[1], results

def why(scratch: Path, nb: str) -> str:
    "Where and why a notebook failed, from its log: `cell #N: <the notebook line> -> <the exception>`."
    try: text = (scratch/LOG_DIR/(nb.replace("/", "__") + ".log")).read_text(errors="replace")
    except OSError: return ""
    cell = re.search(r"While Executing Cell #(\d+)", text)
    frames = re.findall(r'File "<ipython-input-[^"]*>", line \d+[^\n]*\n\s*(.+)', text)
    tb = text.rfind("Traceback (most recent call last)")
    err = next((l for l in text[tb:].splitlines()[1:] if l and not l[0].isspace()), "") if tb >= 0 else ""
    if not err:  # no traceback (e.g. a crash or a kill): the last line that looks like an error, else the last line
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        err = ([l for l in lines if re.search(r"Error|Exception|Killed|Timeout", l)] or lines or [""])[-1]
    out = (f"cell #{cell[1]}: " if cell else "") + (f"`{frames[-1].strip()}` -> " if frames else "") + err.strip()
    return out if len(out) <= 200 else out[:197] + "..."

def suite_order(m: dict|None, nbs: list[str]) -> list[str]:
    first = [n for n in (m or {}).get("notebooks", []) if n in nbs]
    return first + [n for n in nbs if n not in first]

# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants and check they apply; run no tests")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--baseline", action="store_true", help="run the unmutated suite first (must pass)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per notebook (past it: 'timeout', counted as killed)")
    ap.add_argument("--workers", type=int, default=2, help="notebooks at a time")
    ap.add_argument("--flags", default="", help="test flags to run that are normally skipped (as tools/run_tests.py)")
    ap.add_argument("--nbs", nargs="+", metavar="NB", help="restrict the suite to these notebooks (quick checks)")
    a = ap.parse_args()
    mutants = load_mutants()
    names = [m["name"] for m in mutants]
    if len(set(names)) != len(names): sys.exit(f"duplicate mutant names in tools/mutants.py: {sorted(n for n in set(names) if names.count(n) > 1)}")
    if a.only:
        if unknown := [n for n in a.only if n not in names]: sys.exit(f"unknown mutant(s) {unknown}; known: {names}")
        mutants = [m for m in mutants if m["name"] in a.only]
    nbs = all_notebooks(ROOT)
    if a.nbs:
        sel = [str(Path(n).resolve().relative_to(ROOT)) for n in a.nbs]
        if missing := [n for n in sel if n not in nbs]: sys.exit(f"not notebooks of the suite: {missing}")
        nbs = sel

    if a.list:
        stale = 0
        print("| mutant | file | applies | hint notebooks | a user would see |\n|---|---|---|---|---|")
        for m in mutants:
            try: locate(m, ROOT); ok = "yes"
            except Stale as e: ok, stale = f"**stale**: {e}", stale + 1
            print(f"| {m['name']} | {m['file']} | {ok} | {', '.join(Path(n).name for n in m.get('notebooks', []))} | {m.get('sees', '')} |")
        scratch = Path(tempfile.mkdtemp(prefix="lema-mutate-check-"))
        try:
            copy_tree(scratch)
            print(f"\nimport check, `python -c` from nbs/ and its subprocess: {' | '.join(check_import(scratch, deep=True))}")
            res = check_import_nb(scratch)
            print(f"import check, a notebook run as the suite runs it (cwd {res['cwd']}) and its `python -c`: {' | '.join(res['files'])}")
        finally: shutil.rmtree(scratch, ignore_errors=True)
        print(f"{len(mutants) - stale} apply, {stale} stale")
        sys.exit(1 if stale else 0)

    def scratch_for(label):
        d = Path(tempfile.mkdtemp(prefix=f"lema-mutant-{label}-"))
        return copy_tree(d)

    if a.baseline:
        t0, scratch = time.time(), scratch_for("baseline")
        try:
            check_import(scratch, deep=True); check_import_nb(scratch)
            print(f"baseline: {len(nbs)} notebooks in {scratch}", flush=True)
            status, nb, _ = run_suite(scratch, nbs, a.timeout, a.workers, a.flags, say=lambda s: print(s, flush=True))
            if status != "survived":
                print(f"baseline FAILED: {nb} ({status}) after {time.time() - t0:.0f}s: {why(scratch, nb)}\n"
                      f"the unmutated suite must pass before mutants mean anything; logs in {scratch/LOG_DIR}")
                a.keep = True; sys.exit(2)
            print(f"baseline passed in {time.time() - t0:.0f}s", flush=True)
        finally:
            if not a.keep: shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for m in mutants:
        t0 = time.time()
        scratch = scratch_for(m["name"])
        try:
            try: apply(m, scratch)
            except Stale as e:
                rows.append((m, "stale", "", 0.0, str(e))); print(f"{m['name']}: stale ({e})", flush=True); continue
            check_import(scratch)
            print(f"{m['name']}: {m['file']} mutated in {scratch}", flush=True)
            status, nb, _ = run_suite(scratch, suite_order(m, nbs), a.timeout, a.workers, a.flags, say=lambda s: print(s, flush=True))
            note = (f"ran past --timeout {a.timeout:.0f}s; " if status == "timeout" else "") + (why(scratch, nb) if nb else "")
            rows.append((m, status, nb or "", time.time() - t0, note))
            print(f"{m['name']}: {status}{' by ' + nb if nb else ''} ({time.time() - t0:.0f}s)", flush=True)
        finally:
            if not a.keep: shutil.rmtree(scratch, ignore_errors=True)

    print("\n| mutant | file | status | killed by | seconds |\n|---|---|---|---|---|")
    for m, status, nb, secs, _ in rows: print(f"| {m['name']} | {m['file']} | {status} | {nb} | {secs:.0f} |")
    K = sum(r[1] in ("killed", "timeout") for r in rows); S = sum(r[1] == "survived" for r in rows); E = sum(r[1] == "stale" for r in rows)
    if details := [(m, status, note) for m, status, nb, _, note in rows if note or status == "survived"]:
        print()
        for m, status, note in details: print(f"- {m['name']} ({status}): {note or 'not caught; a user would see: ' + m.get('sees', '?')}")
    print(f"\n{K} killed, {S} survived, {E} stale")
    sys.exit(1 if S or E else 0)

if __name__ == "__main__": main()
