#!/usr/bin/env python
"""The quick GPU check (issue 21, item 3): one command, a few minutes on a lent GPU capped at 16 GB, results in assets/.

Usage: python tools/gpu_quick.py [--cpu] [--out assets] [--budget-s 330]
       (on the GPU machine: `bash tools/gpu_check.sh quick`, which also installs carried wheels)

Each check is a section that ends PASS, FAIL or SKIPPED (with why) and records its numbers; one failing check never
stops the others. Results are rewritten after every check (a hang or a kill keeps what ran):
  assets/gpu_quick.json          the machine, the settings, every check with its numbers (and a FAIL's traceback)
  assets/gpu_quick.csv           one row per check: name, status, seconds, why, numbers
  assets/gpu_quick.txt           the report as printed, ending with the summary line
  assets/gpu_quick_memory.csv    device/pinned memory per step over 20 steps with NaN batches, and after close()
  assets/gpu_quick_profile.txt   the profiler's summary table of 2 streamed steps (not the multi-MB trace)
`--cpu` runs every check that does not need CUDA on device "cpu" (files get a `_cpu` suffix); CUDA-only parts are
SKIPPED.
Set LEMA_REAL_MODEL_DIR to a converted model directory (e.g. SmolLM2-135M-Instruct) to check the real model too.
"""
from __future__ import annotations
import argparse, csv, faulthandler, gc, json, math, os, platform, random, shutil, subprocess, sys, tempfile, time
import traceback, warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lema from this checkout, no install step
import torch

GIB = 2**30
CAP_BYTES = 16 * GIB  # emulate a 16 GB card on the big one
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # every linear (4-bit ones too)
LR = 1e-2
SLEEP_CYCLES = 2_000_000  # torch.cuda._sleep: ~1 ms at ~2 GHz, far longer than a tiny layer's kernels
HOST_SLEEP_S = 0.002      # the CPU stand-in: a host delay in the same places
# float32 on both sides, same kernels: measured on CPU the two agree bitwise; 1e-5 leaves room for GPU reduction order
# fp16_loss: with the scale applied late (issue 21 item 2) the CPU run measured 1.27e-2, with it applied first 1.05e-5
TOL = dict(loss=1e-5, grad=1e-5, loss_4bit=1e-4, grad_4bit=1e-4, fp16_loss=5e-3)
SIZES = {  # a medium tiny llama: big enough that a layer copy is measurable, small enough for seconds per check
    "cuda": dict(num_hidden_layers=8, hidden_size=512, intermediate_size=1376, num_attention_heads=8,
                 num_key_value_heads=4, vocab_size=16000, max_position_embeddings=512,
                 batch=(4, 128), mem_lengths=(32, 64, 128, 96, 48)),
    "cpu": dict(num_hidden_layers=4, hidden_size=256, intermediate_size=688, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=2000, max_position_embeddings=256,
                batch=(2, 48), mem_lengths=(16, 32, 48, 40, 24)),
}

class Skip(Exception):
    "A check (or a variant) that cannot run here: the message says why."

CHECKS = []  # (name, function, needs_cuda)

def check(name, needs_cuda=False):
    "Register a check: `fn(ctx, rec)` fills `rec` with its numbers, raises Skip or fails by exception."
    def deco(fn): CHECKS.append((name, fn, needs_cuda)); return fn
    return deco

_FAILED = []  # the current check's broken criteria: every one is reported, not only the first

def expect(cond, msg):
    "A check's criterion: a failure names the numbers that broke it; the check goes on, and ends FAIL."
    if not cond: _FAILED.append(msg)

def require(cond, msg):
    "A criterion the rest of the check depends on: it ends the check at once."
    if not cond: raise AssertionError(msg)

def rel(a, b) -> float:
    "Relative difference of tensors (norm-wise) or numbers."
    if torch.is_tensor(a):
        a, b = a.detach().double().cpu(), b.detach().double().cpu()
        return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
    return abs(a - b) / max(abs(b), 1e-30)

# ---------------------------------------------------------------------------------------------------------------------
# the machine, the results files
# ---------------------------------------------------------------------------------------------------------------------
def _versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda}
    for mod in ("transformers", "peft", "accelerate", "bitsandbytes", "fastcore", "safetensors"):
        try: out[mod] = __import__(mod).__version__
        except Exception as e: out[mod] = f"not importable ({type(e).__name__})"
    return out

def machine_info(cuda: bool) -> dict:
    "What ran this: the GPU as nvidia-smi names it (name, memory, compute capability, driver), versions, CPUs."
    info = {"host": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(), **_versions()}
    if not cuda: return {**info, "device": "cpu"}
    try:
        q = "name,memory.total,compute_cap,driver_version"
        line = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30).stdout.strip().splitlines()[0]
        info.update(zip(("gpu", "gpu_memory", "compute_capability", "driver"), (s.strip() for s in line.split(","))))
    except Exception as e: info["nvidia_smi"] = f"failed: {type(e).__name__}: {e}"
    p = torch.cuda.get_device_properties(0)
    info.update(device="cuda", torch_gpu=p.name, torch_total_memory_gib=round(p.total_memory / GIB, 2),
                torch_capability=f"{p.major}.{p.minor}")
    return info

class Report:
    "The results so far; every `add` rewrites the files, so a run killed half-way still leaves what it measured."
    def __init__(self, out: Path, suffix: str, machine: dict, settings: dict):
        self.out, self.suffix, self.machine, self.settings = out, suffix, machine, settings
        self.rows, self.lines = [], []
        out.mkdir(parents=True, exist_ok=True)
        head = ", ".join(f"{k}={machine.get(k)}" for k in ("gpu", "gpu_memory", "compute_capability", "driver", "torch",
                                                            "transformers", "peft", "bitsandbytes") if k in machine)
        self.say(f"gpu_quick on {machine.get('device')}: {head or machine.get('platform')}")

    def path(self, stem, ext): return self.out / f"{stem}{self.suffix}.{ext}"

    def say(self, line: str):
        print(line, flush=True); self.lines.append(line)

    def add(self, row: dict):
        self.rows.append(row)
        nums = ", ".join(f"{k}={_fmt(v)}" for k, v in row["numbers"].items() if not isinstance(v, (dict, list)))
        self.say(f"[{row['status']:>7}] {row['name']:<28} {row['seconds']:6.1f}s  {row['why'] or ''}"
                 f"{'  | ' if row['why'] and nums else ''}{nums}")
        self.write()

    def summary(self, seconds: float) -> str:
        n = {s: sum(r["status"] == s for r in self.rows) for s in ("PASS", "FAIL", "SKIPPED")}
        bad = [r["name"] for r in self.rows if r["status"] == "FAIL"]
        where = self.machine.get("gpu") or self.machine.get("device")
        return (f"gpu_quick summary: {n['PASS']} PASS, {n['FAIL']} FAIL, {n['SKIPPED']} SKIPPED in {seconds:.0f}s on "
                f"{where}" + (f" (FAIL: {', '.join(bad)})" if bad else ""))

    def write(self, summary: str|None=None):
        doc = {"machine": self.machine, "settings": self.settings, "checks": self.rows, "summary": summary}
        self.path("gpu_quick", "json").write_text(json.dumps(doc, indent=1, default=str))
        with open(self.path("gpu_quick", "csv"), "w", newline="") as f:
            w = csv.writer(f); w.writerow(["check", "status", "seconds", "why", "numbers"])
            for r in self.rows: w.writerow([r["name"], r["status"], f"{r['seconds']:.2f}", r["why"] or "",
                                            json.dumps(r["numbers"], default=str)])
        self.path("gpu_quick", "txt").write_text("\n".join(self.lines + ([summary] if summary else [])) + "\n")

def _fmt(v):
    if isinstance(v, float): return f"{v:.3g}"
    return str(v)

