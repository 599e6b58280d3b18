"""Training examples for the needle-reader model: RULER-style needles planted in Brown Corpus text,
laid out exactly as the runtime's `answer()` prompts the model.

Standard library only, so that its test (test_data.py) runs on any machine with python3.

The layout is the chat template of the trained tokenizer (tools/train/train.py writes it):

    <s><|user|>\\n{document}\\n\\n{question}<|end|>\\n<|assistant|>\\n{answer}<|end|>

which is what `answer(document, question)` builds (one user message "{document}\\n\\n{question}").
A training example may go on with more turns about the same document,

    \\n<|user|>\\n{question 2}<|end|>\\n<|assistant|>\\n{answer 2}<|end|> ...

so that one long prefill teaches several retrievals. Loss weights: 1 on answer tokens (and the
<|end|> after each), `lm_weight` on the haystack (ordinary language modelling, which forms the local
attention the model needs), 0 on the prompt scaffolding and on needle values (random, so
unpredictable). Positions may skip ahead (PoSE) so that short sequences teach long distances.

Token-exact assembly: the haystack is a slice of the tokenized corpus cut at sentence starts; a
needle sentence is tokenized with the separator in front of it (" " + sentence, so the space joins
its first word as the byte-level pre-tokenizer does), and a paragraph break is two newline tokens
followed by the bare sentence. Concatenating pieces this way gives the same ids as tokenizing the
whole text (test_data.py checks the rule with a stand-in tokenizer; train.py checks it with the
real one on sampled examples before training).
"""
from __future__ import annotations

import bisect
import json
import os
import random
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

TEMPLATES_PATH = os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'eval', 'needle_templates.json')

BOS, USER, ASSISTANT, END = '<s>', '<|user|>', '<|assistant|>', '<|end|>'
SPECIAL_TOKENS = [BOS, USER, ASSISTANT, END]
# Jinja, rendered by transformers' apply_chat_template and by the runtime (@huggingface/jinja).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

Encode = Callable[[str], List[int]]


def load_templates(path: str = TEMPLATES_PATH) -> dict:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@dataclass
class Corpus:
    """A tokenized text: `ids`; `sentence_starts`, the token index where each sentence starts with
    its separator (ascending); `paragraph_text_starts`, for each paragraph (but the first), the
    token index of its first sentence's own text, after the newlines that separate it."""
    ids: List[int]
    sentence_starts: List[int]
    paragraph_starts: List[int]
    paragraph_text_starts: List[int]


def corpus_from_text(text: str, encode_with_offsets: Callable[[str], tuple]) -> Corpus:
    """`text`: one sentence per line, paragraphs separated by a blank line (scripts/brown-corpus.ts).
    It is joined as the model reads documents (sentences by a space, paragraphs by a blank line),
    tokenized once, and sentence starts are mapped to token indices through the tokens' character
    offsets. `encode_with_offsets(text) -> (ids, [(start, end) per token])`."""
    paragraphs = [[s.strip() for s in p.split('\n') if s.strip()] for p in text.split('\n\n')]
    paragraphs = [p for p in paragraphs if p]
    parts: List[str] = []
    sent_chars: List[int] = []  # char offset of each sentence's separator
    para_chars: List[tuple] = []  # (separator offset, text offset) of each paragraph but the first
    pos = 0
    for pi, p in enumerate(paragraphs):
        for si, s in enumerate(p):
            sep = '' if pi == 0 and si == 0 else ('\n\n' if si == 0 else ' ')
            sent_chars.append(pos)
            if si == 0 and pi > 0:
                para_chars.append((pos, pos + len(sep)))
            parts.append(sep + s)
            pos += len(sep) + len(s)
    ids, offsets = encode_with_offsets(''.join(parts))
    tok_at = {}
    for i, (a, _) in enumerate(offsets):
        tok_at.setdefault(a, i)
    # A separator that merged into the previous token is not a clean cut: such starts are skipped.
    starts = [tok_at[c] for c in sent_chars if c in tok_at]
    paras = [(tok_at[a], tok_at[b]) for a, b in para_chars if a in tok_at and b in tok_at]
    return Corpus(list(ids), starts, [a for a, _ in paras], [b for _, b in paras])


@dataclass
class Vocab:
    bos: int
    user: int
    assistant: int
    end: int
    newline: int
    pad: int = 0


@dataclass
class Example:
    ids: List[int]
    weights: List[float]
    positions: List[int]
    # (key, value, needle token start) of each needle, and the keys asked, in order.
    needles: List[tuple] = field(default_factory=list)
    asked: List[str] = field(default_factory=list)
    # Index of the first token after the document (the blank line before the first question).
    tail_start: int = 0
    # Token range [a, b) of the value inside each answer, in the order asked.
    answer_values: List[tuple] = field(default_factory=list)


