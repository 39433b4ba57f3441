"""No line over 120 characters in the package and the README: what a Colab cell shows without scrolling.

Checks lema/*.py (the exported cells, so the notebooks' code) and README.md; `lema/_modidx.py` is nbdev's generated
symbol index, which nobody reads in a cell, and is left out. Prints each offending line; exit 1 if any.
Usage: python tools/check_lines.py [--max 120]
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def long_lines(limit: int=120) -> list[tuple[str, int, int]]:
    files = sorted(p for p in (ROOT/"lema").glob("*.py") if p.name != "_modidx.py") + [ROOT/"README.md"]
    return [(str(f.relative_to(ROOT)), i, len(l)) for f in files
            for i, l in enumerate(f.read_text().splitlines(), 1) if len(l) > limit]

if __name__ == "__main__":
    limit = int(sys.argv[sys.argv.index("--max") + 1]) if "--max" in sys.argv else 120
    bad = long_lines(limit)
    for f, i, n in bad: print(f"{f}:{i}: {n} characters")
    print(f"{'FAIL' if bad else 'PASS'}  no line over {limit} characters in lema/ and README.md"
          + (f" ({len(bad)} lines are)" if bad else ""))
    sys.exit(1 if bad else 0)