def run_checks(ctx, report: Report, deadline: float):
    "Every registered check in order, each isolated: an exception is its FAIL, never the run's end."
    for name, fn, needs_cuda in CHECKS:
        rec, t0, why, tb = {}, time.time(), None, None
        if needs_cuda and not ctx.cuda: status, why = "SKIPPED", "needs CUDA (--cpu run)"
        elif time.time() > deadline: status, why = "SKIPPED", "time budget spent (--budget-s)"
        elif ctx.broken and name != "imports": status, why = "SKIPPED", f"setup failed: {ctx.broken}"
        else:
            _FAILED.clear()
            try:
                fn(ctx, rec)
                status, why = ("FAIL", "; ".join(_FAILED)[:800]) if _FAILED else ("PASS", None)
            except Skip as e: status, why = "SKIPPED", str(e)
            except Exception as e:  # a check's failure is data, not the end of the run
                why = "; ".join(_FAILED + [f"{type(e).__name__}: {str(e)[:400]}"])
                status, tb = "FAIL", traceback.format_exc(limit=12)
            finally: _tidy(ctx)
        row = dict(name=name, status=status, seconds=time.time() - t0, why=why, numbers=rec)
        if tb: row["traceback"] = tb; print(tb, file=sys.stderr, flush=True)
        report.add(row)

def _tidy(ctx):
    "Between checks: nothing of the last one stays alive (memory numbers of the next start clean)."
    gc.collect()
    if ctx.cuda: torch.cuda.synchronize(); torch.cuda.empty_cache()

# ---------------------------------------------------------------------------------------------------------------------
# fixtures: the tiny model, its batch, the initial adapter, PEFT's reference numbers
# ---------------------------------------------------------------------------------------------------------------------
def make_context(args) -> SimpleNamespace:
    cuda = not args.cpu
    if cuda and not torch.cuda.is_available(): sys.exit("gpu_quick: no CUDA device here (use --cpu for the CPU checks)")
    size = dict(SIZES["cuda" if cuda else "cpu"])
    ctx = SimpleNamespace(cuda=cuda, dev="cuda:0" if cuda else "cpu", size=size, out=Path(args.out),
                          tmp=Path(tempfile.mkdtemp(prefix="gpu_quick-")), suffix="" if cuda else "_cpu",
                          broken=None, cache={})
    ctx.L = size["num_hidden_layers"]
    return ctx

def base_dir(ctx) -> Path:
    "The tiny llama's checkpoint (written once)."
    if "base" not in ctx.cache:
        from lema.gbi import save_tiny_model
        cfg = {k: v for k, v in ctx.size.items() if k not in ("batch", "mem_lengths")}
        save_tiny_model(ctx.tmp / "base", "llama", **cfg)
        ctx.cache["base"] = ctx.tmp / "base"
    return ctx.cache["base"]

