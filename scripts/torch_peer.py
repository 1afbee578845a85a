#!/usr/bin/env python3
"""PyTorch peer of benches/matrix.rs: the sort-based sampler engines run today.

Same shapes and strategies as the matrix bench (WGSAMPLE_BENCH_BATCHES,
WGSAMPLE_BENCH_VOCABS, WGSAMPLE_BENCH_STRATEGIES select them; defaults: the
full matrix), logits 3*N(0,1) on the GPU (the same distribution as the Rust
benches, drawn by torch), and the same table format, so scripts and
`bench_plot` read both:

    batch vocab strategy torch_ts torch_wall

- torch_ts: GPU time of one sampling step between two CUDA events (median
  over the steps, after warm-up). PyTorch launches kernels one by one from
  the host, so this includes any wait for a launch: what an eager engine pays.
- torch_wall: host wall time of the step including reading the B token ids
  back to the host (`.cpu()`).

The sampler is vLLM's PyTorch path (`apply_top_k_top_p`: one full sort of
the row, masks, scatter back, softmax, `torch.multinomial`), and vLLM's
`apply_penalties` (repetition over prompt and output, presence and frequency
over output counts) for `pen+topp0.9`. Temperature 0.8 for every sampled
strategy; greedy is `argmax`.
"""
import os
import statistics
import sys
import time

import torch

STRATEGIES = ["greedy", "temp0.8", "topk50", "topp0.9", "topk50+topp0.9", "pen+topp0.9"]


def env_list(name, default, cast):
    s = os.environ.get(name, "").strip()
    return [cast(x.strip()) for x in s.split(",")] if s else default


def apply_top_k_top_p(logits, k, p):
    """vLLM's sort-based top-k/top-p (vllm/v1/sample/ops/topk_topp_sampler.py)."""
    logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    if k is not None:
        top_k_mask = logits_sort.size(1) - k.to(torch.long)
        top_k_mask = logits_sort.gather(1, top_k_mask.unsqueeze(dim=1))
        logits_sort.masked_fill_(logits_sort < top_k_mask, -float("inf"))
    if p is not None:
        probs_sort = logits_sort.softmax(dim=-1)
        probs_sum = torch.cumsum(probs_sort, dim=-1, out=probs_sort)
        top_p_mask = probs_sum <= 1 - p.unsqueeze(dim=1)
        top_p_mask[:, -1] = False
        logits_sort.masked_fill_(top_p_mask, -float("inf"))
    return logits.scatter(dim=-1, index=logits_idx, src=logits_sort)


def apply_penalties(logits, prompt_mask, output_counts, rep, pres, freq):
    """vLLM's apply_penalties (vllm/model_executor/layers/utils.py)."""
    output_mask = output_counts > 0
    rep = rep.unsqueeze(dim=1).repeat(1, logits.size(1))
    penalties = torch.where(prompt_mask | output_mask, rep, torch.ones_like(rep))
    logits = torch.where(logits > 0, logits / penalties, logits * penalties)
    logits = logits - freq.unsqueeze(dim=1) * output_counts
    logits = logits - pres.unsqueeze(dim=1) * output_mask
    return logits


def make_step(strategy, b, v, dev):
    t = torch.full((b,), 0.8, device=dev)
    k = torch.full((b,), 50, device=dev, dtype=torch.long)
    p = torch.full((b,), 0.9, device=dev)
    state = {}
    if strategy.startswith("pen"):
        prompt = torch.zeros((b, v), dtype=torch.bool, device=dev)
        ids = (torch.arange(64, device=dev) * 7919).unsqueeze(0) + (torch.arange(b, device=dev) * 131).unsqueeze(1)
        prompt.scatter_(1, ids % v, True)
        state["prompt"] = prompt
        state["counts"] = torch.zeros((b, v), dtype=torch.float32, device=dev)
        state["rep"] = torch.full((b,), 1.1, device=dev)
        state["pres"] = torch.full((b,), 0.5, device=dev)
        state["freq"] = torch.full((b,), 0.5, device=dev)
        state["ones"] = torch.ones((b, 1), dtype=torch.float32, device=dev)

    def step(logits):
        if strategy == "greedy":
            return logits.argmax(dim=-1)
        x = logits
        if strategy.startswith("pen"):
            x = apply_penalties(x, state["prompt"], state["counts"], state["rep"], state["pres"], state["freq"])
        x = x / t.unsqueeze(1)
        if strategy == "topk50":
            x = apply_top_k_top_p(x, k, None)
        elif strategy == "topp0.9" or strategy.startswith("pen"):
            x = apply_top_k_top_p(x, None, p)
        elif strategy == "topk50+topp0.9":
            x = apply_top_k_top_p(x, k, p)
        probs = x.softmax(dim=-1, dtype=torch.float32)
        tok = torch.multinomial(probs, num_samples=1)
        if strategy.startswith("pen"):
            state["counts"].scatter_add_(1, tok, state["ones"])
        return tok.view(-1)

    def reset():
        if "counts" in state:
            state["counts"].zero_()

    return step, reset


def main():
    if not torch.cuda.is_available():
        print("torch_peer: no CUDA device; nothing measured", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    batches = env_list("WGSAMPLE_BENCH_BATCHES", [1, 8, 64, 256], int)
    vocabs = env_list("WGSAMPLE_BENCH_VOCABS", [32000, 128256, 262144], int)
    strategies = env_list("WGSAMPLE_BENCH_STRATEGIES", STRATEGIES, str)
    budget = float(os.environ.get("WGSAMPLE_BENCH_MEASURE_MS", "300")) / 1000.0
    warm = 10
    print("== torch peer: median µs per step (one run) ==")
    print(f"# device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print("# torch_ts: CUDA events around the step; torch_wall: step + tokens to host")
    print(f"{'batch':<6} {'vocab':<7} {'strategy':<15} {'torch_ts':>10} {'torch_wall':>10}")
    gen = torch.Generator(device=dev)
    for b in batches:
        for v in vocabs:
            gen.manual_seed(b * 1_000_003 + v)
            logits = torch.randn((b, v), generator=gen, device=dev, dtype=torch.float32) * 3.0
            for s in strategies:
                step, reset = make_step(s, b, v, dev)
                for _ in range(warm):
                    step(logits)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                gpu, wall = [], []
                t_end = time.perf_counter() + budget
                n = 0
                while n < 10 or (time.perf_counter() < t_end and n < 2000):
                    if n % 256 == 0:
                        reset()
                    torch.cuda.synchronize()
                    w0 = time.perf_counter()
                    start.record()
                    tok = step(logits)
                    end.record()
                    tok.cpu()
                    wall.append((time.perf_counter() - w0) * 1e6)
                    end.synchronize()
                    gpu.append(start.elapsed_time(end) * 1e3)
                    n += 1
                fmt = lambda x: f"{x:.0f}" if x >= 100 else f"{x:.1f}"
                print(
                    f"{b:<6} {v:<7} {s:<15} {fmt(statistics.median(gpu)):>10} {fmt(statistics.median(wall)):>10}",
                    flush=True,
                )
            del logits
            torch.cuda.empty_cache()
    print("== end ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
