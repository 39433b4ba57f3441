"""The mutants `tools/mutate.py` plants, one realistic bug each.

Each is a dict:
  name       short id (for `--only`)
  file       the exported module, e.g. "lema/lora.py"
  old        an exact snippet that occurs exactly once in `file` and in exactly one cell of its notebook
  new        what replaces it (the bug)
  notebooks  notebooks most likely to catch it: run first (a hint; every notebook runs if these pass)
  sees       one line: what a user would see if this bug shipped

When the code changes and a mutant turns "stale", copy the current line from lema/*.py into `old` and redo `new`.
Snippets are matched verbatim (indentation included); keep them to one line, or a few where a line is ambiguous.
"""

MUTANTS = [
    dict(name="lora-scaling", file="lema/lora.py",
         old="if use_rslora else alpha / r",
         new="if use_rslora else alpha / (r + 1)",
         notebooks=["nbs/03_lora.ipynb"],
         sees="adapters train and infer with the wrong strength: logits differ from PEFT's for the same weights"),

    dict(name="pad-labels", file="lema/trainer.py",
         old="labels = input_ids if attention_mask is None else input_ids.masked_fill(attention_mask == 0, -100)",
         new="labels = input_ids",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="padded batches without labels train on the pad tokens (loss and eval perplexity include padding)"),

    dict(name="file-pages-kept", file="lema/memory.py",
         old="        self.gbi.release(r)  # the bytes now live in `dst`",
         new="        pass  # the bytes now live in `dst`",
         notebooks=["nbs/02_memory.ipynb", "nbs/09_reliability.ipynb"],
         sees="RSS grows with every layer read until the whole checkpoint is mapped in (the 'streaming' saves no host RAM)"),

    dict(name="layer-inputs-leak", file="lema/adapters.py",
         old="ctx.save_for_backward(hidden)",
         new='ctx.save_for_backward(hidden); globals().setdefault("_LEAK", []).append(hidden)',
         notebooks=["nbs/09_reliability.ipynb"],
         sees="memory grows every step (each layer's input is kept forever) until the run dies of OOM"),

    dict(name="cli-resume-ignored", file="lema/cli.py",
         old="trainer.load_checkpoint(ck); say(",
         new="say(",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`lema train --resume` prints 'resumed from ...' but starts again from step 0 with fresh adapters"),

    dict(name="accum-no-divide", file="lema/trainer.py",
         old="            loss = out.loss if num_items_in_batch is not None else out.loss / self.config.gradient_accumulation_steps",
         new="            loss = out.loss",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="with gradient_accumulation_steps=k the update is k times too large (differs from one big batch)"),

    dict(name="num-items-ignored", file="lema/adapters.py",
         old="chunk, num_items_in_batch,\n",
         new="chunk, None,\n",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="num_items_in_batch never reaches the loss: each micro-batch is its own mean, uneven windows differ from the full batch"),

    dict(name="optimizer-state-not-restored", file="lema/trainer.py",
         old="    self.optimizer.load_state_dict(opt_sd)\n",
         new="",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a resumed run restarts AdamW's moments: its losses diverge from the uninterrupted run"),

    dict(name="backward-prefetch-wrong-layer", file="lema/adapters.py",
         old="sl.streamer.use(sl.idx, next=sl.idx - 1)",
         new="sl.streamer.use(sl.idx, next=sl.idx + 1)",
         notebooks=["nbs/04_adapters.ipynb", "nbs/02_memory.ipynb"],
         sees="the backward waits for every layer's disk read (no overlap): slower steps, same numbers"),

    dict(name="gbi-num-layers-off-by-one", file="lema/gbi.py",
         old="max(counts[self.layer_prefix]) + 1 if counts else 0",
         new="max(counts[self.layer_prefix]) if counts else 0",
         notebooks=["nbs/01_gbi.ipynb"],
         sees="the index reports one decoder layer fewer than the checkpoint has"),

    dict(name="save-adapter-B-under-A-key", file="lema/lora.py",
         old='tensors[f"{PEFT_PREFIX}{n}.lora_A.weight"] = m.lora_A.weight',
         new='tensors[f"{PEFT_PREFIX}{n}.lora_A.weight"] = m.lora_B.weight',
         notebooks=["nbs/03_lora.ipynb", "nbs/06_model.ipynb"],
         sees="saved adapters hold B under A's key: PEFT (and LEMA) cannot load them, or load the wrong weights"),

    dict(name="attention-mask-dropped", file="lema/adapters.py",
         old="attention_mask=mv(attention_mask), labels=mv(labels)",
         new="attention_mask=None, labels=mv(labels)",
         notebooks=["nbs/04_adapters.ipynb", "nbs/05_trainer.ipynb"],
         sees="padded batches attend to the pad tokens: logits and loss differ from PEFT's on the same batch"),

    dict(name="scheduler-not-restored-in-fit", file="lema/trainer.py",
         old="num_training_steps=total)\n        self._restore_scheduler()\n",
         new="num_training_steps=total)\n",
         notebooks=["nbs/05_trainer.ipynb", "nbs/07_cli.ipynb"],
         sees="a resumed `fit` restarts the learning-rate schedule from step 0 (warm-up again, wrong LR)"),

    dict(name="save-deletes-old-first", file="lema/lora.py",
         old="        yield tmp\n",
         new="        shutil.rmtree(path, ignore_errors=True)  # make room first\n        yield tmp\n",
         notebooks=["nbs/09_reliability.ipynb", "nbs/03_lora.ipynb"],
         sees="a crash during a save loses the previous checkpoint too (nothing left to resume from)"),

    dict(name="resume-replays-batches", file="lema/trainer.py",
         old="skip = self.global_step * k + self.micro_step",
         new="skip = 0",
         notebooks=["nbs/05_trainer.ipynb", "nbs/07_cli.ipynb"],
         sees="a resumed `fit` trains again on the batches it already saw: it differs from the uninterrupted run"),

    # -- issue 10's own features --
    dict(name="save-no-recovery", file="lema/lora.py",
         old="    if not path.exists() and _old(path).is_dir(): os.replace(_old(path), path)\n",
         new="",
         notebooks=["nbs/09_reliability.ipynb", "nbs/03_lora.ipynb"],
         sees="a save killed between its two renames leaves no checkpoint: load says 'not a LEMA checkpoint'"),

    dict(name="save-leftovers-kept", file="lema/lora.py",
         old="    for p in _leftovers(path): shutil.rmtree(p)\n",
         new="",
         notebooks=["nbs/03_lora.ipynb", "nbs/09_reliability.ipynb"],
         sees="temporary directories of killed saves pile up beside the checkpoint for ever"),

    dict(name="window-items-not-saved", file="lema/trainer.py",
         old='"window_items": self._window_items,',
         new='"window_items": None,',
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a run resumed in the middle of an accumulation window weighs that window's tokens wrongly"),

    dict(name="default-run-unchecked", file="lema/cli.py",
         old="    if not diff <= atol:  # (NaN too)",
         new="    if False:  # (NaN too)",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`lema train` says PEFT reads the adapter without checking it: a broken adapter ships silently"),

    # -- issue 11: the chunked loss --
    dict(name="loss-unshifted", file="lema/loss.py",
         old="targets = F.pad(labels, (0, 1), value=-100)[..., 1:].reshape(-1)",
         new="targets = F.pad(labels, (0, 1), value=-100)[..., :-1].reshape(-1)",
         notebooks=["nbs/03a_loss.ipynb", "nbs/04_adapters.ipynb"],
         sees="each position learns to predict itself, not the next token: the loss collapses, generation is garbage"),

    dict(name="loss-backward-unscaled", file="lema/loss.py",
         old="if ctx.grad_scale is None and grad.dtype == torch.float32: out = grad * grad_total.to(grad.dtype)  # PEFT's bits",
         new="if ctx.grad_scale is None and grad.dtype == torch.float32: out = grad  # PEFT's bits",
         notebooks=["nbs/03a_loss.ipynb", "nbs/04_adapters.ipynb"],
         sees="gradients are the token-sum's, not the mean's: the step size grows with the number of tokens"),

    dict(name="loss-mean-over-pads", file="lema/loss.py",
         old="denom = (targets != -100).sum() if num_items_in_batch is None else num_items_in_batch",
         new="denom = targets.numel() if num_items_in_batch is None else num_items_in_batch",
         notebooks=["nbs/03a_loss.ipynb", "nbs/05_trainer.ipynb"],
         sees="padded batches report a smaller loss and train with smaller steps than PEFT on the same data"),

    # -- issue 11: embedding on the host, layer inputs offloaded --
    dict(name="offload-wrong-input", file="lema/adapters.py",
         old="                    hidden = sl.offloader.get(ctx.offloaded)",
         new="                    hidden = sl.offloader.get(sl.offloader.host.get((ctx.offloaded.key[0], max(sl.idx - 1, 0)), ctx.offloaded))",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="with offload_activations the backward recomputes a layer from another layer's input: wrong gradients"),

    dict(name="host-embedding-no-cast", file="lema/adapters.py",
         old="        if rows.is_floating_point() and rows.dtype != self.dtype: rows = rows.to(self.dtype)",
         new="        pass",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="embedding_on_host with bf16 compute sends float32 rows: dtype errors or a float32 residual stream"),

    dict(name="num-items-ignored-whole-loss", file="lema/adapters.py",
         old="        kw = {} if num_items_in_batch is None else dict(num_items_in_batch=num_items_in_batch)",
         new="        kw = {}",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="with loss_chunk_size=None, num_items_in_batch never reaches transformers' loss: uneven windows are wrong"),

    # -- bitsandbytes 4-bit (issue 12) --
    dict(name="nf4-offset-dropped", file="lema/quant.py",
         old="        absmax = absmax + spec.nested_offset  # a Python float: no host-to-device copy (and no sync) per weight",
         new="        absmax = absmax",
         notebooks=["nbs/01a_quant.ipynb"],
         sees="double-quantized checkpoints train on weights scaled wrongly: losses drift from QLoRA's"),

    dict(name="nf4-state-cast", file="lema/memory.py",
         old="        elif self.dtype is not None and t.is_floating_point() and t.dtype != self.dtype: t = t.to(self.dtype)",
         new="        elif self.dtype is not None and t.is_floating_point() and t.dtype != self.dtype: t = t.to(self.dtype)\n"
             "        if name in quant and self.dtype not in (None, torch.float32): t = t.to(torch.bfloat16).to(self.dtype)",
         notebooks=["nbs/01a_quant.ipynb", "nbs/02_memory.ipynb"],
         sees="16-bit runs of a 4-bit model round every dequantized weight through bfloat16 (fp16 loses 3 bits)"),

    dict(name="nf4-head-quantized", file="lema/quant.py",
         old="    skip = set(get_keys_to_not_convert(model))",
         new="    skip = set()",
         notebooks=["nbs/01a_quant.ipynb"],
         sees="`lema convert --quantize` also quantizes the head (transformers keeps it full precision): a worse model"),

    dict(name="nf4-size-unchecked", file="lema/quant.py",
         old="        elif gbi.tensors[name].nbytes != spec.packed_bytes:",
         new="        elif False:",
         notebooks=["nbs/01a_quant.ipynb"],
         sees="a truncated packed weight streams garbage (or reads past its tensor) instead of a clear GBIError"),

    dict(name="nf4-convert-holds", file="lema/quant.py",
         old="            return _tensor_bytes(cache.pop(suffix))",
         new="            return _tensor_bytes(cache[suffix])",
         notebooks=["nbs/01a_quant.ipynb"],
         sees="`lema convert --quantize` keeps every quantized tensor until the end: a 70B conversion needs 37 GB of RAM"),

    # -- CUDA-path defects found by reading (issue 13), shown on CPU --
    dict(name="grad-norm-unchecked", file="lema/trainer.py",
         old="                if not bool(torch.isfinite(norm)):  # device-to-host sync: once per optimizer step",
         new="                if False:",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="one infinite gradient (finite loss) turns every adapter into NaN for the rest of the run"),

    dict(name="scaler-unscaled-clip", file="lema/trainer.py",
         old="                    with view(): self.scaler.unscale_(self.optimizer)",
         new="                    pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="float16 runs clip the scaled gradients (by 2^16): updates shrink to nothing, reported grad norms are huge"),

    dict(name="recompute-autocast-lost", file="lema/adapters.py",
         old="                with torch.enable_grad(), _autocast(ctx.autocast), _replay_rng(ctx.rng, sl.streamer.device):",
         new="                with torch.enable_grad(), _replay_rng(ctx.rng, sl.streamer.device):",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="under torch.autocast the backward recomputes each layer in float32: gradients of a different forward"),

    dict(name="to-copies-weights", file="lema/model.py",
         old="                    setattr(self.loras[n], ab, getattr(old, ab))  # the same module, the same Parameter",
         new="                    getattr(self.loras[n], ab).weight.data.copy_(p.data)",
         notebooks=["nbs/06_model.ipynb"],
         sees="after model.to(device) the trainer made earlier steps tensors the model no longer uses: training silently stops"),

    dict(name="dtype-auto-float32", file="lema/adapters.py",
         old="    return dt if dt in (torch.float32, torch.float16, torch.bfloat16) else torch.float32",
         new="    return torch.float32",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="a bfloat16 checkpoint computes in float32 by default: twice the device memory and time of transformers' dtype='auto'"),

    dict(name="close-keeps-thread", file="lema/memory.py",
         old="    self._pool.shutdown(wait=True)",
         new="    pass",
         notebooks=["nbs/02_memory.ipynb", "nbs/06_model.ipynb"],
         sees="close() leaves the prefetch thread (and on a GPU its DMA) running: a re-run notebook cell piles them up"),

    dict(name="fixed-keeps-raw", file="lema/memory.py",
         old="    return None, {n: t.clone() if t.untyped_storage().data_ptr() == ptr else t for n, t in views.items()}",
         new="    return buf, {n: t.clone() if t.untyped_storage().data_ptr() == ptr else t for n, t in views.items()}",
         notebooks=["nbs/02_memory.ipynb", "nbs/04_adapters.ipynb"],
         sees="device_budget_gb is overshot by the stored bytes kept beside the cast copies (3x the budget for fp32 -> bf16)"),

    # -- the user's loop (issue 14) --
    dict(name="dropout-rng-not-replayed", file="lema/adapters.py",
         old="                with torch.enable_grad(), _autocast(ctx.autocast), _replay_rng(ctx.rng, sl.streamer.device):",
         new="                with torch.enable_grad(), _autocast(ctx.autocast), _replay_rng(None, sl.streamer.device):",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="with lora_dropout and checkpointing the backward recomputes each layer with other dropout masks: wrong gradients"),

    dict(name="trainer-unshifted-count", file="lema/model.py",
         old='    main_input_name, loss_type = "input_ids", "ForCausalLM"',
         new='    main_input_name, loss_type = "input_ids", None',
         notebooks=["nbs/06c_trainers.ipynb"],
         sees="under transformers' Trainer every loss is divided by a token count one per row too large (PEFT's losses differ)"),

    # -- every architecture (issue 15) --
    dict(name="buffers-uninitialised", file="lema/adapters.py",
         old="        model._init_weights(mod)  # transformers' own initialisation fills them from the config",
         new="        pass",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="rotary frequencies and embedding scales are uninitialised memory: garbage logits for every model"),

    dict(name="softcap-ignored", file="lema/adapters.py",
         old="    plain = model.get_output_embeddings() is not None and not any(getattr(text, k, None) for k in _SCALED_HEADS)",
         new="    plain = model.get_output_embeddings() is not None",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="Gemma 2 and Granite train on logits without their softcap/scale: losses differ from PEFT's"),

    # -- mixture of experts (issue 15) --
    dict(name="moe-expert-order", file="lema/moe.py",
         old="    for key in sorted(tensors, key=dot_natural_key):  # transformers' order: expert 2 before expert 10",
         new="    for key in sorted(tensors):  # transformers' order: expert 2 before expert 10",
         notebooks=["nbs/01c_moe.ipynb"],
         sees="a model with 10+ experts streams expert 10's weights as expert 2's: wrong logits, silently"),

    dict(name="moe-gate-up-swapped", file="lema/moe.py",
         old="        return [keys[p][e] for e in range(len(keys[pats[0]])) for p in pats]",
         new="        return [keys[p][e] for e in range(len(keys[pats[0]])) for p in pats[::-1]]",
         notebooks=["nbs/01c_moe.ipynb", "nbs/04_adapters.ipynb"],
         sees="each expert's up projection is used as its gate and the gate as up: a different model than transformers'"),

    dict(name="moe-stack-by-projection", file="lema/moe.py",
         old="        return [keys[p][e] for e in range(len(keys[pats[0]])) for p in pats]",
         new="        return [k for p in pats for k in keys[p]]",
         notebooks=["nbs/01c_moe.ipynb", "nbs/04_adapters.ipynb"],
         sees="gate_up_proj laid out all gates then all ups (not per expert): every expert computes with wrong weights"),

    dict(name="lora-param-b-layout", file="lema/lora.py",
         old="        b = self.lora_B.weight.reshape(self.out_features, -1, self.num_experts).permute(2, 0, 1)",
         new="        b = self.lora_B.weight.reshape(self.out_features, self.num_experts, -1).permute(1, 0, 2)",
         notebooks=["nbs/03_lora.ipynb", "nbs/04_adapters.ipynb"],
         sees="expert LoRA weights pair with the wrong experts: adapters saved by LEMA mean something else in PEFT"),

    dict(name="lora-param-nesting", file="lema/lora.py",
         old="        for pname in list(m._parameters):",
         new="        for pname in reversed(list(m._parameters)):",
         notebooks=["nbs/03_lora.ipynb"],
         sees="gate_up_proj's and down_proj's expert adapters swap names in the file: PEFT cannot load LEMA's adapter"),

    # -- data parallel (issue 16) --
    dict(name="dist-sum-not-mean", file="lema/distributed.py",
         old="    flat[1:].div_(d.world_size)",
         new="    pass",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="two ranks step with twice the gradient (clipping and the schedule see a doubled norm): not DDP's training"),

    dict(name="dist-no-broadcast", file="lema/adapters.py",
         old="    broadcast_from_main(self.dist, self.get_trainable_parameters())\n",
         new="    pass\n",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="each rank starts from its own random adapter: the ranks train different models and rank 0 saves its own"),

    dict(name="dist-shard-ignored", file="lema/trainer.py",
         old="    train_dataloader = shard_loader(d, train_dataloader, seed=c.seed)\n",
         new="    pass\n",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="every rank trains on the whole data set: two GPUs do the same work twice, an epoch is seen twice per step"),

    dict(name="dist-eval-not-summed", file="lema/trainer.py",
         old="    total, n = sum_over_ranks(d, total, n)\n",
         new="    pass\n",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="the evaluation loss is rank 0's share only: logged eval loss depends on the number of GPUs"),

    # issue 21: the CUDA path, run on the simulated GPU (notebook 01e)
    dict(name="device-index-unresolved", file="lema/device.py",
         old="self.device = device if device.index is not None else torch.device(device.type, self.current_device())",
         new="self.device = device",
         notebooks=["nbs/02_memory.ipynb", "nbs/01e_device.ipynb"],
         sees="every single-GPU run with the default device='cuda' fails at its first forward (BrokenThreadPool)"),

    dict(name="pinned-shares-pages", file="lema/device.py",
         old="        mm = mmap.mmap(-1, size)  # page-aligned, its own pages; the tensor keeps the mapping alive\n"
             "        t = torch.frombuffer(mm, dtype=torch.uint8)\n",
         new="        mm = None; size = nbytes\n"
             "        t = torch.empty(nbytes, dtype=torch.uint8)\n",
         notebooks=["nbs/01e_device.ipynb", "nbs/02_memory.ipynb"],
         sees="on small models the second staging buffer cannot be pinned (cudaErrorHostMemoryAlreadyRegistered)"),

    dict(name="pinned-no-finalizer", file="lema/device.py",
         old="self._finalizer = weakref.finalize(self, _unpin_blocks, ops, self._blocks)",
         new="self._finalizer = lambda: _unpin_blocks(ops, self._blocks)",
         notebooks=["nbs/01e_device.ipynb", "nbs/02_memory.ipynb"],
         sees="a model dropped without close() leaves its staging pages locked until the process ends"),

    dict(name="failed-build-keeps-pinned", file="lema/memory.py",
         old="        try: self._allocate(n_slots)\n"
             "        except BaseException: self.close(); raise  # nothing stays pinned or allocated after a failed construction\n",
         new="        self._allocate(n_slots)\n",
         notebooks=["nbs/02_memory.ipynb"],
         sees="a model that fails to build (out of pinned memory) keeps what it had pinned while its traceback lives"),

    dict(name="compute-no-wait", file="lema/memory.py",
         old="    if self.cuda: self.ops.wait_event(self.ops.current_stream(), self._ready[s])\n",
         new="    pass\n",
         notebooks=["nbs/02_memory.ipynb"],
         sees="layers compute on slots the copy has not filled yet: NaN or another layer's weights"),

    dict(name="offload-keeps-skipped", file="lema/memory.py",
         old="self.host = weakref.WeakValueDictionary()  # key -> Offloaded",
         new="self.host = {}  # key -> Offloaded",
         notebooks=["nbs/06_model.ipynb"],
         sees="every batch with a non-finite loss leaks a pinned host buffer per layer (offload_activations=True)"),

    dict(name="close-keeps-views", file="lema/model.py",
         old="        for layer in self.hf.get_submodule(self.adapter.layers): layer._drop_weights()  # no view keeps a slot alive\n",
         new="",
         notebooks=["nbs/06_model.ipynb"],
         sees="after close() the GPU still holds two slots and the whole budget until the model is collected"),

    dict(name="fp16-scale-not-passed", file="lema/trainer.py",
         old="            grad_scale = self.scaler.scale(torch.ones((), dtype=torch.float32, device=self.model.device))\n"
             "            if num_items_in_batch is None: grad_scale = grad_scale / self.config.gradient_accumulation_steps\n",
         new="            pass\n",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="float16 (T4/P100): the head's gradient underflows before the scale applies; at scale 2^16 every step is skipped"),

    dict(name="host-offload-unscale-after-pull", file="lema/trainer.py",
         old="                    with view(): self.scaler.unscale_(self.optimizer)\n"
             "                if hasattr(self.optimizer, \"pull_grads\"): self.optimizer.pull_grads()  # HostOffloadAdamW: to the host\n",
         new="                    if hasattr(self.optimizer, \"pull_grads\"): self.optimizer.pull_grads()\n"
             "                    self.scaler.unscale_(self.optimizer)\n",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="HostOffloadAdamW + float16 on a GPU: GradScaler reads inv_scale/found_inf before their copies land (overflow missed)"),

    # issue 22: a real model (SmolLM2-135M-Instruct from a GGUF file)
    dict(name="lora-4bit-order", file="lema/lora.py",
         old="        if self.quantized: return result + update.to(result_dtype)  # PEFT's lora.bnb.Linear4bit: rounded, then added\n",
         new="",
         notebooks=["nbs/01a_quant.ipynb", "nbs/real_model.ipynb"],
         sees="NF4 models of bfloat16 checkpoints (most of the hub) train 0.4% away from PEFT QLoRA from the first step"),

    dict(name="side-files-no-templates", file="lema/gbi.py",
         old="            if n.startswith(\".\") or n.endswith(_WEIGHT_SUFFIXES) or (rel/n).as_posix() in skip: continue",
         new="            if n.startswith(\".\") or n.endswith(_WEIGHT_SUFFIXES + (\".jinja\",)) or (rel/n).as_posix() in skip: continue",
         notebooks=["nbs/01_gbi.ipynb", "nbs/real_model.ipynb"],
         sees="a merged or quantized instruct model loses its chat template: every chat prompt a deployment formats is wrong"),

    dict(name="gguf-cache-no-mtime", file="lema/gguf.py",
         old="    return hashlib.sha256(f\"{src}\\0{st.st_size}\\0{st.st_mtime_ns}\".encode()).hexdigest()[:12]",
         new="    return hashlib.sha256(f\"{src}\\0{st.st_size}\".encode()).hexdigest()[:12]",
         notebooks=["nbs/01d_gguf.ipynb"],
         sees="a .gguf file replaced by another of the same size keeps training the old model from the cache"),

    dict(name="gguf-cache-no-lock", file="lema/gguf.py",
         old="        fcntl.flock(lock, fcntl.LOCK_EX)",
         new="        pass",
         notebooks=["nbs/01d_gguf.ipynb"],
         sees="two notebooks (or torchrun ranks) converting the same .gguf at once delete each other's half-written copy"),

    dict(name="eval-data-ignored", file="lema/dataset.py",
         old="    if eval_convs is not None:  # a held-out set of its own: every conversation of `convs` trains",
         new="    if False:",
         notebooks=["nbs/06a_dataset.ipynb", "nbs/07_cli.ipynb"],
         sees="eval_data_path is read but not used: the held-out loss is measured on a random tenth of the training set"),

    # issue 23: every knob does what it says (nbs/11_knobs.ipynb's table): each mutant ignores one knob
    dict(name="knob-revision", file="lema/adapters.py",
         old="resolve_model_dir(src, config.revision)",
         new="resolve_model_dir(src, None)",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="revision='v2' of a hub id trains the main branch's weights"),

    dict(name="knob-gbi-path", file="lema/adapters.py",
         old="GlobalBinaryIndex(config.gbi_path or self.model_dir,",
         new="GlobalBinaryIndex(self.model_dir,",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="gbi_path is accepted, but the weights are read from model_name_or_path's checkpoint"),

    dict(name="knob-strategy", file="lema/adapters.py",
         old="n_slots=c.vram_buffer_size, strategy=c.strategy, n_fixed=n_fixed)",
         new='n_slots=c.vram_buffer_size, strategy="streaming", n_fixed=n_fixed)',
         notebooks=["nbs/11_knobs.ipynb"],
         sees="strategy='resident' still streams every layer from disk (the RAM copy it promises is never made)"),

    dict(name="knob-vram-buffer-size", file="lema/adapters.py",
         old="n_slots=c.vram_buffer_size, strategy=c.strategy",
         new="n_slots=2, strategy=c.strategy",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="vram_buffer_size is always 2: more slots buy no overlap, 1 slot saves no device memory"),

    dict(name="knob-use-lora", file="lema/config.py",
         old="    if c.use_lora is False:",
         new="    if False:",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="use_lora=False is accepted and LoRA adapters train anyway"),

    dict(name="knob-lora-rank", file="lema/adapters.py",
         old="apply_lora(layer, targets, c.lora_rank, c.lora_alpha, device=",
         new="apply_lora(layer, targets, 16, c.lora_alpha, device=",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="every adapter has rank 16 whatever lora_rank says (and its scaling is alpha / 16)"),

    dict(name="knob-lora-alpha", file="lema/adapters.py",
         old="apply_lora(layer, targets, c.lora_rank, c.lora_alpha, device=",
         new="apply_lora(layer, targets, c.lora_rank, 32, device=",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="lora_alpha is always 32: the update's strength is not the one asked for"),

    dict(name="knob-lora-target-modules", file="lema/adapters.py",
         old="return list(self.config.lora_target_modules or self.adapter.default_targets)",
         new="return list(self.adapter.default_targets)",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="lora_target_modules is ignored: the architecture's default modules are adapted"),

    dict(name="knob-lora-target-parameters", file="lema/adapters.py",
         old="        if c.lora_target_parameters:  # expert stacks",
         new="        if False:  # expert stacks",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="lora_target_parameters adds no expert-stack LoRA"),

    dict(name="knob-learning-rate", file="lema/model.py",
         old="lr=self.config.learning_rate)",
         new="lr=1e-4)",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="get_trainer() (and so `lema train`) trains at 1e-4 whatever learning_rate says"),

    dict(name="knob-attn-implementation", file="lema/adapters.py",
         old='{"attn_implementation": config.attn_implementation} if config.attn_implementation else {}',
         new="{}",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="attn_implementation='eager' still runs sdpa"),

    dict(name="knob-num-train-epochs", file="lema/trainer.py",
         old="epochs = epochs or c.num_train_epochs",
         new="epochs = epochs or 1",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="num_train_epochs is ignored: fit makes one pass over the data"),

    dict(name="knob-eval-steps", file="lema/trainer.py",
         old="eval_steps or c.eval_steps",
         new="eval_steps",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="the config's eval_steps is ignored: the held-out loss only at the end"),

    dict(name="knob-fit-eval-steps", file="lema/trainer.py",
         old="eval_steps or c.eval_steps",
         new="c.eval_steps",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(eval_steps=...) is ignored: the config's value decides"),

    dict(name="knob-fit-max-grad-norm", file="lema/trainer.py",
         old="if max_grad_norm is not None: self.config = c",
         new="if False: self.config = c",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(max_grad_norm=...) does not clip"),

    dict(name="knob-fit-scheduler", file="lema/trainer.py",
         old="lr_scheduler_type or c.lr_scheduler_type",
         new="c.lr_scheduler_type",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(lr_scheduler_type=...) is ignored: the config's schedule runs"),

    dict(name="knob-fit-warmup", file="lema/trainer.py",
         old="c.warmup_steps if warmup_steps is None else warmup_steps",
         new="c.warmup_steps",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(warmup_steps=...) is ignored: no warm-up unless the config has one"),

    dict(name="knob-fit-logging-steps", file="lema/trainer.py",
         old="logging_steps or c.logging_steps",
         new="c.logging_steps",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(logging_steps=...) is ignored: history rows every config.logging_steps"),

    dict(name="knob-fit-progress", file="lema/trainer.py",
         old="disable=not progress or ",
         new="disable=",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="fit(progress=False) still draws a progress bar"),

    dict(name="knob-seed-order", file="lema/dataset.py",
         old="shuffle=True, collate_fn=collate,\n                          generator=torch.Generator().manual_seed(config.seed))",
         new="shuffle=True, collate_fn=collate,\n                          generator=torch.Generator().manual_seed(0))",
         notebooks=["nbs/11_knobs.ipynb", "nbs/06a_dataset.ipynb"],
         sees="another seed gives the same batch order (runs meant to differ by their seed see the same data order)"),

    dict(name="knob-seed-split", file="lema/dataset.py",
         old="perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))",
         new="perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))",
         notebooks=["nbs/11_knobs.ipynb", "nbs/06a_dataset.ipynb"],
         sees="another seed holds out the same blocks (a cross-check over seeds evaluates on one split)"),

    dict(name="knob-data-path", file="lema/cli.py",
         old="data = load_data(config.data_path, config.text_field)",
         new="data = load_data(None, config.text_field)",
         notebooks=["nbs/11_knobs.ipynb", "nbs/07_cli.ipynb"],
         sees="`lema train` trains on the built-in sonnets whatever data_path says"),

    dict(name="knob-text-field", file="lema/cli.py",
         old="data = load_data(config.data_path, config.text_field)",
         new='data = load_data(config.data_path, "text")',
         notebooks=["nbs/11_knobs.ipynb", "nbs/07_cli.ipynb"],
         sees="text_field is ignored for the training data: a dataset whose text is not in `text` cannot be read"),

    dict(name="knob-eval-data-path-cli", file="lema/cli.py",
         old="if config.eval_data_path else None",
         new="if False else None",
         notebooks=["nbs/11_knobs.ipynb", "nbs/07_cli.ipynb"],
         sees="`lema train` ignores eval_data_path: the held-out loss is on a tenth of the training data"),

    dict(name="knob-evaluate-train-mode", file="lema/trainer.py",
         old="    self.model.eval()\n",
         new="",
         notebooks=["nbs/11_knobs.ipynb"],
         sees="evaluate after training steps runs with dropout on: a noisy, too high held-out loss"),

    dict(name="knob-generate-train-mode", file="lema/model.py",
         old="    was = self.training; self.eval()\n    try:\n",
         new="    was = self.training\n    try:\n",
         notebooks=["nbs/11_knobs.ipynb", "nbs/06_model.ipynb"],
         sees="generate after training steps samples with dropout on: greedy decoding is not deterministic"),

    dict(name="knob-forward-train-mode", file="lema/model.py",
         old="            was = self.training; self.eval()\n",
         new="            was = self.training\n",
         notebooks=["nbs/11_knobs.ipynb", "nbs/06_model.ipynb"],
         sees="model(x) after training steps applies dropout: logits change from call to call"),

    # issue 23: `lema train --FIELD VALUE ...` (nbs/07_cli.ipynb)
    dict(name="cli-flags-under-yaml", file="lema/cli.py",
         old="raw = {**raw, **overrides}",
         new="raw = {**overrides, **raw}",
         notebooks=["nbs/07_cli.ipynb"],
         sees="a flag given with a YAML file is silently overridden by the YAML's value"),

    dict(name="cli-bool-flag-type", file="lema/cli.py",
         old='type=parse(lambda s: truth[s.lower()], "true or false")',
         new="type=bool",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`--gradient_checkpointing false` means true (bool('false') is True)"),

    dict(name="cli-no-suggestion", file="lema/cli.py",
         old="else difflib.get_close_matches(name, known, n=1, cutoff=0.6)",
         new="else []",
         notebooks=["nbs/07_cli.ipynb"],
         sees="a misspelt flag is refused without naming the flag meant"),

    dict(name="cli-abbreviations", file="lema/cli.py",
         old='t = sub.add_parser("train", allow_abbrev=False,',
         new='t = sub.add_parser("train", allow_abbrev=True,',
         notebooks=["nbs/07_cli.ipynb"],
         sees="`--lora_r 8` is taken as --lora_rank: a typo of one flag silently sets another"),

    dict(name="cli-tiny-ignored", file="lema/cli.py",
         old="default_run(out, steps, tiny=a.tiny, **over)",
         new="default_run(out, steps, tiny=False, **over)",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`lema train --tiny` downloads and trains SmolLM2 instead of the tiny model"),

    dict(name="cli-bench-memory-cap", file="lema/cli.py",
         old="threads=a.threads, memory_cap_gb=a.memory_cap_gb, rounds=a.rounds",
         new="threads=a.threads, memory_cap_gb=None, rounds=a.rounds",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`lema bench --memory-cap-gb 8` measures with the whole GPU"),

    dict(name="cli-merge-base", file="lema/cli.py",
         old="base=a.base",
         new="base=None",
         notebooks=["nbs/07_cli.ipynb"],
         sees="`lema merge --base DIR` merges into the adapter's recorded base, not DIR"),

    # issue 23: the table's claims about older tests, checked (each ignores one knob an older notebook watches)
    dict(name="knob-generate-mask", file="lema/model.py",
         old="attention_mask=None if attention_mask is None else moved[id(attention_mask)]",
         new="attention_mask=None",
         notebooks=["nbs/11_knobs.ipynb", "nbs/06_model.ipynb"],
         sees="generate on a batch padded with a token other than pad_token_id attends to the pads: other tokens"),

    dict(name="knob-gradient-checkpointing", file="lema/adapters.py",
         old="keep_activations=not config.gradient_checkpointing",
         new="keep_activations=False",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="gradient_checkpointing=False still recomputes every layer (and re-streams it): the speed it promises is lost"),

    dict(name="knob-lora-dropout", file="lema/adapters.py",
         old="dropout=c.lora_dropout).items():",
         new="dropout=0.0).items():",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="lora_dropout is ignored: no dropout in training, unlike PEFT with the same config"),

    dict(name="knob-batch-size", file="lema/dataset.py",
         old="DataLoader(train, batch_size=config.batch_size,",
         new="DataLoader(train, batch_size=1,",
         notebooks=["nbs/06a_dataset.ipynb"],
         sees="`lema train` trains on one sequence at a time whatever batch_size says"),

    dict(name="knob-optimizer-offload", file="lema/model.py",
         old="cls = HostOffloadAdamW if self.config.optimizer_offload else torch.optim.AdamW",
         new="cls = torch.optim.AdamW",
         notebooks=["nbs/06_model.ipynb"],
         sees="optimizer_offload=True keeps AdamW's state on the GPU anyway"),

    dict(name="knob-train-mode", file="lema/trainer.py",
         old="        if not self.model.training: self.model.train()",
         new="        pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="train_step on a model fresh from the constructor (eval mode) trains without dropout"),

    dict(name="knob-max-steps", file="lema/trainer.py",
         old="total = max_steps or c.max_steps or",
         new="total = max_steps or",
         notebooks=["nbs/07_cli.ipynb"],
         sees="the config's max_steps is ignored: `lema train` runs num_train_epochs over the data instead"),

    dict(name="knob-dtype", file="lema/adapters.py",
         old="compute_dtype(config.dtype,",
         new='compute_dtype("auto",',
         notebooks=["nbs/04_adapters.ipynb"],
         sees="dtype='bfloat16' on a float32 checkpoint computes in float32 (twice the memory, other numbers than PEFT's)"),

    # -- issue 24 item 3: runs that survive a lost session (SIGINT / SIGTERM / max_time -> checkpoint -> resume) --
    dict(name="stop-no-checkpoint", file="lema/trainer.py",
         old="if why and self.global_step < total: path = self._checkpoint_everywhere()",
         new='if why and self.global_step < total: path = Path(c.output_dir)/f"checkpoint-{self.global_step}"',
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a SIGTERM stops the run and names a checkpoint that was never written: the session's work is lost"),

    dict(name="stop-handlers-not-restored", file="lema/trainer.py",
         old="        for s, h in old.items(): signal.signal(s, signal.SIG_DFL if h is None else h)",
         new="        pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="after fit, Ctrl-C no longer interrupts the notebook: LEMA's handler only sets a flag nobody reads"),

    dict(name="stop-flag-not-agreed", file="lema/trainer.py",
         old="    if self.model.dist is not None: sig, late = max_over_ranks(self.model.dist, sig, late)",
         new="    pass",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="under torchrun a rank that got the SIGTERM stops alone: the others hang in the next all-reduce"),

    dict(name="stop-rng-not-restored", file="lema/trainer.py",
         old='    torch.set_rng_state(s["rng_cpu"])',
         new="    pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="with lora_dropout > 0 a resumed run draws other dropout masks: its losses and adapter drift"),

    dict(name="stop-rng-restored-at-load-only", file="lema/trainer.py",
         old="if rng is not None and seen == rng_at: _set_rng_state(self.model, rng)",
         new="pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a resumed fit's DataLoader draws from torch's generator after the load: other dropout masks, a drift"),

    dict(name="stop-only-at-window-end", file="lema/trainer.py",
         old="if self.micro_step and (why := self._stop_reason(flag, deadline)): break",
         new="pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a SIGTERM waits for the end of the accumulation window (k micro-steps): the session may be killed first"),

    dict(name="knob-fit-max-time", file="lema/trainer.py",
         old="c.max_time if max_time is None else max_time",
         new="c.max_time",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="fit(max_time='11h30m') is accepted and ignored: the session's limit kills the run without a checkpoint"),

    dict(name="knob-max-time", file="lema/trainer.py",
         old="c.max_time if max_time is None else max_time",
         new="max_time",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="LemaConfig(max_time=...) (and `lema train --max_time`) is ignored: no checkpoint before the limit"),

    dict(name="stop-second-signal-ignored", file="lema/trainer.py",
         old="        if flag.signal is not None:",
         new="        if False:",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a second Ctrl-C does not stop a run stuck in a long step: only kill -9 does"),

    dict(name="stop-log-sum-not-restored", file="lema/trainer.py",
         old="self._log_loss, self._log_items = (as_saved(loss) if dt else 0.0), int(items)",
         new="pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="the first loss logged after a resume counts only the steps since the resume: a jump in the curve"),

    dict(name="stop-history-not-restored", file="lema/trainer.py",
         old='if "history" in state: self.history = state["history"]',
         new="pass",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a resumed run's history.csv and loss chart start at the resume: the steps before are gone"),

    dict(name="save-steps-before-log-row", file="lema/trainer.py",
         old="if self._save_due and not self._in_fit: self._checkpoint_everywhere()",
         new="if self._save_due: self._checkpoint_everywhere()",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="a run resumed from a save_steps checkpoint loses that step's log row and evaluation"),

    dict(name="stop-interrupt-is-exception", file="lema/trainer.py",
         old="class TrainingInterrupted(KeyboardInterrupt):",
         new="class TrainingInterrupted(Exception):",
         notebooks=["nbs/05_trainer.ipynb"],
         sees="an `except Exception:` around fit swallows the stop: the notebook carries on as if training had ended"),

    dict(name="dist-stop-rank0-state-for-all", file="lema/trainer.py",
         old="ranks = dict(enumerate(gather_from_ranks(d, self._rank_state())))",
         new="ranks = {0: self._rank_state()}",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="under torchrun a resumed run gives rank 1 no RNG state and no partial window: it drifts"),

    dict(name="dist-stop-grads-rank0-for-all", file="lema/trainer.py",
         old='if any(k.startswith("rank") for k in grads):',
         new="if False:",
         notebooks=["nbs/05a_distributed.ipynb"],
         sees="under torchrun a run stopped mid-window resumes with rank 0's partial gradients on every rank"),

    dict(name="cli-interrupt-exit-zero", file="lema/cli.py",
         old="        return e.exit_code",
         new="        return 0",
         notebooks=["nbs/07_cli.ipynb"],
         sees="a session's SIGTERM ends `lema train` with exit code 0: a scheduler thinks the run finished"),

    dict(name="cli-resume-command-without-resume", file="lema/cli.py",
         old='args = shlex.join([*argv, *([] if "--resume" in argv else ["--resume"])])',
         new="args = shlex.join(argv)",
         notebooks=["nbs/07_cli.ipynb"],
         sees="the resume command `lema train` prints after a SIGTERM starts the run over from step 0"),

    # -- issue 24: the memory plan and the flight check
    dict(name="plan-ignores-budget", file="lema/plan.py",
         old="            if plan.peak <= usable:\n",
         new="            if True:\n",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="the plan keeps every layer whatever the card: the first step on a 16 GB card runs out of memory"),

    dict(name="plan-resident-not-applied", file="lema/adapters.py",
         old="self.streamer = self._new_streamer(plan.resident)\n        self.layers",
         new="self.streamer = self._new_streamer(0)\n        self.layers",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="the plan says every layer stays on the GPU, yet every layer streams: PEFT's speed never comes"),

    dict(name="plan-activations-low", file="lema/plan.py",
         old="    x = 7.1 * s.hidden + 4 * s.intermediate",
         new="    x = 6.1 * s.hidden + 4 * s.intermediate",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="the estimate undercounts a layer's activations: a plan that fits on paper runs out of memory"),

    dict(name="plan-chunk-ignored", file="lema/adapters.py",
         old="    chunk = self.memory_plan.loss_chunk_size\n",
         new="    chunk = 256\n",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="loss_chunk_size (and the plan's smaller chunks) ignored: the 128k-vocabulary logits peak stays"),

    dict(name="flight-check-rng-lost", file="lema/model.py",
         old="        torch.random.set_rng_state(rng)\n",
         new="        pass\n",
         notebooks=["nbs/06_model.ipynb"],
         sees="with dropout, a run that did the flight check trains differently from one that did not"),

    dict(name="flight-check-grads-lost", file="lema/model.py",
         old="        for p, g in zip(params, pending): p.grad = g\n",
         new="        for p, g in zip(params, pending): p.grad = None\n",
         notebooks=["nbs/06_model.ipynb"],
         sees="a run resumed mid-window loses the pending gradients of its window at the flight check"),

    dict(name="apply-plan-keeps-streamer", file="lema/model.py",
         old="    if (plan.resident, plan.slots) != (old.resident, old.slots):\n",
         new="    if False:\n",
         notebooks=["nbs/06_model.ipynb"],
         sees="after an out-of-memory flight check the plan says fewer layers, but the device keeps them all: OOM again"),

    dict(name="sim-no-oom", file="lema/device.py",
         old="            if self.allocated_bytes + n > self.total_bytes:\n",
         new="            if False:\n",
         notebooks=["nbs/01e_device.ipynb"],
         sees="the simulated GPU never runs out of memory: CI cannot see a plan that overfills a card"),

    dict(name="mem-info-no-cap", file="lema/device.py",
         old="        if cap < total: free, total = max(0, min(free, cap - torch.cuda.memory_reserved(self.device))), cap\n",
         new="        pass\n",
         notebooks=["nbs/01e_device.ipynb"],
         sees="under set_per_process_memory_fraction the plan sees the whole card: the emulated 16 GB card runs out"),

    dict(name="bind-every-call", file="lema/adapters.py",
         old="    if w is self._w: return  # the same tensors as last time",
         new="    if False: return  # the same tensors as last time",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="a layer kept on the GPU pays its host work (one nn.Parameter per weight) at every call: PEFT's speed lost"),

    dict(name="casts-lasting", file="lema/memory.py",
         old="    return self._plain[i] or self.kept(i)",
         new="    return True",
         notebooks=["nbs/04_adapters.ipynb", "nbs/01a_quant.ipynb"],
         sees="bf16 casts and dequantized 4-bit weights of every layer stay on the GPU after use: the model's size twice"),

    dict(name="casts-cached", file="lema/memory.py",
         old="    if self._plain[i]: self._made[s, i] = v",
         new="    self._made[s, i] = v",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="the bf16 casts of each streamed layer are kept per slot: streaming ends up holding the whole model"),

    dict(name="kept-4bit-graph", file="lema/memory.py",
         old="    return i in self.fixed and self.fixed[i][1] is not None",
         new="    return i in self.fixed",
         notebooks=["nbs/01a_quant.ipynb"],
         sees="with every 4-bit layer kept, the dequantized weights stay in the autograd graph: OOM on a card that fits"),

    dict(name="drop-keeps-binding", file="lema/adapters.py",
         old="    self._w = self._buf = None  # the next `_bind` binds",
         new="    pass  # the next `_bind` binds",
         notebooks=["nbs/06_model.ipynb"],
         sees="after close() (or a new plan) the layers still hold the old slots: their GPU memory is never given back"),

    dict(name="flight-no-moments", file="lema/model.py",
         old="[torch.zeros_like(p) for p in params for _ in range(2)]",
         new="[]",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="the flight check passes without AdamW's moments, then the first steps after it run out of memory"),

    dict(name="dequant-one-weight", file="lema/plan.py",
         old="dequant_bytes=max((sum(numel(n) for n in names if n in gbi.quant) for names in layer_names),\n"
             "                                        default=0) * b,",
         new="dequant_bytes=2 * max((numel(n) for n in gbi.quant), default=0) * b,",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="a streamed 4-bit layer's weights counted one (twice) at a time, not all of them: the plan is below the count"),

    dict(name="paired-mean", file="lema/bench.py",
         old="= p.median(), p.min(), p.max()",
         new="= p.mean(), p.min(), p.max()",
         notebooks=["nbs/08_bench.ipynb"],
         sees="the paired ratio is the mean of the rounds' ratios, not their median: one slow round moves it"),

    dict(name="transients-on-loss", file="lema/plan.py",
         old="    return dict(kept_activations=kept, step_peak=max(loss, backward))",
         new="    return dict(kept_activations=kept, step_peak=max(loss, backward - transients) + transients)",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="a layer's folded expert stacks (or dequantized weights) added on top of the loss, when no layer runs"),

    dict(name="bench-rounds-unwritten", file="lema/cli.py",
         old='if df.attrs.get("rounds"):',
         new='if df.attrs.get("rounds") and a.rounds > 2:',
         notebooks=["nbs/07_cli.ipynb"],
         sees="lema bench --csv keeps the medians but not the rounds behind them: the paired ratios cannot be checked"),

    dict(name="count-views", file="lema/device.py",
         old="t.untyped_storage().data_ptr() not in ins:",
         new="True:",
         notebooks=["nbs/01e_device.ipynb"],
         sees="the simulated card counts a view as new memory: a plan that fits a real card is called out of memory"),

    dict(name="asks-torch-dtype", file="lema/adapters.py",
         old='    dt = getattr(hf_config, "dtype", None)  #',
         new='    dt = getattr(hf_config, "dtype", None) or getattr(hf_config, "torch_dtype", None)  #',
         notebooks=["nbs/04_adapters.ipynb"],
         sees="a checkpoint without a dtype in config.json prints transformers' `torch_dtype is deprecated` warning"),

    dict(name="fit-flight-no-optimizer", file="lema/trainer.py",
         old="optimizer=self.optimizer, again=False)",
         new="optimizer=None, again=False)",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="`fit`'s flight check does not hold AdamW's moments: it passes, and the first steps run out of memory"),

    dict(name="fit-flight-every-call", file="lema/trainer.py",
         old="optimizer=self.optimizer, again=False)",
         new="optimizer=self.optimizer, again=True)",
         notebooks=["nbs/06_model.ipynb"],
         sees="every `fit` in a notebook runs the flight check again: a whole streamed step more per call"),

    dict(name="flight-skip-longer", file="lema/model.py",
         old="and (had_moments or not held) and batch_size <= b and seq_len <= s: return self.memory_plan",
         new="and (had_moments or not held) and batch_size <= b: return self.memory_plan",
         notebooks=["nbs/06_model.ipynb"],
         sees="a second `fit` on longer sequences skips the flight check and runs out of memory mid-run"),

    dict(name="offload-moments-counted", file="lema/trainer.py",
         old="        with self._on_host(): loss = super().step(closure)",
         new="        loss = super().step(closure)",
         notebooks=["nbs/02a_plan.ipynb"],
         sees="the counting card charges optimizer_offload's host moments to the GPU: the plan's offload saving unchecked"),

    dict(name="bench-order-fixed", file="lema/bench.py",
         old="        for t in rotated(trainers, rnd):",
         new="        for t in trainers:",
         notebooks=["nbs/08_bench.ipynb"],
         sees="every round runs PEFT first: an effect of the order (what the process before leaves) biases each ratio"),

    dict(name="lora-factors-stale", file="lema/adapters.py",
         old="    for l in self.hf.get_submodule(self.adapter.layers): l._lora = None",
         new="    pass",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="a model that ran a forward before `initialize_lora` cannot train: its layers still see no LoRA factor"),

    dict(name="lora-frozen-trains", file="lema/adapters.py",
         old="        return [f.weight for f in self._lora if f.weight.requires_grad]",
         new="        return [f.weight for f in self._lora]",
         notebooks=["nbs/04_adapters.ipynb"],
         sees="freezing one adapter factor breaks the backward: autograd is handed a tensor that needs no gradient"),
]