def batch(ctx, B=None, T=None, seed=0, V=None):
    "Random ids (< V) with left padding in row 1 (a real 4D mask) and its labels: the batch every equivalence uses."
    B0, T0 = ctx.size["batch"]; B, T = B or B0, T or T0
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, V or ctx.size["vocab_size"], (B, T), generator=g)
    mask = torch.ones_like(x)
    if B > 1: mask[1, : T // 4] = 0
    return x, mask, x.masked_fill(mask == 0, -100)

def timed_rounds(ctx, runs: dict, rounds: int) -> dict:
    """Seconds of each of `runs` (name -> callable) in `rounds` interleaved rounds after one warm-up round, each round
    starting one run later (the bench's `rotated`), the device synchronized around each call: {name: [seconds]}."""
    from lema.bench import rotated
    sync, out = (torch.cuda.synchronize if ctx.cuda else (lambda: None)), {k: [] for k in runs}
    for r in range(rounds + 1):
        for k in rotated(runs, r):
            sync(); t = time.perf_counter(); runs[k](); sync()
            if r: out[k].append(time.perf_counter() - t)
    return out

def lema_config(ctx, src, **kw):
    "The LemaConfig every check starts from (float32, r=4 on every linear); `device=None`: LemaConfig's own default."
    from lema import LemaConfig
    base = dict(model_name_or_path=str(src), device=ctx.dev, dtype="float32", lora_rank=4, lora_alpha=8,
                lora_target_modules=TARGETS, save_steps=0, output_dir=str(ctx.tmp / "out"))
    fields = {k: v for k, v in {**base, **kw}.items() if not (k == "device" and v is None)}
    return LemaConfig(**fields)

def init_adapter(ctx, src=None, targets=TARGETS, rank=4):
    "One initial adapter (non-zero B, so that A's gradients count) for LEMA and PEFT: `(state dict, PEFT-format dir)`."
    src = src or base_dir(ctx)
    key = ("init", str(src))
    if key not in ctx.cache:
        from lema import LemaModel
        with LemaModel(lema_config(ctx, src, lora_target_modules=targets, lora_rank=rank, lora_alpha=2 * rank)) as m:
            m.initialize_lora(seed=1)
            g = torch.Generator().manual_seed(1)
            sd = {k: (torch.randn(v.shape, generator=g) * 0.02 if ".lora_B." in k else v.detach().cpu().clone())
                  for k, v in sorted(m.state_dict().items())}
            m.load_state_dict(sd)
            d = ctx.tmp / f"init-{len(ctx.cache)}"
            m.save_pretrained(d)
        ctx.cache[key] = (sd, d)
    return ctx.cache[key]

def build(ctx, src=None, init=None, **kw):
    "A LemaModel on `src` (the tiny llama) with the initial adapter loaded: every variant starts from the same weights."
    from lema import LemaModel
    src = src or base_dir(ctx)
    sd, _ = init or init_adapter(ctx)
    m = LemaModel(lema_config(ctx, src, **kw)).initialize_lora(seed=1)
    m.load_state_dict(sd)
    return m

def peft_reference(ctx, src=None, init=None, quantized=False, steps=3, B=None, T=None, V=None):
    "PEFT on transformers' model (same device, float32): the first step's loss and LoRA grads, then AdamW's losses."
    src = src or base_dir(ctx)
    key = ("peft", str(src), quantized, B, T, V)
    if key in ctx.cache: return ctx.cache[key]
    from transformers import AutoModelForCausalLM
    from peft import PeftModel
    _, init_dir = init or init_adapter(ctx)
    kw = dict(dtype=torch.float32)
    if quantized and ctx.cuda: kw["device_map"] = {"": ctx.dev}  # a bitsandbytes model is placed at load, not moved
    base = AutoModelForCausalLM.from_pretrained(src, **kw)
    if not quantized: base = base.to(ctx.dev)
    pm = PeftModel.from_pretrained(base, init_dir, is_trainable=True)
    pm.train()  # bitsandbytes' CPU Linear4bit takes a bfloat16 kernel in eval mode; train mode as transformers' Trainer
    x, mask, labels = (t.to(ctx.dev) for t in batch(ctx, B, T, V=V))
    params = {n.replace("base_model.model.", "").replace(".default", ""): p
              for n, p in pm.named_parameters() if p.requires_grad}  # LEMA's names: model.layers.0.self_attn.q_proj...
    opt = torch.optim.AdamW(list(params.values()), lr=LR)
    losses, grads = [], None
    for i in range(steps):
        out = pm(input_ids=x, attention_mask=mask, labels=labels); out.loss.backward()
        if i == 0: grads = {n.removesuffix(".weight"): p.grad.detach().cpu().clone() for n, p in params.items()}
        opt.step(); opt.zero_grad(); losses.append(out.loss.item())
    ref = ctx.cache[key] = dict(losses=losses, grads=grads)
    del pm, base, opt
    return ref

def lema_run(m, ctx, steps=3, B=None, T=None, V=None) -> dict:
    """The same as `peft_reference` on a LemaModel: the first step through `model(...)` (what transformers' Trainer
    calls), the next ones through `LemaTrainer.train_step`, one AdamW throughout."""
    x, mask, labels = batch(ctx, B, T, V=V)
    m.train()
    out = m(input_ids=x, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = {f"{n}.lora_{ab}": getattr(lo, f"lora_{ab}").weight.grad.detach().cpu().clone()
             for n, lo in m.loras.items() for ab in "AB"}
    opt = torch.optim.AdamW(m.get_trainable_parameters(), lr=LR)
    opt.step(); opt.zero_grad()
    losses = [out.loss.item()]
    tr = m.get_trainer(opt)
    losses += [tr.train_step(x, labels=labels, attention_mask=mask)[1].item() for _ in range(steps - 1)]
    return dict(losses=losses, grads=grads)

def compare(rec, ours, ref, loss_tol, grad_tol, label=""):
    "Record and judge LEMA against PEFT: the first loss, the loss trajectory, every LoRA grad of the first step."
    label = f"{label}: " if label else ""
    missing = sorted(set(ref["grads"]) ^ set(ours["grads"]))
    require(not missing, f"LoRA modules differ between LEMA and PEFT: {missing[:6]}")
    rec["loss"], rec["peft_loss"] = ours["losses"][0], ref["losses"][0]
    rec["loss_rel"] = rel(ours["losses"][0], ref["losses"][0])
    rec["traj_rel"] = max(rel(a, b) for a, b in zip(ours["losses"], ref["losses"]))
    worst = max(ref["grads"], key=lambda n: rel(ours["grads"][n], ref["grads"][n]))
    rec["grad_rel"], rec["worst_grad"] = rel(ours["grads"][worst], ref["grads"][worst]), worst
    rec["n_grads"] = len(ref["grads"])
    expect(rec["loss_rel"] < loss_tol and rec["traj_rel"] < loss_tol,
           f"{label}loss vs PEFT: first {rec['loss_rel']:.2e}, trajectory {rec['traj_rel']:.2e} (tolerance {loss_tol})")
    expect(rec["grad_rel"] < grad_tol,
           f"{label}LoRA grad vs PEFT: {rec['grad_rel']:.2e} at {worst} (tolerance {grad_tol})")

# ---------------------------------------------------------------------------------------------------------------------
# race widening: delays where the streamer's ordering matters (wrapping methods; a missing target skips the variant)
# ---------------------------------------------------------------------------------------------------------------------
def _find_streams(obj, depth=2):
    "CUDA streams an object holds: its `copy_stream` first, else any found (one behind a device seam, say)."
    named = getattr(obj, "copy_stream", None)
    found, seen = ([named] if isinstance(named, torch.cuda.Stream) else []), set()
    def walk(o, d):
        if id(o) in seen or d < 0: return
        seen.add(id(o))
        for v in (vars(o).values() if hasattr(o, "__dict__") else ()):
            if isinstance(v, torch.cuda.Stream): found.append(v)
            elif hasattr(v, "__dict__") and not isinstance(v, (torch.Tensor, list, dict, tuple, str, int, float)):
                walk(v, d - 1)
    walk(obj, depth)
    return found

@contextmanager
def race_delays(streamer, cuda: bool, at_layer_start: bool, in_prefetch: bool, calls: dict, seed=0):
    """Delay the compute right after a layer is acquired (its kernels start late: a slot refilled before they ran would
    be overwritten under them) and the prefetch's copy (it lands late: compute that does not wait reads stale bytes).
    Each delay hides the other's race (a late compute lets a late copy land), so with both on every delay is drawn
    from [0, 2x] (seeded): over many layer uses, each ordering gets its turn."""
    from lema.memory import LayerStreamer
    patches, rng = [], random.Random(seed)
    scale = (lambda: rng.uniform(0, 2)) if at_layer_start and in_prefetch else (lambda: 1.0)
    def sleep(stream=None):  # on `stream`, else on the caller's (the compute stream at a layer's start)
        f = scale()
        if not cuda: time.sleep(HOST_SLEEP_S * f); return
        with torch.cuda.stream(stream): torch.cuda._sleep(int(SLEEP_CYCLES * f))  # stream None: the current one
    if at_layer_start:
        orig_acquire = getattr(LayerStreamer, "acquire", None)
        if orig_acquire is None: raise Skip("LayerStreamer.acquire is gone (renamed?): cannot delay a layer's start")
        def acquire(self, *a, **k):
            out = orig_acquire(self, *a, **k)
            calls["acquire"] = calls.get("acquire", 0) + 1
            sleep()
            return out
        patches.append(("acquire", orig_acquire, acquire))
    if in_prefetch:
        orig_load = getattr(LayerStreamer, "_load", None)
        if orig_load is None: raise Skip("LayerStreamer._load is gone (renamed?): cannot delay the prefetch")
        streams = _find_streams(streamer) if cuda else [None]
        if not streams: raise Skip("no CUDA stream on the streamer (device seam changed?): cannot delay its copies")
        def _load(self, *a, **k):
            calls["load"] = calls.get("load", 0) + 1
            sleep(streams[0])  # on the copy stream: the copy queued next starts late
            return orig_load(self, *a, **k)
        patches.append(("_load", orig_load, _load))
    try:
        for name, _, new in patches: setattr(LayerStreamer, name, new)
        yield
    finally:
        for name, old, _ in patches: setattr(LayerStreamer, name, old)

# ---------------------------------------------------------------------------------------------------------------------
# the checks, in order of what matters most if time runs out
# ---------------------------------------------------------------------------------------------------------------------
@check("imports")
def check_imports(ctx, rec):
    "lema imports from this checkout (fastcore must be there: carry its wheel); the tiny model is written."
    try:
        import lema
        from lema import LemaConfig, LemaModel  # noqa: F401
        rec["lema"], rec["lema_path"] = getattr(lema, "__version__", "?"), str(Path(lema.__file__).parent)
        t = time.time(); base_dir(ctx); rec["write_model_s"] = time.time() - t
    except Exception as e:  # nothing else can run: the other checks say so instead of failing one by one
        ctx.broken = f"{type(e).__name__}: {str(e)[:200]}"
        raise
    rec.update({k: v for k, v in ctx.size.items() if k != "mem_lengths"})

@check("default_device_cuda", needs_cuda=True)
def check_default_device(ctx, rec):
    "Defect 1: the default device, 'cuda' with no index (LemaConfig's default here), must build, stream and train."
    from lema import LemaModel
    x, mask, labels = batch(ctx)
    cfg = lema_config(ctx, base_dir(ctx), device=None)
    rec["config_device"] = cfg.device
    expect(cfg.device == "cuda", f"LemaConfig's default device is {cfg.device!r} here, not 'cuda'")
    with LemaModel(cfg) as m:
        m.initialize_lora(seed=1)
        rec["model_device"] = str(m.device)
        tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=LR))
        _, loss = tr.train_step(x, labels=labels, attention_mask=mask)
        rec["loss"] = loss.item()
        logits = m(x[:1, :8])
        rec["forward_ok"] = bool(torch.isfinite(logits).all())
    expect(math.isfinite(rec["loss"]) and rec["forward_ok"], f"non-finite loss or logits: {rec}")

def _equivalence(ctx, rec, delays=None, **kw):
    "One LEMA variant against PEFT's cached reference."
    ref = peft_reference(ctx)
    with build(ctx, **kw) as m:
        calls = {}
        if delays:
            with race_delays(m.streamer, ctx.cuda, *delays, calls): ours = lema_run(m, ctx)
            rec["delayed_calls"] = dict(calls)
            if not calls: raise Skip("the patched streamer methods were never called (renamed?): no delay was injected")
        else: ours = lema_run(m, ctx)
        s = m.streamer
        rec["n_fixed"], rec["loads"] = getattr(s, "n_fixed", None), dict(getattr(s, "stats", {})).get("loads")
    compare(rec, ours, ref, TOL["loss"], TOL["grad"])
    return rec

