"""No line over 120 characters in the package and the README: what a Colab cell shows without scrolling.

Checks lema/*.py (the exported cells, so the notebooks' code, and the `__all__` nbdev writes: `lema/_build.py` narrows
its wrap), README.md and GUIDE.md's prose (its generated result tables are rows that cannot wrap). Left out, because
nobody reads it: `lema/_modidx.py` (the symbol index).

Usage:
  python tools/check_lines.py [--max 120]                  # lema/*.py, README.md, GUIDE.md; exit 1 if a line is longer
  python tools/check_lines.py --nbs nbs/04_adapters.ipynb  # the same, per notebook cell (what to edit), no export
  python tools/check_lines.py --nbs NB... --same-as HEAD   # and: every exported cell still parses to the same code
The `--same-as REV` check compares each exported cell's ast with the cell of the same id in the notebook at git
revision REV: line breaks, moved comments and implicitly concatenated strings leave it unchanged; docstrings are
compared with their whitespace collapsed (rewrapping one is fine, changing a word is not).
"""
import ast, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ("#| export", "#|export", "#| exporti", "#|exporti", "#| exports", "#|exports")

def long_lines(limit: int=120) -> list[tuple[str, int, int]]:
    files = sorted(p for p in (ROOT/"lema").glob("*.py") if p.name != "_modidx.py") + [ROOT/"README.md"]
    out = []
    for f in files + [ROOT/"GUIDE.md"]:
        table_ok = f.name == "GUIDE.md"  # a generated table's row is one line, however wide
        out += [(str(f.relative_to(ROOT)), i, len(l)) for i, l in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
                if len(l) > limit and not (table_ok and l.startswith("|"))]
    return out

# ---------------------------------------------------------------- per notebook (for the one editing it)
def _src(c) -> str: return "".join(c["source"])
def _exported(nb) -> dict[str, str]: return {c["id"]: _src(c) for c in nb["cells"]
                                             if c["cell_type"] == "code" and _src(c).lstrip().startswith(EXPORT)}

def nb_long_lines(path: Path, limit: int=120) -> list[str]:
    "Where the notebook's exported code (and its module docstring: the title cell's `> ` line) is too long."
    nb = json.loads(path.read_text()); out = []
    md = next((_src(c) for c in nb["cells"] if c["cell_type"] == "markdown"), "")
    for l in md.splitlines():
        if l.startswith("> ") and len(l) - 2 + 3 > limit:  # exported as the module's `"""description` line
            out.append(f"{path}: title cell: the `> ` description is {len(l) - 2} characters (at most {limit - 3})")
    for cid, s in _exported(nb).items():
        out += [f"{path} cell {cid} line {i}: {len(l)} characters" for i, l in enumerate(s.splitlines(), 1)
                if len(l) > limit]
    return out

def _norm(tree: ast.AST) -> str:
    for n in ast.walk(tree):
        body = getattr(n, "body", None)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
           and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
           and isinstance(body[0].value.value, str):
            body[0].value.value = " ".join(body[0].value.value.split())
    return ast.dump(tree)

def same_code(path: Path, rev: str) -> list[str]:
    "Exported cells whose code differs from the same cell at git revision `rev` (or that appeared/disappeared)."
    old = json.loads(subprocess.run(["git", "show", f"{rev}:{path.resolve().relative_to(ROOT)}"], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout)
    a, b = _exported(old), _exported(json.loads(path.read_text()))
    out = [f"{path} cell {c}: exported at {rev} only" for c in a.keys() - b.keys()]
    out += [f"{path} cell {c}: exported now only" for c in b.keys() - a.keys()]
    for c in a.keys() & b.keys():
        try: same = _norm(ast.parse(a[c])) == _norm(ast.parse(b[c]))
        except SyntaxError as e: out.append(f"{path} cell {c}: does not parse now: {e}"); continue
        if not same: out.append(f"{path} cell {c}: the code changed (not only its line breaks)")
    return out

if __name__ == "__main__":
    args = sys.argv[1:]
    limit = int(args[args.index("--max") + 1]) if "--max" in args else 120
    if "--nbs" in args:
        nbs = [Path(a) for a in args[args.index("--nbs") + 1:] if a.endswith(".ipynb")]
        bad = [m for p in nbs for m in nb_long_lines(p, limit)]
        changed = [m for p in nbs for m in same_code(p, args[args.index("--same-as") + 1])] if "--same-as" in args else []
        for m in bad + changed: print(m)
        print(f"{'FAIL' if bad or changed else 'PASS'}  {len(bad)} long lines, {len(changed)} changed cells"
              f" in {len(nbs)} notebooks")
        sys.exit(1 if bad or changed else 0)
    bad = long_lines(limit)
    for f, i, n in bad: print(f"{f}:{i}: {n} characters")
    print(f"{'FAIL' if bad else 'PASS'}  no line over {limit} characters in lema/, README.md and GUIDE.md's prose"
          + (f" ({len(bad)} lines are)" if bad else ""))
    sys.exit(1 if bad else 0)