def word_pools(text: str, templates: Optional[dict] = None, min_count: int = 2) -> dict:
    """Keys and value words for training, drawn from the training text itself so that the model
    meets thousands of them and learns to copy any key rather than recognise a few: lowercase words
    of 4-12 letters, and names (capitalised words never seen in lowercase and not opening a
    sentence), each seen at least `min_count` times. Every key and value of the eval lists is left
    out, so the evaluation asks about words the model never saw as keys or values."""
    t = templates or load_templates()
    held = set()
    for group in ('keys', 'values'):
        for v in t[group]['eval'].values():
            if isinstance(v, list):
                held.update(x.lower() for x in v)
    lower: dict = {}
    capital: dict = {}
    for line in text.split('\n'):
        words = line.split()
        for i, w in enumerate(words):
            w = w.strip('.,;:?!"()\'')
            if not w.isalpha() or not w.isascii():
                continue
            if w.islower():
                lower[w] = lower.get(w, 0) + 1
            elif i > 0 and w[0].isupper() and w[1:].islower():
                capital[w] = capital.get(w, 0) + 1
    words = sorted(w for w, n in lower.items() if n >= min_count and 4 <= len(w) <= 12 and w not in held)
    names = sorted(w for w, n in capital.items() if n >= min_count and len(w) >= 3 and w.lower() not in lower and w.lower() not in held)
    return {'words': words, 'names': names}


ONSETS = ['b', 'br', 'c', 'ch', 'd', 'dr', 'f', 'g', 'gl', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'pl', 'qu', 'r', 's', 'sh', 'st', 't', 'tr', 'v', 'w', 'z']
NUCLEI = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'oo', 'y']
CODAS = ['', '', 'n', 'r', 'l', 's', 'x', 'nd', 'rk', 'm']


def made_up_word(rng: random.Random) -> str:
    """A pronounceable word that is in no dictionary (2-3 syllables)."""
    return ''.join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(rng.randint(2, 3)))


class NeedleTask:
    """Keys, values, templates and their tokenizations for one split. 'eval' takes its keys and
    value words from the eval lists of the templates file; 'train' from `pools` (word_pools of the
    training text) when given, else from the train lists."""

    def __init__(self, encode: Encode, vocab: Vocab, split: str = 'train', templates: Optional[dict] = None, pools: Optional[dict] = None):
        self.t = templates or load_templates()
        self.encode = encode
        self.v = vocab
        keys = self.t['keys'][split]
        vals = self.t['values'][split]
        self.made_up = pools is not None
        if pools is not None:
            self.key_words, self.key_names, self.value_words = pools['words'], pools['names'], pools['words']
            self.adjectives = list(keys['adjectives']) + pools['words']
        else:
            self.key_words, self.key_names, self.value_words = list(keys['words']), list(keys['names']), list(vals['words'])
            self.adjectives = list(keys['adjectives'])
        self.code_alphabet = vals['code_alphabet']

    def key(self, rng: random.Random) -> str:
        """A word (35%), a name (35%), a two-word phrase (15%), or, with pools, a made-up word (15%):
        keys the tokenizer splits into unfamiliar pieces, so that copying works for any key."""
        r = rng.random()
        if r < 0.35:
            return rng.choice(self.key_words)
        if r < 0.7:
            return rng.choice(self.key_names)
        if r < 0.85 or not self.made_up:
            return f'{rng.choice(self.adjectives)} {rng.choice(self.key_words)}'
        w = made_up_word(rng)
        return w.capitalize() if rng.random() < 0.5 else w

    def keys(self, rng: random.Random, n: int) -> List[str]:
        out: List[str] = []
        while len(out) < n:
            k = self.key(rng)
            if k not in out:
                out.append(k)
        return out

    def value(self, rng: random.Random, kind: str) -> str:
        if kind == 'number':
            return str(rng.randrange(1_000_000, 10_000_000))
        if kind == 'word':
            return made_up_word(rng) if self.made_up and rng.random() < 0.2 else rng.choice(self.value_words)
        a = self.code_alphabet
        return ''.join(rng.choice(a) for _ in range(4)) + '-' + ''.join(rng.choice(a) for _ in range(4))

    def texts(self, rng: random.Random, key: str, value: str, kind: str) -> tuple:
        name = self.t['kinds'][kind]
        fill = dict(kind=name, key=key, value=value)
        needle = rng.choice(self.t['needles']).format(**fill)
        question = rng.choice(self.t['questions']).format(**fill)
        answer = self.t['answer'].format(**fill)
        return needle, question, answer


def _value_span(encode: Encode, text: str, value: str) -> tuple:
    """Token range [a, b) covering `value` inside encode(text) (its last occurrence), from the
    lengths of two prefixes that end at pre-token boundaries (the space before the value may belong
    to the value's first token, so the first prefix stops before it)."""
    cut = text.rindex(value)
    a = len(encode(text[:cut].rstrip(' ')))
    b = len(encode(text[:cut + len(value)]))
    return a, b