def _layer_bytes(size) -> int:
    "float32 bytes of one decoder layer of the tiny llama (q, k, v, o, gate, up, down, two norms)."
    H, I = size["hidden_size"], size["intermediate_size"]
    kv = H // size["num_attention_heads"] * size["num_key_value_heads"]
    return 4 * (2 * H * H + 2 * H * kv + 3 * H * I + 2 * H)

EQUIVALENCES = [  # (check name, LemaConfig fields, delays: (at layer start, in the prefetch) or None)
    ("peft/recompute", dict(gradient_checkpointing=True), None),
    ("peft/keep_activations", dict(gradient_checkpointing=False), None),
    ("peft/offload_activations", dict(offload_activations=True), None),
    ("peft/device_budget", dict(device_budget_gb="2.5 layers"), None),
    ("peft/resident", dict(strategy="resident"), None),
    ("peft/slots_1", dict(vram_buffer_size=1), None),
    ("race/sleep_layer_start", dict(), (True, False)),
    ("race/sleep_prefetch", dict(), (False, True)),
    ("race/both_offload", dict(offload_activations=True), (True, True)),
    ("race/both_keep_activations", dict(gradient_checkpointing=False), (True, True)),
    ("race/both_budget_resident", dict(strategy="resident", device_budget_gb="2.5 layers"), (True, True)),
]

def _register_equivalence(name, kw, delays):
    @check(name)
    def run(ctx, rec):
        fields = dict(kw)
        if fields.get("device_budget_gb") == "2.5 layers":  # some layers fixed on the device, the rest streamed
            fields["device_budget_gb"] = 2.5 * _layer_bytes(ctx.size) / GIB
        _equivalence(ctx, rec, delays=delays, **fields)
        if "device_budget_gb" in fields and rec["n_fixed"] is not None:
            expect(0 < rec["n_fixed"] < ctx.L, f"the budget should fix some layers, not {rec['n_fixed']} of {ctx.L}")

for _n, _kw, _d in EQUIVALENCES: _register_equivalence(_n, _kw, _d)

SIMULATED = [("recompute", {}), ("keep_activations", dict(gradient_checkpointing=False)),
             ("offload", dict(offload_activations=True)), ("budget", dict(device_budget_gb="2.5 layers")),
             ("resident", dict(strategy="resident"))]

@check("simulated_device")
def check_simulated(ctx, rec):
    """--cpu only: the CUDA code path on lema's simulated device (copies land late on worker threads, events are real
    waits, pinning is checked); equal to PEFT, pinned memory held and then released. No host delays are injected here:
    a sleep at a layer's start would give a late copy time to land and hide a missing wait (measured: it did)."""
    if ctx.cuda: raise Skip("the real device ran the CUDA path")
    try: from lema.device import simulated_device
    except ImportError as e: raise Skip(f"lema.device.simulated_device is not there ({e})")
    ref = peft_reference(ctx)
    for seed, (name, kw) in enumerate(SIMULATED):
        kw = {k: (2.5 * _layer_bytes(ctx.size) / GIB if v == "2.5 layers" else v) for k, v in kw.items()}
        with simulated_device(max_delay=1e-3, seed=seed):
            with build(ctx, **kw) as m:
                ours = lema_run(m, ctx)
                rec[f"{name}_pinned_bytes"] = m.streamer.pinned_bytes
            rec[f"{name}_pinned_after_close"] = m.streamer.pinned_bytes
        sub = {}
        compare(sub, ours, ref, TOL["loss"], TOL["grad"], label=name)
        rec[f"{name}_loss_rel"], rec[f"{name}_grad_rel"] = sub["loss_rel"], sub["grad_rel"]
        expect(rec[f"{name}_pinned_bytes"] > 0, f"{name}: nothing pinned on the simulated device (host path taken?)")
        expect(rec[f"{name}_pinned_after_close"] == 0, f"{name}: pinned memory left after close()")

def nf4_dir(ctx) -> Path:
    "The tiny llama in bitsandbytes NF4, as `lema convert --quantize nf4` writes it; Skip without bitsandbytes."
    try: import bitsandbytes  # noqa: F401
    except Exception as e:
        raise Skip(f"bitsandbytes does not import ({type(e).__name__}: {str(e)[:120]}): carry its wheel in .whl/")
    if "nf4" not in ctx.cache:
        from lema.cli import main as lema_cli
        out = ctx.tmp / "base-nf4"
        rc = lema_cli(["convert", str(base_dir(ctx)), str(out), "--quantize", "nf4"])
        require(rc == 0, f"lema convert --quantize nf4 exited {rc}")
        ctx.cache["nf4"] = out
    return ctx.cache["nf4"]

@check("peft/4bit_nf4")
def check_4bit(ctx, rec):
    "LEMA on the NF4 checkpoint against PEFT QLoRA (transformers + bitsandbytes Linear4bit), float32 compute."
    src = nf4_dir(ctx)
    ref = peft_reference(ctx, src, quantized=True)
    with build(ctx, src) as m: ours = lema_run(m, ctx)
    compare(rec, ours, ref, TOL["loss_4bit"], TOL["grad_4bit"])

@check("race/4bit_both")
def check_4bit_race(ctx, rec):
    "The NF4 model with both delays: dequantization runs on the compute stream after the wait."
    src = nf4_dir(ctx)
    ref = peft_reference(ctx, src, quantized=True)
    with build(ctx, src) as m:
        calls = {}
        with race_delays(m.streamer, ctx.cuda, True, True, calls): ours = lema_run(m, ctx)
        rec["delayed_calls"] = calls
    compare(rec, ours, ref, TOL["loss_4bit"], TOL["grad_4bit"])

@check("generate_vs_peft")
def check_generate(ctx, rec):
    "Greedy generation from a left-padded batch: PEFT's tokens, token for token."
    from transformers import AutoModelForCausalLM
    from peft import PeftModel
    _, init_dir = init_adapter(ctx)
    x, mask, _ = batch(ctx, B=3, T=12, seed=5)
    x = x.masked_fill(mask == 0, 0)
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    with build(ctx) as m: ours = m.generate(x, attention_mask=mask, **kw).cpu()
    pm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir(ctx), dtype=torch.float32).to(ctx.dev),
                                   init_dir).eval()
    with torch.no_grad(): theirs = pm.generate(input_ids=x.to(ctx.dev), attention_mask=mask.to(ctx.dev), **kw).cpu()
    rec["shape"], rec["tokens_equal"] = list(ours.shape), float((ours == theirs).float().mean())
    expect(torch.equal(ours, theirs), f"generated tokens differ from PEFT's ({rec['tokens_equal']:.2%} equal)")

def _count_syncs(fn) -> tuple[int, dict]:
    "Run `fn` under torch.cuda.set_sync_debug_mode('warn'): how many synchronizing calls, and from which lines."
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # every sync, not only the first from each line
        torch.cuda.set_sync_debug_mode("warn")
        try: fn()
        finally: torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in seen if "synchroniz" in str(w.message).lower()]
    where = {}
    for w in syncs:
        k = f"{Path(w.filename).name}:{w.lineno}"; where[k] = where.get(k, 0) + 1
    return len(syncs), dict(sorted(where.items(), key=lambda kv: -kv[1])[:12])

