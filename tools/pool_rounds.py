"""Pool the paired rounds of several `lema bench --rounds N --csv F` runs (their `F_rounds.csv` files) into one row.

Each round's ratio is `run`'s step time over `base`'s in that round (the pairing `time_vs_*_paired` uses); the pooled
row gives how many rounds, the median ratio, its quartiles, min and max, and how many rounds came out below 1.

Usage:
  python tools/pool_rounds.py OUT.csv --run lema-logits --base peft-gc LABEL=A_rounds.csv,B_rounds.csv [LABEL=...]
One row per LABEL (e.g. the code measured); OUT.csv is what GUIDE.md shows with `{{csv ...}}`.
"""
import argparse, sys
from pathlib import Path
import pandas as pd
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # lema from this checkout
from lema.bench import paired_ratios  # the pairing `time_vs_*_paired` uses

def pool(files, run: str, base: str) -> dict:
    r = pd.concat([paired_ratios(pd.read_csv(f), run, base) for f in files], ignore_index=True)
    return dict(runs=len(files), rounds=len(r), ratio_median=r.median(), ratio_q25=r.quantile(0.25),
                ratio_q75=r.quantile(0.75), ratio_min=r.min(), ratio_max=r.max(), rounds_below_1=int((r < 1).sum()))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out"); ap.add_argument("--run", required=True); ap.add_argument("--base", required=True)
    ap.add_argument("groups", nargs="+", help="LABEL=FILE,FILE,...")
    a = ap.parse_args()
    rows = []
    for g in a.groups:
        label, _, files = g.partition("=")
        rows.append(dict(code=label, run=a.run, base=a.base, files=" ".join(files.split(",")),
                         **pool(files.split(","), a.run, a.base)))
    df = pd.DataFrame(rows)
    df.to_csv(a.out, index=False)
    print(df.to_string(index=False))
