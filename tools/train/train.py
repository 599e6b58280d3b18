#!/usr/bin/env python3
"""Trains needle-reader, the project's embedded default model: a small Llama (Hugging Face
`LlamaForCausalLM`) that reads English text and answers RULER-style needle questions about it.

Three steps, all seeded (see tools/train/README.md; run.sh chains them on the GPU machine):

    train.py prepare --text .train-data/brown-train.txt --heldout demo/assets/brown-heldout.txt --work W
        trains the byte-level BPE tokenizer (Hugging Face `tokenizers`, 4096 tokens, every digit a
        token) on the training text and tokenizes both texts once (W/corpus.pt).
    train.py fit --work W --out W/run [--minutes 7] [--seed 0] [recipe options]
        trains the model for a fixed time on a length curriculum (data.py builds the examples),
        evaluating retrieval on the held-out text as it goes, and saves it in Hugging Face layout.
    train.py eval --work W --model W/run/model [--lengths 1024,...]
        the final retrieval check at each length (teacher-forced exact match on held-out text).

Needs PyTorch with CUDA, `transformers` and `tokenizers` (the GPU machine has them).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time
from typing import List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

VOCAB_SIZE = 4096


# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    # Every digit its own token (numbers copy digit by digit), then GPT-2's byte-level split.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=data.SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    docs = document_text(text).split('\n\n')
    tok.train_from_iterator(docs, trainer)
    return tok


def document_text(text: str) -> str:
    """Sentence-per-line text as the model reads it: sentences joined by a space, paragraphs by a blank line."""
    paragraphs = [' '.join(s.strip() for s in p.split('\n') if s.strip()) for p in text.split('\n\n')]
    return '\n\n'.join(p for p in paragraphs if p)


def tokenizer_config() -> dict:
    return {
        'tokenizer_class': 'PreTrainedTokenizerFast',
        'bos_token': data.BOS,
        'eos_token': data.END,
        'pad_token': data.END,
        'add_bos_token': False,
        'add_eos_token': False,
        'model_max_length': 131072,
        'chat_template': data.CHAT_TEMPLATE,
        'clean_up_tokenization_spaces': False,
    }


def vocab_of(tok) -> data.Vocab:
    nl = tok.encode('\n', add_special_tokens=False).ids
    assert len(nl) == 1, nl
    ids = {s: tok.token_to_id(s) for s in data.SPECIAL_TOKENS}
    return data.Vocab(bos=ids[data.BOS], user=ids[data.USER], assistant=ids[data.ASSISTANT], end=ids[data.END], newline=nl[0], pad=ids[data.END])


def encoder(tok):
    return lambda s: tok.encode(s, add_special_tokens=False).ids


def corpus_of(tok, text: str) -> data.Corpus:
    def with_offsets(t):
        e = tok.encode(t, add_special_tokens=False)
        return e.ids, e.offsets
    return data.corpus_from_text(text, with_offsets)


def cmd_prepare(a) -> None:
    import torch
    t0 = time.time()
    train_text = open(a.text, encoding='utf-8').read()
    heldout_text = open(a.heldout, encoding='utf-8').read()
    if a.tokenizer:  # continue from a trained model: keep its tokenizer
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(a.tokenizer)
    else:
        tok = train_tokenizer(train_text, a.vocab)
    os.makedirs(a.work, exist_ok=True)
    tok.save(os.path.join(a.work, 'tokenizer.json'))
    train = corpus_of(tok, train_text)
    heldout = corpus_of(tok, heldout_text)
    pools = data.word_pools(train_text)
    torch.save({'train': train.__dict__, 'heldout': heldout.__dict__, 'pools': pools}, os.path.join(a.work, 'corpus.pt'))
    print(json.dumps({'prepare_s': round(time.time() - t0, 1), 'vocab': tok.get_vocab_size(),
                      'key_words': len(pools['words']), 'key_names': len(pools['names']),
                      'train_tokens': len(train.ids), 'train_sentences': len(train.sentence_starts),
                      'heldout_tokens': len(heldout.ids)}), flush=True)


def load_work(work: str):
    import torch
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(work, 'tokenizer.json'))
    c = torch.load(os.path.join(work, 'corpus.pt'))
    return tok, data.Corpus(**c['train']), data.Corpus(**c['heldout']), c['pools']


# ----------------------------------------------------------------------------- curriculum

# The length curriculum. A stage ends when the retrieval eval at its `gate` length reaches
# GATE_ACCURACY (the model has learnt what the stage teaches) or when its share of the time budget
# is spent, whichever comes first. Per stage: token lengths, needles and questions per example, the
# share of examples with a haystack (the others are needles alone), and the share of examples whose
# positions skip ahead (PoSE) up to `max_position`.
STAGES = [
    dict(until=0.15, gate=512, lengths=(192, 512), needles=(2, 12), questions=(2, 6), haystack=0.5, pose=0.0, max_position=0),
    dict(until=0.40, gate=2048, lengths=(512, 2048), needles=(1, 8), questions=(1, 5), haystack=0.9, pose=0.25, max_position=16384),
    dict(until=0.70, gate=8192, lengths=(2048, 8192), needles=(1, 8), questions=(1, 5), haystack=1.0, pose=0.5, max_position=131072),
    dict(until=1.01, gate=None, lengths=(8192, 24576), needles=(1, 8), questions=(1, 5), haystack=1.0, pose=0.5, max_position=163840),
]
GATE_ACCURACY = 0.6


_W = {}


def _worker_init(work: str, lm_weight: float, kinds: List[str]) -> None:
    tok, train, _, pools = load_work(work)
    _W['task'] = data.NeedleTask(encoder(tok), vocab_of(tok), 'train', pools=pools)
    _W['corpus'] = train
    _W['lm_weight'] = lm_weight


def make_batch(args) -> tuple:
    """One batch of examples for the stage in force when it was asked for (runs in a worker)."""
    seed, stage, tokens = args
    rng = random.Random(seed)
    st = STAGES[stage]
    (lo, hi), (n_lo, n_hi), (q_lo, q_hi) = st['lengths'], st['needles'], st['questions']
    hay_share, pose_share, max_pos = st['haystack'], st['pose'], st['max_position']
    # Lengths drawn log-uniformly, rounded to 64; batch size keeps the tokens per step constant.
    length = int(math.exp(rng.uniform(math.log(lo), math.log(hi)))) // 64 * 64
    count = max(1, tokens // length)
    out = []
    for _ in range(count):
        # A needle takes about 25 tokens and a question with its answer about 45: keep them to ~2/3.
        n = min(rng.randint(n_lo, n_hi), max(1, length // 40))
        q = min(rng.randint(min(q_lo, n), min(q_hi, n)), max(1, (length * 2 // 3 - 25 * n) // 45))
        hay = rng.random() < hay_share
        pose = max_pos if rng.random() < pose_share else 0
        ex = data.build_example(rng, _W['task'], _W['corpus'] if hay else None, length if hay else min(length, 160 * n + 64),
                                n, q, lm_weight=_W['lm_weight'], max_position=pose)
        out.append((ex.ids, ex.weights, ex.positions))
    return max(len(x[0]) for x in out), out


# ----------------------------------------------------------------------------- model

def build_model(a, vocab: data.Vocab, vocab_size: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=a.hidden,
        intermediate_size=a.intermediate,
        num_hidden_layers=a.layers,
        num_attention_heads=a.hidden // 64,
        num_key_value_heads=a.kv_heads,
        head_dim=64,
        max_position_embeddings=a.max_positions,
        rope_theta=a.rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=vocab.bos,
        eos_token_id=vocab.end,
        pad_token_id=vocab.pad,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        attn_implementation='sdpa',
    )
    torch.manual_seed(a.seed)
    return LlamaForCausalLM(cfg)


def autocast(device):
    """bf16 autocast on the GPU; nothing on the CPU (smoke runs)."""
    import contextlib
    import torch
    return torch.autocast('cuda', dtype=torch.bfloat16) if device.type == 'cuda' else contextlib.nullcontext()


def to_tensors(examples, length: int, pad: int, device):
    import torch
    B = len(examples)
    ids = torch.full((B, length), pad, dtype=torch.long)
    pos = torch.zeros((B, length), dtype=torch.long)
    w = torch.zeros((B, length), dtype=torch.float32)
    for i, (x, ww, p) in enumerate(examples):
        n = len(x)
        ids[i, :n] = torch.tensor(x)
        w[i, :n] = torch.tensor(ww)
        pos[i, :n] = torch.tensor(p)
        if n < length:  # padding continues the positions; causal attention keeps it out of the real tokens
            pos[i, n:] = torch.arange(p[-1] + 1, p[-1] + 1 + length - n)
    return ids.to(device, non_blocking=True), pos.to(device, non_blocking=True), w.to(device, non_blocking=True)


def answer_accuracy(model, task: data.NeedleTask, corpus: data.Corpus, rng: random.Random, length: int, count: int, device, needles=(1, 4)) -> dict:
    """Teacher-forced exact match of the answer: 'answer' when every answer token is the argmax
    given the right prefix, which is exactly whether greedy decoding writes the whole answer;
    'value' when the value's tokens are (the runtime's score: the value appears in the answer).
    One question, contiguous positions, eval keys and values, held-out haystack: the layout the
    runtime asks in."""
    import torch
    right = {'answer': 0, 'value': 0}
    for i in range(count):
        n = rng.randint(*needles)
        ex = data.build_example(rng, task, corpus, length, n, 1, lm_weight=0.0)
        ids = torch.tensor([ex.ids], device=device)
        with torch.no_grad(), autocast(device):
            h = model.model(input_ids=ids).last_hidden_state[0]
            sel = [j for j, w in enumerate(ex.weights) if w == 1.0]
            logits = model.lm_head(h[[j - 1 for j in sel]])
        ok = {j: int(t) == ex.ids[j] for t, j in zip(logits.argmax(-1).tolist(), sel)}
        a, b = ex.answer_values[0]
        right['answer'] += int(all(ok.values()))
        right['value'] += int(all(ok[j] for j in range(a, b)))
    return {k: v / count for k, v in right.items()}


# ----------------------------------------------------------------------------- fit

def cmd_fit(a) -> None:
    import torch
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    random.seed(a.seed)
    tok, train, heldout, pools = load_work(a.work)
    vocab = vocab_of(tok)
    enc = encoder(tok)
    check_tokenization(tok, train, vocab, pools)
    if a.init:
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(a.init, attn_implementation='sdpa').float().to(device)
    else:
        model = build_model(a, vocab, tok.get_vocab_size()).to(device)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and 'embed' not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and 'embed' not in n)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **({'fused': True} if device.type == 'cuda' else {}))
    eval_task = data.NeedleTask(enc, vocab, 'eval')
    log = {'args': vars(a), 'params': params, 'device': torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu',
           'steps': [], 'evals': []}
    print(json.dumps({'params': params, 'device': log['device']}), flush=True)

    budget = a.minutes * 60
    pool = mp.get_context('spawn').Pool(a.workers, initializer=_worker_init, initargs=(a.work, a.lm_weight, ['number', 'word', 'code']))
    pending = []
    requested = 0
    t0 = time.time()
    step = 0
    tokens_seen = 0
    next_eval = t0 + a.eval_every
    eval_rng = random.Random(a.seed + 99)
    stage = a.start_stage
    log['stages'] = [{'stage': stage, 'step': 0, 't': 0.0}]
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        if stage < a.max_stage and frac >= STAGES[stage]['until']:
            stage += 1
            log['stages'].append({'stage': stage, 'step': step, 't': round(time.time() - t0, 1), 'why': 'time'})
            print(json.dumps(log['stages'][-1]), flush=True)
        while len(pending) < a.workers * 2:
            pending.append(pool.apply_async(make_batch, (((a.seed * 1_000_003 + requested) & 0x7fffffff, stage, a.tokens),)))
            requested += 1
        length, examples = pending.pop(0).get()
        ids, pos, w = to_tensors(examples, length, vocab.pad, device)
        warm = min(1.0, (step + 1) / a.warmup)
        lr = a.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g['lr'] = lr
        with autocast(device):
            logits = model(input_ids=ids[:, :-1], position_ids=pos[:, :-1]).logits
        ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction='none').view(ids.shape[0], -1)
        ww = w[:, 1:]
        loss = (ce * ww).sum() / ww.sum().clamp_min(1e-6)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += ids.numel()
        if step % 25 == 0:
            with torch.no_grad():
                ans = ww == 1.0
                hay = (ww > 0) & (ww < 1.0)
                acc = ((logits.argmax(-1) == ids[:, 1:]) & ans).sum().item() / max(1, ans.sum().item())
                row = {'step': step, 't': round(time.time() - t0, 1), 'len': length, 'lr': round(lr, 6), 'loss': round(loss.item(), 4),
                       'answer_ce': round(((ce * ans).sum() / ans.sum().clamp_min(1)).item(), 4), 'answer_token_acc': round(acc, 4),
                       'lm_ce': round(((ce * hay).sum() / hay.sum().clamp_min(1)).item(), 4), 'grad_norm': round(gn.item(), 3), 'tokens': tokens_seen}
            log['steps'].append(row)
            print(json.dumps(row), flush=True)
        if time.time() >= next_eval:
            model.eval()
            lengths = [int(x) for x in a.eval_lengths.split(',')] + ([a.eval_long] if stage == len(STAGES) - 1 else [])
            ev = {'step': step, 't': round(time.time() - t0, 1), 'stage': stage,
                  'exact_match': {L: answer_accuracy(model, eval_task, heldout, eval_rng, L, a.eval_count, device) for L in lengths}}
            model.train()
            log['evals'].append(ev)
            print(json.dumps(ev), flush=True)
            gate = STAGES[stage]['gate']
            if stage < a.max_stage and gate is not None and ev['exact_match'].get(gate, {}).get('answer', 0.0) >= GATE_ACCURACY:
                stage += 1
                log['stages'].append({'stage': stage, 'step': step, 't': ev['t'], 'why': f'exact match {ev["exact_match"][gate]} at {gate}'})
                print(json.dumps(log['stages'][-1]), flush=True)
            next_eval = time.time() + a.eval_every
    pool.terminate()
    log['train_s'] = round(time.time() - t0, 1)
    log['train_steps'] = step
    log['train_tokens'] = tokens_seen
    save_model(model, tok, a.out)
    with open(os.path.join(a.out, 'train_log.json'), 'w') as f:
        json.dump(log, f, indent=1)
    print(json.dumps({'saved': a.out, 'steps': step, 'tokens': tokens_seen, 'train_s': log['train_s']}), flush=True)


def check_tokenization(tok, corpus: data.Corpus, vocab: data.Vocab, pools: dict, samples: int = 200) -> None:
    """The builder's token-exact assembly, checked with the real tokenizer: decoding an example and
    encoding the text again gives the same ids."""
    task = data.NeedleTask(encoder(tok), vocab, 'train', pools=pools)
    rng = random.Random(1)
    bad = 0
    for i in range(samples):
        ex = data.build_example(rng, task, corpus if i % 4 else None, rng.choice([256, 1024, 4096]), rng.randint(1, 8), rng.randint(1, 4))
        text = tok.decode(ex.ids, skip_special_tokens=False)
        again = tok.encode(text, add_special_tokens=False).ids
        if again != ex.ids:
            if bad == 0:
                at = next((j for j, (x, y) in enumerate(zip(again, ex.ids)) if x != y), min(len(again), len(ex.ids)))
                print(json.dumps({'tokenization_mismatch': {'at': at, 'built': ex.ids[max(0, at - 5):at + 5], 'retokenized': again[max(0, at - 5):at + 5],
                                                            'text': text[max(0, len(tok.decode(ex.ids[:at], skip_special_tokens=False)) - 40):][:80]}}), flush=True)
            bad += 1
    print(json.dumps({'tokenization_check': f'{samples - bad}/{samples} examples re-tokenize to the same ids'}), flush=True)


def save_model(model, tok, out: str) -> None:
    import torch
    mdir = os.path.join(out, 'model')
    os.makedirs(mdir, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(mdir, safe_serialization=True)
    model.to(torch.float32)
    tok.save(os.path.join(mdir, 'tokenizer.json'))
    with open(os.path.join(mdir, 'tokenizer_config.json'), 'w') as f:
        json.dump(tokenizer_config(), f, indent=2)
    # Golden ids for the runtime's tokenizer test (test/needle_reader.test.ts).
    samples = ['One of the special magic numbers for silver harbor is: 4093871.', 'Dan Morgan told himself he would forget Ann Turner.\n\nHe was well rid of her.',
               'The magic code for Agatha is 3fa9-0c1e.', "  spaces,\ttabs and 'quotes' -- 1961's 12.5%\n"]
    chat = tok.decode([tok.token_to_id(data.BOS)], skip_special_tokens=False)
    golden = [{'text': s, 'ids': tok.encode(s, add_special_tokens=False).ids} for s in samples]
    rendered = f'{chat}<|user|>\n{samples[1]}\n\n{samples[0]}<|end|>\n<|assistant|>\n'
    golden.append({'text': rendered, 'ids': tok.encode(rendered, add_special_tokens=False).ids})
    with open(os.path.join(out, 'tokenizer_golden.json'), 'w') as f:
        json.dump(golden, f, indent=1)


# ----------------------------------------------------------------------------- eval

def cmd_eval(a) -> None:
    import torch
    from transformers import LlamaForCausalLM
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    tok, _, heldout, _ = load_work(a.work)
    model = LlamaForCausalLM.from_pretrained(a.model).float().to(device).eval()  # bf16 autocast on the GPU, as in training
    task = data.NeedleTask(encoder(tok), vocab_of(tok), 'eval')
    rng = random.Random(a.seed)
    result = {}
    for L in [int(x) for x in a.lengths.split(',')]:
        t = time.time()
        result[L] = answer_accuracy(model, task, heldout, rng, L, a.count, device)
        print(json.dumps({'length': L, 'exact_match': result[L], 's': round(time.time() - t, 1)}), flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'model': a.model, 'count': a.count, 'exact_match': result}, f, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    pp = sub.add_parser('prepare')
    pp.add_argument('--text', required=True)
    pp.add_argument('--heldout', required=True)
    pp.add_argument('--work', required=True)
    pp.add_argument('--vocab', type=int, default=VOCAB_SIZE)
    pp.add_argument('--tokenizer', help='reuse this tokenizer.json instead of training one (continuing a model)')
    pf = sub.add_parser('fit')
    pf.add_argument('--work', required=True)
    pf.add_argument('--out', required=True)
    pf.add_argument('--minutes', type=float, default=7.0)
    pf.add_argument('--seed', type=int, default=0)
    pf.add_argument('--hidden', type=int, default=256)
    pf.add_argument('--intermediate', type=int, default=768)
    pf.add_argument('--layers', type=int, default=6)
    pf.add_argument('--kv-heads', type=int, default=2)
    pf.add_argument('--rope-theta', type=float, default=1e6)
    pf.add_argument('--max-positions', type=int, default=163840)
    pf.add_argument('--lr', type=float, default=2e-3)
    pf.add_argument('--warmup', type=int, default=150)
    pf.add_argument('--lm-weight', type=float, default=0.1)
    pf.add_argument('--tokens', type=int, default=65536, help='tokens per step')
    pf.add_argument('--workers', type=int, default=4)
    pf.add_argument('--eval-every', type=float, default=45.0, help='seconds between retrieval evals')
    pf.add_argument('--eval-count', type=int, default=16)
    pf.add_argument('--max-stage', type=int, default=len(STAGES) - 1, help='stop the curriculum at this stage (probes)')
    pf.add_argument('--start-stage', type=int, default=0, help='begin the curriculum at this stage (continuing a model)')
    pf.add_argument('--init', help='continue from this saved model folder instead of random weights (same tokenizer: prepare --tokenizer)')
    pf.add_argument('--eval-lengths', default='512,2048,8192', help='lengths of the retrieval evals while training')
    pf.add_argument('--eval-long', type=int, default=32768, help='also evaluated once half the time has passed')
    pe = sub.add_parser('eval')
    pe.add_argument('--work', required=True)
    pe.add_argument('--model', required=True)
    pe.add_argument('--lengths', default='1024,4096,16384,32768,65536,131072')
    pe.add_argument('--count', type=int, default=32)
    pe.add_argument('--seed', type=int, default=7)
    pe.add_argument('--json')
    a = p.parse_args()
    {'prepare': cmd_prepare, 'fit': cmd_fit, 'eval': cmd_eval}[a.cmd](a)


if __name__ == '__main__':
    main()