def _sync_check(ctx, rec, src):
    x, mask, labels = batch(ctx)
    with build(ctx, src) as m:
        tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=LR))
        tr.train_step(x, labels=labels, attention_mask=mask)  # warm-up: one-time allocations and registrations
        n, where = _count_syncs(lambda: tr.train_step(x, labels=labels, attention_mask=mask))
        rec["train_step_syncs"], rec["train_syncs_per_layer"], rec["train_sync_lines"] = n, n / ctx.L, where
        tokens = 4
        n, where = _count_syncs(lambda: m.generate(x[:1, :16], max_new_tokens=tokens, do_sample=False, pad_token_id=0))
        rec["generate_syncs"], rec["generate_syncs_per_layer_token"] = n, n / (ctx.L * tokens)
        rec["generate_sync_lines"] = where
    # a fixed number per step (the finite-loss check, the grad norm) is fine; one or more per layer is the defect
    expect(rec["train_syncs_per_layer"] < 1, f"{rec['train_step_syncs']} syncs in one step of {ctx.L} layers: "
                                             f"{rec['train_sync_lines']}")
    expect(rec["generate_syncs_per_layer_token"] < 1, f"{rec['generate_syncs']} syncs in a {tokens}-token generate: "
                                                      f"{rec['generate_sync_lines']}")

@check("sync_debug", needs_cuda=True)
def check_syncs(ctx, rec): _sync_check(ctx, rec, base_dir(ctx))

@check("sync_debug/4bit", needs_cuda=True)
def check_syncs_4bit(ctx, rec):
    "Defect 6: no host synchronisation per 4-bit weight."
    _sync_check(ctx, rec, nf4_dir(ctx))

# -- the profiler: overlap and bandwidth from the trace's events ------------------------------------------------------
def union(iv):
    "Merge intervals [(start, end)] into disjoint sorted ones."
    out = []
    for s, e in sorted(iv):
        if out and s <= out[-1][1]: out[-1][1] = max(out[-1][1], e)
        else: out.append([s, e])
    return [tuple(x) for x in out]

def length(iv) -> float: return sum(e - s for s, e in iv)

def overlap(a, b) -> float:
    "Total time in both interval sets (each already a union)."
    i = j = 0; t = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo: t += hi - lo
        if a[i][1] < b[j][1]: i += 1
        else: j += 1
    return t

def _self_test_trace():
    "The trace arithmetic on events whose answers are known (the CPU run has no GPU events to exercise it)."
    a, b = union([(0, 2), (1, 3), (5, 6)]), union([(2, 5.5)])
    assert a == [(0, 3), (5, 6)] and length(a) == 4 and overlap(a, b) == 1.5, (a, b)
    ev = lambda cat, name, ts, dur, **args: dict(ph="X", cat=cat, name=name, ts=ts, dur=dur, args=args)
    events = [ev("kernel", "gemm", 0, 10), ev("kernel", "gemm", 20, 10),                  # busy 20 of a 30 us window
              ev("gpu_memcpy", "Memcpy HtoD (Pinned -> Device)", 5, 10, bytes=20_000),   # 5 of its 10 us under a kernel
              ev("user_annotation", "lema.wait_for_layer", 0, 3),                         # the host's wait: counted
              ev("gpu_user_annotation", "lema.wait_for_layer", 0, 9)]                     # its GPU shadow: not
    got = trace_numbers(events, n_layer_uses=2)
    want = dict(kernels=2, h2d_copies=1, h2d_pinned_copies=1, overlap_us=5, overlap_fraction=0.5,
                wait_for_layer_calls=1, idle_us_per_layer_use=5, h2d_gbps=2.0)  # 20 kB in 10 us
    assert all(abs(got[k] - v) < 1e-9 for k, v in want.items()), (got, want)

def trace_numbers(events: list, n_layer_uses: int) -> dict:
    "From chrome-trace events: copy/compute overlap, H2D GB/s, time waiting for layers, GPU idle gap per layer use."
    x = [e for e in events if e.get("ph") == "X"]
    kernels = union([(e["ts"], e["ts"] + e["dur"]) for e in x if e.get("cat") == "kernel"])
    h2d = [e for e in x if e.get("cat") == "gpu_memcpy" and "HtoD" in e.get("name", "")]
    pinned = [e for e in h2d if "Pinned" in e["name"]]
    h2d_iv = union([(e["ts"], e["ts"] + e["dur"]) for e in h2d])
    waits = [e["dur"] for e in x if e.get("name") == "lema.wait_for_layer" and e.get("cat") != "gpu_user_annotation"]
    gb = lambda evs: sum(e.get("args", {}).get("bytes", 0) for e in evs) / 1e9
    secs = lambda evs: sum(e["dur"] for e in evs) / 1e6
    out = dict(kernels=sum(e.get("cat") == "kernel" for e in x), h2d_copies=len(h2d), h2d_pinned_copies=len(pinned),
               h2d_gb=gb(h2d), h2d_gbps=gb(h2d) / secs(h2d) if h2d else None,
               h2d_pinned_gbps=gb(pinned) / secs(pinned) if pinned else None,
               h2d_us=length(h2d_iv), overlap_us=overlap(h2d_iv, kernels),
               wait_for_layer_calls=len(waits), wait_for_layer_ms=sum(waits) / 1e3)
    out["overlap_fraction"] = out["overlap_us"] / out["h2d_us"] if out["h2d_us"] else None
    if kernels:  # the GPU's idle time between its first and last kernel, shared out per layer use
        window = kernels[-1][1] - kernels[0][0]
        out["gpu_window_ms"], out["kernel_busy_ms"] = window / 1e3, length(kernels) / 1e3
        out["idle_us_per_layer_use"] = (window - length(kernels)) / max(n_layer_uses, 1)
    out["wait_for_layer_us_per_use"] = sum(waits) / max(len(waits), 1)
    return out

def _table(prof, keys) -> str:
    "The profiler's summary table, sorted by device time (the key's name changed across torch versions), else CPU time."
    for key in (*keys, "self_cpu_time_total"):
        try: return f"sorted by {key}\n" + prof.key_averages().table(sort_by=key, row_limit=40)
        except Exception: continue
    return "no table: no sort key worked"

@check("profiler_2_steps")
def check_profiler(ctx, rec):
    "A 2-step trace of streamed training: overlap, bandwidth, waits, idle gaps; the summary table into assets/."
    from torch.profiler import ProfilerActivity, profile
    _self_test_trace()
    x, mask, labels = batch(ctx)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.cuda else [])
    with build(ctx) as m:
        tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=LR))
        tr.train_step(x, labels=labels, attention_mask=mask)  # warm-up outside the trace
        t = time.perf_counter()
        for _ in range(3): tr.train_step(x, labels=labels, attention_mask=mask)
        if ctx.cuda: torch.cuda.synchronize()
        rec["step_ms"] = (time.perf_counter() - t) / 3 * 1e3  # unprofiled, for scale
        rec["tokens_per_s"] = x.numel() / rec["step_ms"] * 1e3
        with profile(activities=acts) as prof:
            for _ in range(2): tr.train_step(x, labels=labels, attention_mask=mask)
            if ctx.cuda: torch.cuda.synchronize()
    path = ctx.tmp / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text()).get("traceEvents", [])
    rec["trace_mb"] = round(path.stat().st_size / 2**20, 1); path.unlink()
    rec.update(trace_numbers(events, n_layer_uses=2 * 2 * ctx.L))  # 2 steps x (forward + backward) x layers
    table = _table(prof, ("self_device_time_total", "self_cuda_time_total") if ctx.cuda else ())
    head = f"# gpu_quick: 2 train steps, {ctx.L} layers, batch {ctx.size['batch']}, device {ctx.dev}\n"
    nums = "".join(f"# {k}: {_fmt(v)}\n" for k, v in rec.items())
    (ctx.out / f"gpu_quick_profile{ctx.suffix}.txt").write_text(head + nums + table + "\n")
    expect(rec["wait_for_layer_calls"] > 0, "no lema.wait_for_layer ranges in the trace (record_function renamed?)")
    if ctx.cuda:
        expect(rec["kernels"] > 0 and rec["h2d_copies"] > 0, "the trace has no kernels or no host-to-device copies")

