"""Render nbs/index.ipynb as README.md (what `nbdev-readme` does, without needing Quarto).

Markdown cells are copied; code cells become ```python blocks (minus `#|` directives); `#| hide` cells
are left out; text outputs are shown below their cell. A markdown line `{{csv PATH COL,COL,...}}` becomes
a table of those columns of the CSV at PATH (relative to the repository), so the README's result tables
always come from the committed CSVs. `--check` exits 1 if README.md is stale.
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

def _expand(md):
    return re.sub(r"^\{\{csv (\S+) (\S+)\}\}$", lambda m: csv_table(m[1], m[2].split(",")), md, flags=re.M)

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

if __name__ == "__main__":
    root = ROOT
    text = render(root/"nbs"/"index.ipynb")
    if "--check" in sys.argv:
        ok = (root/"README.md").is_file() and (root/"README.md").read_text() == text
        print("README.md is up to date" if ok else "README.md is stale: run python tools/make_readme.py"); sys.exit(0 if ok else 1)
    (root/"README.md").write_text(text)
