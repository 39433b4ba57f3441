"""Render nbs/index.ipynb as README.md and nbs/guide.ipynb as GUIDE.md (what `nbdev-readme` does, without Quarto).

Markdown cells are copied; code cells become ```python blocks (minus `#|` directives); `#| hide` cells
are left out; text outputs are shown below their cell. A markdown line `{{csv PATH COL,COL,...}}` becomes
a table of those columns of the CSV at PATH (relative to the repository), and `{{val PATH KEY=V,KEY=V COL}}` the
value of COL in the one row of that CSV where each KEY is V, so every number shown comes from the committed CSVs.
`--check` exits 1 if README.md or GUIDE.md is stale.
"""
import csv, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _fmt(v):
    try: f = float(v)
    except ValueError: return v
    if f != f: return ""
    return f"{f:.3g}" if abs(f) < 1000 else f"{f:.0f}"

def csv_table(path, cols):
    p = ROOT/path
    if not p.is_file(): return f"*(no results yet: {path})*"
    rows = list(csv.DictReader(p.open()))
    cols = [c for c in cols if rows and c in rows[0]]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out)

def csv_value(path, where, col):
    "The value of `col` in the one row of the CSV at `path` matching `where` (KEY=V,KEY=V): an error unless exactly one."
    want = dict(kv.split("=", 1) for kv in where.split(","))
    rows = [r for r in csv.DictReader((ROOT/path).open()) if all(r.get(k) == v for k, v in want.items())]
    if len(rows) != 1: raise SystemExit(f"{{{{val {path} {where} {col}}}}}: {len(rows)} rows match, expected one")
    return _fmt(rows[0][col])

def _expand(md):
    md = re.sub(r"^\{\{csv (\S+) (\S+)\}\}$", lambda m: csv_table(m[1], m[2].split(",")), md, flags=re.M)
    return re.sub(r"\{\{val (\S+) (\S+) (\S+)\}\}", lambda m: csv_value(m[1], m[2], m[3]), md)

def render(nb_path):
    nb, out = json.loads(Path(nb_path).read_text()), []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown": out.append(_expand(src)); continue
        lines = src.splitlines()
        if any(l.strip().replace(" ", "") in ("#|hide", "#|export", "#|exporti") for l in lines if l.startswith("#|")): continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if code: out.append(f"```python\n{code}\n```")
        for o in c.get("outputs", []):
            txt = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")).rstrip()
            if txt: out.append(f"```\n{txt}\n```")
    return "\n\n".join(out).rstrip() + "\n"

PAGES = {"README.md": "index.ipynb", "GUIDE.md": "guide.ipynb"}

if __name__ == "__main__":
    stale = []
    for page, nb in PAGES.items():
        text = render(ROOT/"nbs"/nb)
        if "--check" not in sys.argv: (ROOT/page).write_text(text)
        elif not (ROOT/page).is_file() or (ROOT/page).read_text() != text: stale.append(page)
    if "--check" in sys.argv:
        print(f"{', '.join(stale)} stale: run python tools/make_readme.py" if stale else "README.md and GUIDE.md are up to date")
        sys.exit(1 if stale else 0)