# -- memory over 20 steps with NaN batches, then close() --------------------------------------------------------------
def _mem_row(ctx, m, step, seq, nan, loss, tr) -> dict:
    row = dict(step=step, seq=seq, nan_injected=nan, loss=loss, skipped_steps=tr.skipped_steps if tr else None)
    s = getattr(m, "streamer", None) if m is not None else None
    row["pinned_bytes"] = getattr(s, "pinned_bytes", None) if s is not None else None
    off = getattr(m, "offloader", None) if m is not None else None
    row["offloader_entries"] = len(off) if off is not None else None
    if ctx.cuda:
        row.update(allocated=torch.cuda.memory_allocated(), reserved=torch.cuda.memory_reserved(),
                   max_allocated=torch.cuda.max_memory_allocated())
        stats = getattr(torch.cuda, "host_memory_stats", None)
        if stats is not None:
            try:
                hs = stats()
                for k in ("active_bytes.current", "allocated_bytes.current", "active_requests.current"):
                    if k in hs: row[f"host_{k.replace('.', '_')}"] = hs[k]
            except Exception as e: row["host_stats_error"] = type(e).__name__
    return row

def _live_bytes(m, opt) -> int:
    """Device bytes the model still holds on purpose after close(): its own parameters and buffers (embedding, head,
    LoRA) and the optimizer's state; what close() frees (slots, fixed layers) is not among them."""
    seen = {}
    state = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
    tensors = [*m.parameters(), *m.buffers(), *state]
    for t in tensors:
        if t.device.type == "cuda": seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(-(-n // 512) * 512 for n in seen.values())  # the caching allocator rounds to 512 bytes

def _bound_frozen(m) -> int:
    "Frozen decoder-layer weights still bound to real memory (a slot, a fixed buffer): after close(), none should be."
    layers = getattr(m, "layers", [])
    return sum(1 for l in layers for p in l.parameters() if not p.requires_grad and p.device.type != "meta")

@check("memory_20_steps_nan_close")
def check_memory(ctx, rec):
    """Device and pinned memory over 20 steps of varying lengths with NaN batches (skipped: defect 4's offloader leak),
    then after close() (defect 5: the slots must be freed) and after the model is dropped."""
    lengths, nan_steps = ctx.size["mem_lengths"], {2, 7, 11}  # 4 rounds of 5 lengths; no NaN in the last round
    rows = []
    if ctx.cuda: torch.cuda.reset_peak_memory_stats()
    rows.append(_mem_row(ctx, None, "before model", None, False, None, None)); base = rows[-1].get("allocated")
    m = build(ctx, offload_activations=True, on_nonfinite_loss="skip")
    opt = torch.optim.AdamW(m.get_trainable_parameters(), lr=1e-3)
    tr = m.get_trainer(opt)
    poison = {"on": False}
    nan_out = lambda mod, inp, out: out * float("nan") if poison["on"] else None  # NaN hidden states: a NaN loss
    hook = m.get_input_embeddings().register_forward_hook(nan_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skip warnings of the NaN steps are expected
        for step in range(20):
            seq = lengths[step % len(lengths)]
            x, mask, labels = batch(ctx, T=seq, seed=step)
            poison["on"] = step in nan_steps
            _, loss = tr.train_step(x, labels=labels, attention_mask=mask)
            if ctx.cuda: torch.cuda.synchronize()
            rows.append(_mem_row(ctx, m, step, seq, poison["on"], loss.item(), tr))
    hook.remove()
    rec["skipped_steps"], rec["nan_steps"] = tr.skipped_steps, len(nan_steps)
    rec["offloader_entries_end"] = rows[-1]["offloader_entries"]
    rec["lora_finite"] = all(bool(torch.isfinite(p).all()) for p in m.get_trainable_parameters())
    rec["pinned_bytes_model"] = rows[-1]["pinned_bytes"]
    live = _live_bytes(m, opt) if ctx.cuda else None
    m.close()
    rows.append(_mem_row(ctx, m, "after close", None, False, None, tr))
    rec["pinned_bytes_after_close"] = rows[-1]["pinned_bytes"]
    rec["frozen_bound_after_close"] = _bound_frozen(m)
    del m, tr, opt, hook; gc.collect()
    if ctx.cuda: torch.cuda.synchronize()
    rows.append(_mem_row(ctx, None, "after del", None, False, None, None))
    _write_rows(ctx.out / f"gpu_quick_memory{ctx.suffix}.csv", rows)
    if ctx.cuda: _judge_device_memory(rec, rows, base, live, len(lengths))
    expect(rec["skipped_steps"] == len(nan_steps),
           f"{rec['skipped_steps']} steps skipped for {len(nan_steps)} NaN batches")
    expect(rec["lora_finite"], "the LoRA weights went non-finite: a NaN batch reached the update")
    expect(not rec["offloader_entries_end"], f"{rec['offloader_entries_end']} offloaded inputs still held after the "
                                             "last (good) step: the NaN steps leaked them (defect 4)")
    expect(not rec["pinned_bytes_after_close"], f"{rec['pinned_bytes_after_close']} bytes still pinned after close()")
    if not ctx.cuda:  # no allocator numbers on the CPU: the layers' bound weights are what keeps slots alive (defect 5)
        expect(rec["frozen_bound_after_close"] == 0, f"{rec['frozen_bound_after_close']} frozen layer weights still "
                                                     "view a slot or fixed buffer after close() (defect 5)")

def _judge_device_memory(rec, rows, base, live, period):
    "Flat over the rounds (same lengths, same bytes), back down after close() and after the model is gone."
    steps = [r for r in rows if isinstance(r["step"], int)]
    pairs = [(a, b) for a in steps for b in steps  # the same length two rounds later, neither step a NaN one
             if b["step"] == a["step"] + 2 * period and not (a["nan_injected"] or b["nan_injected"])]
    rec["alloc_growth_bytes"] = max((b["allocated"] - a["allocated"] for a, b in pairs), default=None)
    # pinned host memory: recorded, not judged (the caching host allocator frees a block only once its stream's
    # events have passed, so a step's end can still count some as active)
    for k in ("host_active_bytes_current", "host_allocated_bytes_current"):
        if k in steps[0] and pairs: rec[k.replace("_current", "_growth")] = max(b[k] - a[k] for a, b in pairs)
    rec["peak_allocated_mib"] = max(r["max_allocated"] for r in steps) / 2**20
    close, gone = rows[-2], rows[-1]
    rec["after_close_minus_base_mib"] = (close["allocated"] - base) / 2**20
    rec["expected_live_mib"] = live / 2**20
    rec["after_del_minus_base_mib"] = (gone["allocated"] - base) / 2**20
    slack = 2 * 2**20
    expect(rec["alloc_growth_bytes"] is not None and rec["alloc_growth_bytes"] <= slack,
           f"device memory grew {rec['alloc_growth_bytes']} bytes over two rounds of the same lengths")
    expect(close["allocated"] - base <= live + slack,
           f"after close(): {rec['after_close_minus_base_mib']:.1f} MiB above the start, only "
           f"{rec['expected_live_mib']:.1f} MiB (embedding, head, LoRA, AdamW) should remain (defect 5)")
    expect(gone["allocated"] - base <= slack,
           f"{rec['after_del_minus_base_mib']:.1f} MiB still allocated once the model is gone")

def _write_rows(path: Path, rows: list):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys); w.writeheader(); w.writerows(rows)

# -- float16 with the scaler ------------------------------------------------------------------------------------------
@check("fp16_scaler_vs_fp32")
def check_fp16(ctx, rec):
    "float16 under the trainer's GradScaler against float32: close losses, no step skipped after the first."
    steps, x_mask_labels = 6, batch(ctx)
    x, mask, labels = x_mask_labels
    curves = {}
    for dt in ("float32", "float16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a skipped first step (the scale finding its level) warns
            with build(ctx, dtype=dt) as m:
                tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=1e-3))
                losses, skipped = [], []
                for _ in range(steps):
                    losses.append(tr.train_step(x, labels=labels, attention_mask=mask)[1].float().item())
                    skipped.append(tr.skipped_steps)
                curves[dt] = losses
                if dt == "float16":
                    rec["scaler"] = type(tr.scaler).__name__ if tr.scaler is not None else None
                    rec["final_scale"] = float(tr.scaler.get_scale()) if tr.scaler is not None else None
                    rec["skipped"] = skipped
                    rec["lora_finite"] = all(bool(torch.isfinite(p).all()) for p in m.get_trainable_parameters())
    rec["loss_fp32"], rec["loss_fp16"] = curves["float32"], curves["float16"]
    rec["max_rel"] = max(rel(a, b) for a, b in zip(curves["float16"], curves["float32"]))
    expect(rec["scaler"] is not None, "no GradScaler made for a float16 model")
    expect(rec["skipped"][-1] - rec["skipped"][0] == 0, f"steps skipped after the first: {rec['skipped']}")
    expect(rec["lora_finite"], "non-finite LoRA weights in float16")
    expect(rec["max_rel"] < TOL["fp16_loss"], f"float16 losses {rec['max_rel']:.2e} from float32's (tolerance "
                                              f"{TOL['fp16_loss']})")

# -- the real model ---------------------------------------------------------------------------------------------------
@check("real_model_vs_peft")
def check_real_model(ctx, rec):
    "A converted real model (LEMA_REAL_MODEL_DIR, e.g. SmolLM2-135M-Instruct) against PEFT, float32, default targets."
    src = os.environ.get("LEMA_REAL_MODEL_DIR")
    if not src: raise Skip("LEMA_REAL_MODEL_DIR not set (the GGUF wheel, 93 MB, is over the 64 MiB transfer limit)")
    if not Path(src, "config.json").is_file(): raise Skip(f"LEMA_REAL_MODEL_DIR={src} has no config.json")
    targets = ["q_proj", "v_proj"]
    init = init_adapter(ctx, src, targets=targets, rank=8)
    B, T = (2, 64) if ctx.cuda else (1, 16)
    V = json.loads(Path(src, "config.json").read_text()).get("vocab_size")  # its own vocabulary, not the tiny one's
    ref = peft_reference(ctx, src, init=init, steps=2, B=B, T=T, V=V)
    with build(ctx, src, init=init, lora_target_modules=targets, lora_rank=8, lora_alpha=16) as m:
        rec["layers"] = len(m.layers)
        ours = lema_run(m, ctx, steps=2, B=B, T=T, V=V)
    compare(rec, ours, ref, TOL["loss"], 1e-4)  # 30 layers of float32 reductions: looser on the grads

# -- the memory plan (issue 24) ---------------------------------------------------------------------------------------
def _plan_step(ctx, m, B, T, seed=0):
    "A `fit`-like step (no logits) of `m` on a B x T batch: the trainer, then a function running one step."
    tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=LR))
    x = torch.randint(3, m.hf_config.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed)).to(ctx.dev)
    return lambda: tr.train_step(x, labels=x, return_logits=False)

