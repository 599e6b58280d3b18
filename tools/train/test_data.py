"""Tests of the training data builder (no GPU, no third-party packages):

    python3 -m unittest discover -s tools/train -p 'test_*.py'

A stand-in tokenizer splits text the way the trained byte-level BPE pre-tokenizes it (a space joins
the word after it, every digit and every newline is its own piece), one id per distinct piece, so
that "the ids of the pieces equal the ids of the whole text" can be checked exactly.
"""
import random
import re
import unittest

import data

PIECE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+|\d| ?[^\s\w]+|\s+(?!\S)|\s+|_""")
SPECIAL = re.compile('(' + '|'.join(re.escape(s) for s in data.SPECIAL_TOKENS) + ')')


class StandIn:
    def __init__(self):
        self.vocab = {s: i for i, s in enumerate(data.SPECIAL_TOKENS)}
        self.inverse = list(data.SPECIAL_TOKENS)

    def _id(self, piece):
        if piece not in self.vocab:
            self.vocab[piece] = len(self.inverse)
            self.inverse.append(piece)
        return self.vocab[piece]

    def with_offsets(self, text):
        ids, offs = [], []
        pos = 0
        for part in SPECIAL.split(text):
            if part in self.vocab and part in data.SPECIAL_TOKENS:
                ids.append(self.vocab[part])
                offs.append((pos, pos + len(part)))
            else:
                for m in PIECE.finditer(part):
                    ids.append(self._id(m.group()))
                    offs.append((pos + m.start(), pos + m.end()))
            pos += len(part)
        return ids, offs

    def encode(self, text):
        return self.with_offsets(text)[0]

    def decode(self, ids):
        return ''.join(self.inverse[i] for i in ids)


TEXT = '\n\n'.join(
    '\n'.join(f'Sentence {p}.{s} tells of the {["river", "mill", "harbor"][s % 3]} in year {1900 + p * 7 + s}.' for s in range(1 + p % 4))
    for p in range(60)
)


def make():
    tok = StandIn()
    corpus = data.corpus_from_text(TEXT, tok.with_offsets)
    nl = tok.encode('\n')[0]
    vocab = data.Vocab(bos=tok.vocab[data.BOS], user=tok.vocab[data.USER], assistant=tok.vocab[data.ASSISTANT], end=tok.vocab[data.END], newline=nl)
    task = data.NeedleTask(tok.encode, vocab, 'train')
    return tok, corpus, task


class BuilderTest(unittest.TestCase):
    def test_corpus_sentence_starts_are_clean_cuts(self):
        tok, corpus, _ = make()
        self.assertEqual(len(corpus.sentence_starts), sum(1 + p % 4 for p in range(60)))
        self.assertEqual(len(corpus.paragraph_starts), 59)
        for p, t in zip(corpus.paragraph_starts, corpus.paragraph_text_starts):
            self.assertEqual(tok.decode(corpus.ids[p:t]), '\n\n')
            self.assertTrue(tok.decode(corpus.ids[t:t + 1]).startswith('Sentence'))

    def test_examples_tokenize_like_their_text(self):
        tok, corpus, task = make()
        rng = random.Random(7)
        for length in (40, 120, 300, 700):
            for _ in range(20):
                ex = data.build_example(rng, task, corpus, length, needles=rng.randint(1, 6), questions=rng.randint(1, 3))
                text = tok.decode(ex.ids)
                self.assertEqual(tok.encode(text), ex.ids, text)
                self.assertLessEqual(len(ex.ids), length if length > 120 else 10 ** 6)
                # The prompt is exactly what answer() builds: template, document, blank line, question.
                self.assertTrue(text.startswith('<s><|user|>\n'))
                doc, rest = text[len('<s><|user|>\n'):].split('\n\nWh', 1) if '\n\nWh' in text else (None, None)
                self.assertIsNotNone(doc, text)
                self.assertFalse(doc.startswith(' ') or doc.startswith('\n'), doc[:40])
                self.assertIn('<|end|>\n<|assistant|>\n', rest)

    def test_haystack_fills_the_length(self):
        _, corpus, task = make()
        rng = random.Random(3)
        for length in (300, 700):
            ex = data.build_example(rng, task, corpus, length, needles=3, questions=2)
            longest = max(b - a for a, b in zip(corpus.sentence_starts, corpus.sentence_starts[1:]))
            self.assertGreater(len(ex.ids), length - longest)

    def test_weights_mark_answers_and_spare_needle_values(self):
        tok, corpus, task = make()
        rng = random.Random(11)
        for _ in range(30):
            ex = data.build_example(rng, task, corpus, 400, needles=4, questions=3, lm_weight=0.25)
            self.assertEqual(len(ex.weights), len(ex.ids))
            answers = ''.join(tok.inverse[i] for i, w in zip(ex.ids, ex.weights) if w == 1.0)
            for key in ex.asked:
                value = next(v for k, v, _ in ex.needles if k == key)
                self.assertIn(f'for {key} is {value}.<|end|>', answers)
            self.assertEqual(answers.count('<|end|>'), len(ex.asked))
            for key, (a, b) in zip(ex.asked, ex.answer_values):
                value = next(v for k, v, _ in ex.needles if k == key)
                self.assertEqual(tok.decode(ex.ids[a:b]).strip(), value)
                self.assertTrue(all(w == 1.0 for w in ex.weights[a:b]))
            # Needle values get no loss; the rest of each needle gets the language-model weight.
            for key, value, start in ex.needles:
                end = start + next(i for i, t in enumerate(ex.ids[start:]) if tok.inverse[t].endswith('.')) + 1
                spared = tok.decode([t for t, w in zip(ex.ids[start:end], ex.weights[start:end]) if w == 0.0])
                self.assertEqual(spared.strip(), value)
                self.assertIn(key, tok.decode([t for t, w in zip(ex.ids[start:end], ex.weights[start:end]) if w == 0.25]))
            # Scaffolding and questions carry no loss.
            for i, w in zip(ex.ids, ex.weights):
                if i in (task.v.bos, task.v.user, task.v.assistant):
                    self.assertEqual(w, 0.0)

    def test_keys_are_distinct_and_asked_keys_were_planted(self):
        _, corpus, task = make()
        rng = random.Random(5)
        for _ in range(50):
            ex = data.build_example(rng, task, corpus, 500, needles=8, questions=4)
            keys = [k for k, _, _ in ex.needles]
            self.assertEqual(len(set(keys)), 8)
            self.assertEqual(len(ex.asked), 4)
            self.assertTrue(set(ex.asked) <= set(keys))

    def test_needles_alone(self):
        tok, _, task = make()
        ex = data.build_example(random.Random(2), task, None, 200, needles=5, questions=5)
        self.assertEqual(tok.encode(tok.decode(ex.ids)), ex.ids)
        self.assertEqual(len(ex.needles), 5)

    def test_needles_land_at_every_depth(self):
        _, corpus, task = make()
        rng = random.Random(9)
        starts = []
        for _ in range(200):
            ex = data.build_example(rng, task, corpus, 600, needles=1, questions=1)
            starts.append(ex.needles[0][2] / len(ex.ids))
        self.assertLess(min(starts), 0.1)
        self.assertGreater(max(starts), 0.75)

    def test_pose_positions(self):
        _, corpus, task = make()
        rng = random.Random(4)
        for _ in range(50):
            ex = data.build_example(rng, task, corpus, 400, needles=2, questions=2, max_position=100_000)
            p = ex.positions
            self.assertEqual(len(p), len(ex.ids))
            self.assertTrue(all(b > a for a, b in zip(p, p[1:])))
            self.assertLess(p[-1], 100_000)
            # The questions and answers are contiguous.
            q = ex.tail_start
            self.assertEqual(p[-1] - p[q], len(p) - 1 - q)
        self.assertEqual(data.pose_positions(rng, 10, 10, 5), list(range(10)))

    def test_word_pools_leave_out_the_eval_lists(self):
        text = 'The acorn and the lantern met Agatha and Mildred.\n' * 6 + 'Then Mildred saw the lantern by the walnut tree.\n' * 3
        pools = data.word_pools(text)
        self.assertIn('lantern', pools['words'])
        self.assertNotIn('acorn', pools['words'])  # an eval key
        self.assertIn('Mildred', pools['names'])
        self.assertNotIn('Agatha', pools['names'])  # an eval name
        self.assertNotIn('Then', pools['names'])  # opens a sentence
        tok, corpus, _ = make()
        task = data.NeedleTask(tok.encode, make()[2].v, 'train', pools={'words': ['lantern', 'walnut'], 'names': ['Mildred']})
        rng = random.Random(1)
        self.assertEqual(len(set(task.keys(rng, 2))), 2)
        keys = {task.key(rng) for _ in range(300)}
        listed = {'lantern', 'walnut', 'Mildred'} | {f'{a} {w}' for a in task.adjectives for w in ('lantern', 'walnut')}
        made_up = keys - listed
        self.assertTrue(listed & keys and made_up)
        self.assertTrue(all(re.fullmatch('[A-Za-z]+', k) for k in made_up), made_up)

    def test_train_and_eval_lists_are_disjoint(self):
        t = data.load_templates()
        for group in ('keys', 'values'):
            for name, train in t[group]['train'].items():
                if isinstance(train, list):
                    self.assertFalse(set(train) & set(t[group]['eval'][name]), f'{group}.{name}')


if __name__ == '__main__':
    unittest.main()
