"""Render nbs/index.ipynb as README.md (what `nbdev-readme` does, without needing Quarto).

Markdown cells are copied; code cells become ```python blocks (minus `#|` directives); `#| hide` cells
are left out; text outputs are shown below their cell. `--check` exits 1 if README.md is stale.
"""
import json, sys
from pathlib import Path

def render(nb_path):
    nb, out = json.loads(Path(nb_path).read_text()), []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown": out.append(src); continue
        lines = src.splitlines()
        if any(l.strip().replace(" ", "") in ("#|hide", "#|export", "#|exporti") for l in lines if l.startswith("#|")): continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if code: out.append(f"```python\n{code}\n```")
        for o in c.get("outputs", []):
            txt = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")).rstrip()
            if txt: out.append(f"```\n{txt}\n```")
    return "\n\n".join(out).rstrip() + "\n"

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    text = render(root/"nbs"/"index.ipynb")
    if "--check" in sys.argv:
        ok = (root/"README.md").is_file() and (root/"README.md").read_text() == text
        print("README.md is up to date" if ok else "README.md is stale: run python tools/make_readme.py"); sys.exit(0 if ok else 1)
    (root/"README.md").write_text(text)