@check("plan_estimate")
def check_plan(ctx, rec):
    """The plan's estimate against what a step allocates, float32 and bfloat16: on CUDA the whole peak
    (`max_memory_allocated`) against the plan's; on the CPU the step's own allocations (the profiler's) against the
    plan's activations. Never below, at most 10% above."""
    from lema import LemaModel
    from lema.gbi import save_tiny_model
    from lema.plan import allocated_during
    src = ctx.tmp / "plan"  # widths where activations, not constants, are the step's memory (as in notebook 02a)
    save_tiny_model(src, "llama", num_hidden_layers=6, hidden_size=384, intermediate_size=1024, num_attention_heads=6,
                    num_key_value_heads=2, vocab_size=8192, max_position_embeddings=1024)
    B, T = (2, 512) if ctx.cuda else (1, 384)
    for dt in ("float32", "bfloat16"):
        cfg = lema_config(ctx, src, dtype=dt, device_budget_gb="auto", batch_size=B, max_seq_length=T, lora_rank=16,
                          lora_alpha=32)
        before = torch.cuda.memory_allocated() if ctx.cuda else 0  # (cuBLAS' workspace and the like: not ours)
        with LemaModel(cfg) as m:
            m.initialize_lora(seed=1); plan = m.flight_check(B, T, verbose=False); step = _plan_step(ctx, m, B, T)
            step()  # AdamW's moments exist from here on, as in a run
            if ctx.cuda:
                torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
                step(); torch.cuda.synchronize(); got, est = torch.cuda.max_memory_allocated() - before, plan.peak
            else:
                got = allocated_during(step)
                est = plan.parts["kept_activations"] + plan.parts["step_peak"]
        rec[dt] = dict(plan=str(plan), measured_mb=got / 2**20, estimated_mb=est / 2**20, ratio=est / got)
        expect(1.0 <= est / got <= 1.10, f"{dt}: estimate {est / 2**20:.1f} MB against {got / 2**20:.1f} MB measured")

@check("plan_kept_speed")
def check_kept_speed(ctx, rec):
    """A model the device holds (`device_budget_gb="auto"`): the plan keeps every layer and nothing streams. Then a
    training step against PEFT's (activations kept on both sides) and greedy `generate` against transformers' and
    PEFT's, interleaved rounds, medians (issue 24's targets: a step <= 1.05x PEFT's, generate >= 0.95x transformers').
    The timings are recorded, not asserted: they are a benchmark's, not a test's."""
    import statistics
    from lema import LemaModel
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    if ctx.cuda:  # a real shape: a layer's kernels take what they take on a GPU, and host work shows beside them
        from lema.bench import build_model
        src, dt, (B, T), rounds = build_model("smollm2-135m", "bfloat16", root=ctx.tmp), "bfloat16", (1, 512), 5
    else: src, dt, (B, T), rounds = base_dir(ctx), "float32", ctx.size["batch"], 2
    targets = ["q_proj", "v_proj"]
    V = json.loads(Path(src, "config.json").read_text())["vocab_size"]
    x = torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(0)).to(ctx.dev)
    prompt, gen = x[:1, :32], dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
    load = lambda: AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, dt)).to(ctx.dev)
    cfg = lema_config(ctx, src, dtype=dt, device_budget_gb="auto", gradient_checkpointing=False, lora_rank=8,
                      lora_alpha=16, lora_target_modules=targets, batch_size=B, max_seq_length=T)
    with LemaModel(cfg) as m:
        m.initialize_lora(seed=1)
        rec["plan"] = str(m.memory_plan)
        require(m.memory_plan.resident == len(m.layers),
                f"the plan keeps {m.memory_plan.resident} of {len(m.layers)} layers of a model the device holds")
        tr = m.get_trainer(torch.optim.AdamW(m.get_trainable_parameters(), lr=LR))
        hf = load().eval()
        pm = get_peft_model(load(), LoraConfig(r=8, lora_alpha=16, target_modules=targets, lora_dropout=0.0))
        popt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=LR)
        def peft_step(): pm(input_ids=x, labels=x).loss.backward(); popt.step(); popt.zero_grad()
        timed = lambda runs: {k: statistics.median(v) for k, v in timed_rounds(ctx, runs, rounds).items()}
        pm.train()
        steps = timed(dict(lema=lambda: tr.train_step(x, labels=x, return_logits=False), peft=peft_step))
        pm.eval()
        gens = timed(dict(lema=lambda: m.generate(prompt, **gen), peft=lambda: pm.generate(input_ids=prompt, **gen),
                          transformers=lambda: hf.generate(prompt, **gen)))
        expect(m.streamer.stats.get("loads", 0) == 0, f"{m.streamer.stats['loads']} layer loads with every layer kept")
        rec.update(shape=[B, T], dtype=dt, rounds=rounds, step_s=steps, generate_s=gens,
                   step_vs_peft=steps["lema"] / steps["peft"],
                   generate_vs_transformers=gens["transformers"] / gens["lema"],  # tokens/s: the inverse of the time
                   generate_vs_peft=gens["peft"] / gens["lema"])
        rec["targets_met"] = dict(step=rec["step_vs_peft"] <= 1.05, generate=rec["generate_vs_transformers"] >= 0.95)
        del hf, pm, popt

