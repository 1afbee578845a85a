#!/usr/bin/env python3
"""Reference outputs of HF transformers' beam search over a "bigram model".

The model's next-token logits are `table[last_token]` (a V x V float32 table of
raw logits; row = the last token of the sequence, the start token included).
`model.generate(num_beams=b, do_sample=False, eos_token_id=..., max_new_tokens=...,
num_return_sequences=..., length_penalty=..., early_stopping=...)` runs with no
other logits processors, so HF's beam score is
    sum_t log_softmax(table[tok_{t-1}])[tok_t]  /  L ** length_penalty
(L = generated length, EOS included), accumulated in float32 by HF itself.

For each case we record HF's returned sequences (generated tokens only: the
start token is dropped and each row is cut at its own generated length, taken
from `beam_indices` != -1, so padding, which equals eos[0], is never confused
with a real EOS) and `sequences_scores`, in HF's order. A result whose score, or
score * n ** length_penalty, is <= -1e8 carries HF's -1e9 marker (not enough
finished hypotheses, or a beam that had been given the -1e9 penalty); it is
recorded as-is with "placeholder": true.

Tables in JSON: numbers are float32 values written in their shortest repr
(parse as f32, or as f64 then cast: both give the same f32), and
-inf is the string "-inf". A case's "table" is either a list of rows or a
string naming a generated table ("masked_v1000": see masked_v1000_table(), which
tests/beam_hf.rs repeats, so the 1M-entry table is not stored). The output is an object:
{"transformers_version", "torch_version", "generator", "cases": [...], "tables"}.
Each case also gets "score_ties": true when two real results have equal scores
(HF's order between them is torch.topk's tie order, which is not by index).

Rerun (writes tests/data/hf_beam_reference.json with the built-in cases):
    /work/hfvenv/bin/python scripts/hf_beam_reference.py --write
Other cases (a JSON list of cases, same fields as the output, no "results"):
    /work/hfvenv/bin/python scripts/hf_beam_reference.py --cases in.json --out out.json
Print the results of some cases:   ... --write --print issue9_repro
venv: python3 -m venv /work/hfvenv && /work/hfvenv/bin/pip install torch transformers numpy
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

OUT_DEFAULT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "hf_beam_reference.json")


class BigramConfig(PreTrainedConfig):
    model_type = "wgsample_bigram"

    def __init__(self, vocab_size=3, **kwargs):
        self.vocab_size = vocab_size
        super().__init__(**kwargs)


class BigramLM(PreTrainedModel, GenerationMixin):
    config_class = BigramConfig

    def __init__(self, config, table):
        super().__init__(config)
        self.register_buffer("table", table)
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # so that model.device/dtype work
        self.post_init()

    def forward(self, input_ids=None, **kwargs):
        return CausalLMOutput(logits=self.table[input_ids])  # [batch, seq, V]


# ---- table <-> JSON ----------------------------------------------------------

def f32_str(x):
    """Shortest repr of a float32 that parses back to it (as f32, or f64 -> f32)."""
    x = np.float32(x)
    if np.isneginf(x):
        return "-inf"
    s = np.format_float_positional(x, unique=True, trim="-") if abs(x) >= 1e-4 or x == 0 else repr(float(x))
    assert np.float32(float(s)) == x, (s, x)
    return s


def table_to_json(t):
    return [[(json.loads(f32_str(v)) if np.isfinite(v) else "-inf") for v in row] for row in t]


def table_from_json(rows):
    return np.array([[-np.inf if v == "-inf" else v for v in row] for row in rows], dtype=np.float32)


# ---- running HF --------------------------------------------------------------

def run_case(case, table):
    V = table.shape[0]
    model = BigramLM(BigramConfig(vocab_size=V), torch.from_numpy(table)).eval()
    es = case["early_stopping"]
    out = model.generate(
        torch.tensor([[case["start"]]]),
        attention_mask=torch.ones(1, 1, dtype=torch.long),
        do_sample=False,
        num_beams=case["num_beams"],
        eos_token_id=list(case["eos"]),
        pad_token_id=case["eos"][0],
        max_new_tokens=case["max_new_tokens"],
        num_return_sequences=case["num_return_sequences"],
        length_penalty=float(case["length_penalty"]),
        early_stopping=es,
        use_cache=False,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert out.sequences_scores.dtype == torch.float32
    results = []
    for seq, score, bidx in zip(out.sequences, out.sequences_scores, out.beam_indices):
        n = int((bidx != -1).sum())  # this row's generated length
        toks = seq[1:1 + n].tolist()
        r = {"tokens": toks, "score": float(score)}
        # HF's -1e9 marks (unfilled slot, or a beam that carried a -1e9 penalty) get divided by
        # n ** length_penalty like any score, so test the un-normalised sum, not the score
        if r["score"] <= -1e8 or r["score"] * n ** float(case["length_penalty"]) <= -1e8:
            r["placeholder"] = True
        else:  # a real hypothesis: ends at its first EOS, or runs to max_new_tokens
            first_eos = [i for i, t in enumerate(toks) if t in case["eos"]]
            assert (first_eos and first_eos[0] == n - 1) or (not first_eos and n == case["max_new_tokens"]), r
        results.append(r)
    assert len(results) == case["num_return_sequences"]
    real = [r["score"] for r in results if not r.get("placeholder")]
    # equal scores (e.g. paths with the same bigrams in another order): HF's order among them is torch.topk's
    case["score_ties"] = any(abs(a - b) <= 1e-6 * max(1.0, abs(a)) for i, a in enumerate(real) for b in real[i + 1:])
    return results


# ---- built-in cases ----------------------------------------------------------

def unique_rounded(rng, shape, scale, decimals):
    """scale*N(0,1) rounded to `decimals`, made distinct within each row (no exact logit ties)."""
    t = np.round(rng.standard_normal(shape) * scale, decimals)
    step = 10.0 ** -decimals
    for row in t:
        seen = set()
        for j in range(len(row)):
            while row[j] in seen:
                row[j] = np.round(row[j] + step, decimals)
            seen.add(row[j])
    return t.astype(np.float32)


def small_config(seed):
    """V in 3..6, 2..4 beams, 1-2 EOS ids; odd seeds get rows with few finite entries."""
    rng = np.random.RandomState(seed)
    V = int(rng.randint(3, 7))
    beams = int(rng.randint(2, 5))
    eos = sorted(int(e) for e in rng.choice(V, int(rng.randint(1, 3)), replace=False))
    t = unique_rounded(rng, (V, V), 2.0, 3)
    if seed % 2:  # at least one finite entry per row, else log_softmax is NaN
        for r in range(V):
            if rng.rand() < 0.6:
                keep = rng.choice(V, int(rng.randint(1, max(2, beams))), replace=False)
                row = np.full(V, -np.inf, dtype=np.float32)
                row[keep] = t[r, keep]
                t[r] = row
    return dict(table=table_to_json(t), start=int(rng.randint(V)), num_beams=beams, eos=eos,
                max_new_tokens=int(rng.randint(2, 6)), num_return_sequences=beams,
                length_penalty=float([0.0, 1.0, 2.0, -1.0, 0.5][seed % 5]))


def masked_v1000_table(eos_in_start_row=False):
    """The V = 1000 table, from a recipe that tests/beam_hf.rs repeats exactly (no stored table):
    row r, column c holds (k - 504) / 128 (exact in f32, distinct within a row) with
    k = (c * a_r + r) mod 1009, a_r = 1 + (r * 7919) mod 1008; column 3 (EOS) gets +10;
    row 0 (the start) is -inf except 5 -> 1.25 and 17 -> 0.5; rows r = 1 mod 10 get -inf at
    columns 4 + (r * 37 + j * 101) mod 996, j = 0, 1, 2. With eos_in_start_row, row 0 also
    holds 0.25 at column 3 (the EOS): then children of the dead start beams rank among the
    first b candidates and end at once."""
    V = 1000
    t = np.empty((V, V), dtype=np.float32)
    c = np.arange(V, dtype=np.int64)
    for r in range(V):
        a = 1 + (r * 7919) % 1008
        k = (c * a + r) % 1009
        t[r] = ((k - 504) / 128.0).astype(np.float32)
    t[:, 3] += np.float32(10.0)
    t[0, :] = -np.inf
    t[0, 5], t[0, 17] = np.float32(1.25), np.float32(0.5)
    if eos_in_start_row:
        t[0, 3] = np.float32(0.25)
    for r in range(1, V):
        if r % 10 == 1:
            for j in range(3):
                t[r, 4 + (r * 37 + j * 101) % 996] = -np.inf
    return t


def builtin_cases():
    cases, tables = [], {}
    modes = [True, False, "never"]
    mode_name = {True: "true", False: "false", "never": "never"}

    # a. the bug report's case
    t = [[0.3, 0.3, -0.9], [0.4, -0.5, -1.0], [1.7, -0.1, -0.4]]
    for es in modes:
        cases.append(dict(name=f"issue9_repro_{mode_name[es]}", table=t, start=0, num_beams=4, eos=[0],
                          max_new_tokens=3, num_return_sequences=4, length_penalty=1.0, early_stopping=es))

    # b. V=1000; start row has 2 finite entries; EOS (3) boosted by +10 in every row (+4 was too
    #    little: only one hypothesis ended in EOS and the three modes agreed)
    big = masked_v1000_table()
    tables["masked_v1000"] = big  # generated, not stored: tests/beam_hf.rs builds the same table
    tables["masked_v1000_eos"] = masked_v1000_table(eos_in_start_row=True)
    for es in modes:
        cases.append(dict(name=f"masked_v1000_eos_{mode_name[es]}", table="masked_v1000_eos", start=0,
                          num_beams=4, eos=[3], max_new_tokens=6, num_return_sequences=4,
                          length_penalty=1.0, early_stopping=es))
    for lp, suffix in [(1.0, ""), (2.0, "_lp2")]:
        for es in modes:
            cases.append(dict(name=f"masked_v1000{suffix}_{mode_name[es]}", table="masked_v1000", start=0,
                              num_beams=4, eos=[3], max_new_tokens=6, num_return_sequences=4,
                              length_penalty=lp, early_stopping=es))

    # c. small random configs (seeds 1000..1011), plus seeds picked from a scan of 2000..2399 that show:
    #    2003 a -1e9 placeholder holding tokens, 2006 false != "never", 2008 an exact score tie,
    #    2077/2167 a placeholder whose score (-1e9 / L**2) is above -1e8
    for seed in list(range(1000, 1012)) + [2003, 2006, 2008, 2077, 2167]:
        cfg = small_config(seed)
        if seed < 2000 and seed % 3 == 0:
            cfg["num_return_sequences"] = 1 + seed % cfg["num_beams"]
        tag = "small" if seed < 2000 else "picked"
        for es in modes:
            cases.append(dict(name=f"{tag}_{seed}{'_masked' if seed % 2 else ''}_{mode_name[es]}", **cfg,
                              early_stopping=es))
    return cases, tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="run the built-in cases")
    ap.add_argument("--cases", help="JSON file: a list of cases (or an object with 'cases' and 'tables')")
    ap.add_argument("--out", default=OUT_DEFAULT)
    ap.add_argument("--print", nargs="*", default=None, help="print results of cases whose name starts so")
    a = ap.parse_args()
    if a.write:
        cases, tables = builtin_cases()
    elif a.cases:
        data = json.load(open(a.cases))
        cases, tables = (data, {}) if isinstance(data, list) else (data["cases"], data.get("tables", {}))
    else:
        ap.error("need --write or --cases")
    transformers.logging.set_verbosity_error()
    for c in cases:
        t = c["table"]
        tab = tables[t] if isinstance(t, str) else t
        c["results"] = run_case(c, tab if isinstance(tab, np.ndarray) else table_from_json(tab))
        if a.print is not None and any(c["name"].startswith(p) for p in a.print or [""]):
            print(c["name"], f"(early_stopping={c['early_stopping']!r}, lp={c['length_penalty']})")
            for r in c["results"]:
                print(f"   {r['tokens']}  {r['score']:.6f}{'  placeholder' if r.get('placeholder') else ''}")
    doc = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
           "generator": "scripts/hf_beam_reference.py", "cases": cases,
           "tables": {k: v for k, v in tables.items() if not isinstance(v, np.ndarray)}}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