def build_example(
    rng: random.Random,
    task: NeedleTask,
    corpus: Optional[Corpus],
    length: int,
    needles: int,
    questions: int,
    lm_weight: float = 0.1,
    max_position: int = 0,
    kinds: Sequence[str] = ('number', 'word', 'code'),
) -> Example:
    """One example of at most `length` tokens: `needles` facts (distinct keys) in a haystack cut from
    `corpus` (None: the needles alone, back to back), then `questions` of them asked in turn.
    With `max_position` > length the positions skip ahead (PoSE) so the last one is below it."""
    v, enc = task.v, task.encode
    keys = task.keys(rng, needles)
    facts = []
    for k in keys:
        kind = rng.choice(list(kinds))
        val = task.value(rng, kind)
        facts.append((k, val) + task.texts(rng, k, val, kind))

    # The question-and-answer tail.
    tail: List[int] = []
    tail_w: List[float] = []
    asked = rng.sample(range(needles), min(questions, needles))
    value_spans = []
    for j, qi in enumerate(asked):
        _, val, _, q, a = facts[qi]
        lead = ([v.newline, v.newline] if j == 0 else [v.newline, v.user, v.newline]) + enc(q) + [v.end, v.newline, v.assistant, v.newline]
        ans = enc(a) + [v.end]
        va, vb = _value_span(enc, a, val)
        value_spans.append((len(tail) + len(lead) + va, len(tail) + len(lead) + vb))
        tail += lead + ans
        tail_w += [0.0] * len(lead) + [1.0] * len(ans)

    # Needle sentences, tokenized with a leading space (inside the text) and bare (document start).
    needle_ids = []
    for (k, val, needle, _, _) in facts:
        spaced = enc(' ' + needle)
        a, b = _value_span(enc, ' ' + needle, val)
        bare = enc(needle)
        ba, bb = _value_span(enc, needle, val)
        needle_ids.append(((spaced, a, b), (bare, ba, bb)))

    head = [v.bos, v.user, v.newline]
    budget = length - len(head) - len(tail) - sum(len(n[0][0]) for n in needle_ids)
    # The haystack: whole sentences from a paragraph start, as many as fit. `hay` keeps the
    # paragraph's leading newlines; they are dropped unless a needle goes before the first sentence.
    hay: List[int] = []
    lead = 0
    cuts: List[int] = [0]  # where a needle may go: before a sentence's separator, or at the end
    if corpus is not None and budget > 0:
        pi = rng.randrange(len(corpus.paragraph_starts))
        p, tp = corpus.paragraph_starts[pi], corpus.paragraph_text_starts[pi]
        lead = tp - p
        si = bisect.bisect_right(corpus.sentence_starts, p)
        end = p
        ss = corpus.sentence_starts
        while si < len(ss) and ss[si] - p <= budget:
            end = ss[si]
            cuts.append(end - p)
            si += 1
        hay = corpus.ids[p:end]
    places = sorted(rng.choice(cuts) for _ in needle_ids)
    order = list(range(len(needle_ids)))
    rng.shuffle(order)
    ids = list(head)
    w = [0.0] * len(head)
    spans = []
    prev = 0 if places and places[0] == 0 else lead
    for slot, place in zip(order, places):
        seg = hay[prev:max(prev, place)]
        ids += seg
        w += [lm_weight] * len(seg)
        prev = max(prev, place)
        toks, a, b = needle_ids[slot][1] if len(ids) == len(head) else needle_ids[slot][0]
        nw = [lm_weight] * len(toks)
        for i in range(a, b):
            nw[i] = 0.0
        spans.append((facts[slot][0], facts[slot][1], len(ids)))
        ids += toks
        w += nw
    seg = hay[prev:]
    ids += seg
    w += [lm_weight] * len(seg)
    tail_start = len(ids)
    ids += tail
    w += tail_w
    positions = list(range(len(ids)))
    if max_position > len(ids):
        positions = pose_positions(rng, len(ids), max_position, protect_from=tail_start)
    return Example(ids, w, positions, spans, [facts[i][0] for i in asked], tail_start, [(tail_start + a, tail_start + b) for a, b in value_spans])


def pose_positions(rng: random.Random, n: int, max_position: int, protect_from: int, skips: int = 2) -> List[int]:
    """Positions 0..n-1 with up to `skips` jumps placed before `protect_from` (the question and its
    answers stay contiguous), adding up to a random total so that the last position < max_position."""
    extra = rng.randrange(0, max_position - n + 1)
    if protect_from <= 1 or extra == 0:
        return list(range(n))
    points = sorted(rng.randrange(1, protect_from) for _ in range(skips))
    shares = sorted(rng.randrange(0, extra + 1) for _ in range(skips - 1)) + [extra]
    pos = list(range(n))
    prev_share = 0
    for p, s in zip(points, shares):
        add = s - prev_share
        prev_share = s
        for i in range(p, n):
            pos[i] += add
    return pos