@check("plan_7b", needs_cuda=True)
def check_plan_7b(ctx, rec):
    """Llama-2-7B's shape in bfloat16 at 512 tokens under caps of 8 and 16 GB: the plan, its estimate against
    `max_memory_allocated` (never below, at most 10% above), the step time; PEFT with checkpointing at 16 GB."""
    from lema import LemaModel
    from lema.bench import TARGETS as T_, build_model
    total = torch.cuda.get_device_properties(0).total_memory
    path = build_model("llama-2-7b", "bfloat16", root=ctx.tmp)  # 13.5 GB of random weights, written once
    try:
        for cap in (8, 16):
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap * GIB / total), 0)
            cfg = lema_config(ctx, path, dtype="bfloat16", lora_rank=16, lora_alpha=32, lora_target_modules=T_["llama"],
                              device_budget_gb="auto", batch_size=1, max_seq_length=512)
            before = torch.cuda.memory_allocated()
            with LemaModel(cfg) as m:
                m.initialize_lora(seed=1); plan = m.flight_check(1, 512, verbose=False)
                step = _plan_step(ctx, m, 1, 512)
                step(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); times = []
                for _ in range(3):
                    t = time.perf_counter(); step(); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
                got = torch.cuda.max_memory_allocated() - before
            rec[f"cap_{cap}"] = dict(plan=str(plan), kept=plan.resident, measured_gb=got / GIB,
                                     estimated_gb=plan.peak / GIB, ratio=plan.peak / got, step_s=sorted(times)[1])
            expect(1.0 <= plan.peak / got <= 1.10, f"{cap} GB: estimate {plan.peak / GIB:.2f} GB against "
                                                  f"{got / GIB:.2f} GB measured")
            _tidy(ctx)
        from transformers import AutoModelForCausalLM
        from peft import LoraConfig, get_peft_model
        pm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(ctx.dev)
        pm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        pm.enable_input_require_grads()
        pm = get_peft_model(pm, LoraConfig(r=16, lora_alpha=32, target_modules=T_["llama"])); pm.train()
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=LR)
        x = torch.randint(3, 32000, (1, 512), generator=torch.Generator().manual_seed(0)).to(ctx.dev); times = []
        for i in range(4):
            t = time.perf_counter(); pm(input_ids=x, labels=x).loss.backward(); opt.step(); opt.zero_grad()
            torch.cuda.synchronize(); times.append(time.perf_counter() - t)
        rec["peft_gc_step_s"] = sorted(times[1:])[1]
        rec["lema_16gb_vs_peft_gc"] = rec["cap_16"]["step_s"] / rec["peft_gc_step_s"]
        del pm, opt
    finally:
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_BYTES / total), 0)

@check("seed_call_speed")
def check_seed_call_speed(ctx, rec):
    """Issue 23's seed call, `logits, loss = trainer.train_step(x, labels=x)`, against PEFT: checkpointed against PEFT
    with gradient checkpointing (target <= 1.00x), activations kept against PEFT without (<= 1.10x); LEMA as its
    default plans it on this device (every layer kept where it fits) and, checkpointed, every layer streamed. The
    bench's own runs (`lema.bench`), interleaved rounds that each start one run later, each round's ratio; recorded,
    not asserted: on the CPU box a run's noise (about 9% either way) hid whether the checkpointed call is at or under
    1.00x, and a GPU's timings are steadier."""
    import statistics
    from lema.bench import DEFAULTS, _lema_trainee, _peft_trainee, build_model
    if ctx.cuda: src, dt, T, rounds = build_model("smollm2-135m-untied", "bfloat16", root=ctx.tmp), "bfloat16", 512, 5
    else: src, dt, T, rounds = base_dir(ctx), "float32", ctx.size["batch"][1], 2
    base = {**DEFAULTS, "device": ctx.dev, "dtype": dt, "rank": 16, "return_logits": True}
    lema = lambda **kw: _lema_trainee(src, {**base, **kw}, TARGETS)
    runs = {"peft": _peft_trainee(src, {**base, "gradient_checkpointing": False}, TARGETS),
            "lema-nogc-logits-auto": lema(gradient_checkpointing=False, budget_gb="auto"),
            "peft-gc": _peft_trainee(src, {**base, "gradient_checkpointing": True}, TARGETS),
            "lema-logits-auto": lema(budget_gb="auto"),
            "lema-logits": lema()}  # every layer streamed through two slots
    V = json.loads(Path(src, "config.json").read_text())["vocab_size"]
    x = torch.randint(3, V, (1, T), generator=torch.Generator().manual_seed(0)).to(ctx.dev)
    try: times = timed_rounds(ctx, {k: (lambda f=f: f(x)) for k, f in runs.items()}, rounds)
    finally:
        for f in runs.values():
            if getattr(f, "streamer", None) is not None: f.streamer.close()
    ratio = lambda run, ref: [a / b for a, b in zip(times[run], times[ref])]  # each round's own
    rec.update(shape=[1, T], dtype=dt, rounds=rounds, step_s={k: statistics.median(v) for k, v in times.items()},
               plans={k: str(f.plan) for k, f in runs.items() if hasattr(f, "plan")})
    for run, ref in (("lema-nogc-logits-auto", "peft"), ("lema-logits-auto", "peft-gc"), ("lema-logits", "peft-gc")):
        p = ratio(run, ref)
        rec[f"{run}_vs_{ref}"] = dict(median=statistics.median(p), min=min(p), max=max(p))
    rec["targets_met"] = dict(kept=rec["lema-nogc-logits-auto_vs_peft"]["median"] <= 1.10,
                              checkpointed=rec["lema-logits-auto_vs_peft-gc"]["median"] <= 1.00)

# ---------------------------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="device 'cpu': run what needs no CUDA, skip the rest")
    ap.add_argument("--out", default=str(ROOT / "assets"), help="where the results go")
    ap.add_argument("--budget-s", type=float, default=330.0, help="checks not started by then are SKIPPED")
    ap.add_argument("--only", default=None, help="comma-separated check names (prefixes) to run; the rest are skipped")
    args = ap.parse_args(argv)
    t0 = time.time()
    faulthandler.dump_traceback_later(args.budget_s + 40, exit=True)  # a hang prints every thread's stack, then ends
    ctx = make_context(args)
    if ctx.cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 means float32
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_BYTES / total), 0)
        a = torch.ones(64, 64, device=ctx.dev, requires_grad=True); (a @ a).sum().backward()  # cuBLAS workspace: made
        del a  # now, so no check counts it as its own memory
    else: torch.set_num_threads(1)  # shared cores: oversubscription, not the code, would dominate
    settings = dict(argv=sys.argv[1:], memory_cap_gib=CAP_BYTES / GIB if ctx.cuda else None, tolerances=TOL,
                    size=ctx.size, real_model_dir=os.environ.get("LEMA_REAL_MODEL_DIR"), budget_s=args.budget_s)
    report = Report(ctx.out, ctx.suffix, machine_info(ctx.cuda), settings)
    if args.only:
        keep = tuple(args.only.split(","))
        CHECKS[:] = [c for c in CHECKS if c[0] == "imports" or c[0].startswith(keep)]
    try: run_checks(ctx, report, deadline=t0 + args.budget_s)
    finally:
        summary = report.summary(time.time() - t0)
        report.write(summary); print(summary, flush=True)
        faulthandler.cancel_dump_traceback_later()
        shutil.rmtree(ctx.tmp, ignore_errors=True)  # the tiny checkpoints and adapters
    return 1 if any(r["status"] == "FAIL" for r in report.rows) else 0

if __name__ == "__main__": sys.exit(main())
