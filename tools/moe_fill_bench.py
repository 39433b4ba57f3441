"""Bind-time placement vs convert-time fusing, for a mixture-of-experts layer (notebook 01c's design choice).

Streams each layer of a Qwen3-30B-A3B-shape checkpoint (2 layers, bfloat16) into a host buffer, as the streamer does
before the copy to the device, from two files: the hub's layout (one tensor per expert and projection: 384 copies per
layer, each placed where transformers' stacked parameter has it) and the same model written already stacked (what a
convert-time fusing would produce: one contiguous range per layer). Interleaved rounds; prints and writes a CSV.

    python tools/moe_fill_bench.py [--rounds 5] [--out assets/moe_fill_cpu.csv]
"""
import argparse, statistics, time
from pathlib import Path
import torch

def fused_copy(src: Path, dst: Path):
    "`src` rewritten with transformers' module names: the expert stacks written whole (convert-time fusing)."
    from lema.gbi import GlobalBinaryIndex, _write_safetensors, _tensor_bytes, _natural_key
    if (dst/"model.safetensors").is_file(): return dst
    g = GlobalBinaryIndex(src); dst.mkdir(parents=True, exist_ok=True)
    items = [(n, (g.fused.get(n) or g.locate(n)).dtype, tuple((g.fused.get(n) or g.locate(n)).shape),
              (lambda n: lambda: _tensor_bytes(g.get_tensor(n)))(n)) for n in sorted(g.module_keys(), key=_natural_key)]
    _write_safetensors(dst/"model.safetensors", items, desc="fused copy")
    g.config.save_pretrained(dst)
    return dst

def fill_seconds(path: Path) -> tuple[float, int, int]:
    "Seconds to fill every layer once into the streamer's host buffer; bytes per layer; byte ranges per layer."
    from lema.gbi import GlobalBinaryIndex
    from lema.memory import LayerStreamer
    g = GlobalBinaryIndex(path); keys = g.module_keys()
    names = [[n for n in keys if n.startswith(f"model.layers.{i}.")] for i in range(g.config.num_hidden_layers)]
    st = LayerStreamer(g, names, n_slots=1)
    t = time.perf_counter()
    for lay in st.layouts: st._fill(st.staging[0], lay)
    s = time.perf_counter() - t
    st.close()
    return s / len(names), st.layouts[0].nbytes, len(st.layouts[0].ranges)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--out", default="assets/moe_fill_cpu.csv")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from lema.bench import build_model, cache_dir
    hub = build_model("qwen3-30b-a3b-2l", "bfloat16")
    fused = fused_copy(hub, cache_dir()/"qwen3-30b-a3b-2l-bfloat16-stacked")
    rows = []
    for r in range(a.rounds + 1):  # round 0 warms the page cache: not counted
        for name, p in (("hub layout, placed at fill (LEMA)", hub), ("stacked at convert time", fused)):
            s, nbytes, nranges = fill_seconds(p)
            if r: rows.append(dict(layout=name, round=r, sec_per_layer=s, bytes_per_layer=nbytes, ranges_per_layer=nranges))
    import pandas as pd
    df = pd.DataFrame(rows)
    summ = df.groupby("layout", sort=False).agg(sec_per_layer=("sec_per_layer", "median"), sec_min=("sec_per_layer", "min"),
                                                sec_max=("sec_per_layer", "max"), bytes_per_layer=("bytes_per_layer", "first"),
                                                ranges_per_layer=("ranges_per_layer", "first")).reset_index()
    summ["GB_per_s"] = summ.bytes_per_layer / summ.sec_per_layer / 1e9
    summ["rounds"] = a.rounds
    print(summ.to_string())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); summ.to_csv(a.out, index=False)
