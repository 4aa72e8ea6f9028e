#!/usr/bin/env python3
"""Writes src/word_map.tsv: the known word each unknown word of a caption is read as.

A visitor writes "beak" where the synthesised captions say "bill", "chest" for "breast",
"wing" for "wings". This table lets the tokenizer read such a word as the vocabulary word it
means, and say so ("beak -> bill"). It is built from WordNet 3.0 (Princeton University; the
Debian package `wordnet-base`, `apt install wordnet-base`; licence in the table's header),
over the words of the vocabularies (`--vocabulary`, a bundle, once for each distinct
vocabulary the shipped bundles carry), by three relations and nothing else:

- inflection: the same lemma in another form (wing -> wings, stripes -> stripe, greyer -> grey);
- synonym: the word and a vocabulary word share a synset among the first senses of both
  (beak -> bill, chest -> breast, big -> large, top -> crown);
- similar: an adjective whose first sense WordNet marks as similar to the first sense of a
  vocabulary word (tiny -> small, gigantic -> large).

"First senses": the word's noun and adjective senses up to --senses in WordNet's frequency
order. A shared noun synset counts only where WordNet files it under bodies, animals, shapes
or attributes (any sense of the vocabulary word: "bill" is a beak only in its ninth; "gull"
the dupe is filed under people), a shared adjective synset only as the vocabulary word's
first sense; so rare senses (big = pregnant -> large; dreary -> blue, the mood) and verbs
(feathers = square, the rowing verb) map nothing. Function words and the words in DENIED
never map, and nothing maps onto them (bees -> are, done -> through, audacious -> bold):
intensity words (dark, pale, bright, deep, light) modify a colour and are not one.

One table serves every bundle: the tokenizer looks a word up only when its bundle's vocabulary
does not know it, and takes the first of the word's targets that vocabulary knows. So the
targets are the words of all the vocabularies, in one order of preference (the strongest
relation, then the word's most frequent sense, then the alphabet) that does not depend on the
vocabulary: the first target a bundle knows is the one a table over its vocabulary alone would
give. A word every vocabulary knows never appears; a word some know ("beak" in the larger)
appears for the others, with only targets they know ("beak -> bill"). Each line: word, tab,
the targets in order of preference, tab, the relation of the first.

Usage: python3 tools/make_word_map.py --vocabulary weights/damsm_birds.safetensors \
           --vocabulary weights/stackgan_birds_small.int8.safetensors \
           [--wordnet /usr/share/wordnet] [--senses 3] > src/word_map.tsv
"""
import argparse
import collections
import json
import os
import struct
import sys

POS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# Regular detachment rules of WordNet's morphy (wnintro(3WN)); exceptions come from *.exc.
RULES = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
          ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}
# Words that never map: function words (they carry no attribute) and colour modifiers.
FUNCTION_WORDS = set("""a an the this that these those is are was were be been being has have
had having with without and or but of on in at to from by for as over under above below across
into onto its it their his her very quite rather so too also just than then there here which
who whom whose what where when while not no yes all any some each every both either neither
one two three many much more most less least few behind beside between near like through
around""".split())
DENIED = {"dark", "darker", "darkest", "pale", "paler", "palest", "bright", "brighter",
          "brightest", "deep", "light", "lighter", "vivid", "dull", "bold", "rich", "warm"}


class WordNet:
    """The parts of the WordNet 3.0 database files (wndb(5WN)) this table needs."""

    def __init__(self, root):
        self.synsets = {}  # (pos, offset) -> (words, similar-to targets)
        self.lexfile = {}  # (pos, offset) -> lexicographer file number
        self.senses = collections.defaultdict(list)  # (word, pos) -> offsets, frequent first
        self.exceptions = {}  # (pos, inflected) -> bases
        for pos, name in POS.items():
            with open(os.path.join(root, "data." + name), encoding="latin-1") as f:
                for line in f:
                    if line.startswith("  "):
                        continue
                    parts = line.split(" | ")[0].split()
                    offset, count = parts[0], int(parts[3], 16)
                    words = [parts[4 + 2 * i].lower().split("(")[0] for i in range(count)]
                    k = 4 + 2 * count
                    similar = []
                    for i in range(int(parts[k])):
                        symbol, target, target_pos, _ = parts[k + 1 + 4 * i:k + 5 + 4 * i]
                        if symbol == "&":
                            similar.append(("a" if target_pos == "s" else target_pos, target))
                    self.synsets[(pos, offset)] = (words, similar)
                    self.lexfile[(pos, offset)] = int(parts[1])
            with open(os.path.join(root, "index." + name), encoding="latin-1") as f:
                for line in f:
                    if line.startswith("  "):
                        continue
                    parts = line.split()
                    lemma, synset_count, pointer_count = parts[0], int(parts[2]), int(parts[3])
                    offsets = parts[6 + pointer_count:6 + pointer_count + synset_count]
                    self.senses[(lemma, pos)] = [(pos, o) for o in offsets]
            with open(os.path.join(root, name + ".exc"), encoding="latin-1") as f:
                for line in f:
                    inflected, *bases = line.split()
                    self.exceptions[(pos, inflected)] = bases

    def lemmas(self, word):
        """(lemma, pos) pairs `word` is a form of, the word itself first."""
        out = [(word, p) for p in POS if (word, p) in self.senses]
        for p in POS:
            for base in self.exceptions.get((p, word), []):
                out.append((base, p))
            for suffix, replacement in RULES[p]:
                if word.endswith(suffix) and len(word) > len(suffix) + 1:
                    base = word[: len(word) - len(suffix)] + replacement
                    if (base, p) in self.senses:
                        out.append((base, p))
        return list(dict.fromkeys(out))

    def first_senses(self, word, senses):
        """The first `senses` noun and adjective senses of each lemma of `word` (verbs and
        adverbs do not describe a bird's looks)."""
        return [
            s
            for lemma, p in self.lemmas(word)
            if p in "na"
            for s in self.senses[(lemma, p)][:senses]
        ]


# WordNet's lexicographer files (lexnames(5WN)) of the senses that describe a bird's body and
# markings: a synonym there counts in any sense of the vocabulary word.
BODY_FILES = {5: "noun.animal", 7: "noun.attribute", 8: "noun.body", 25: "noun.shape"}


def vocabulary_of(bundle):
    data = open(bundle, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    return json.loads(header["__metadata__"]["t2i.vocabulary"])["words"][1:]


def surface_forms(wn):
    """Every single-word lemma of WordNet and its regular inflections."""
    forms = set()
    for (lemma, pos) in wn.senses:
        if not lemma.isalpha():
            continue
        forms.add(lemma)
        if pos == "n":
            forms.add(lemma + ("es" if lemma.endswith(("s", "x", "ch", "sh")) else "s"))
    for (pos, inflected) in wn.exceptions:
        if inflected.isalpha():
            forms.add(inflected)
    return forms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocabulary", required=True, action="append",
                        help="a bundle whose vocabulary to map onto (repeat for several)")
    parser.add_argument("--wordnet", default="/usr/share/wordnet")
    parser.add_argument("--senses", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.wordnet, "data.noun")):
        sys.exit(f"no WordNet database in {args.wordnet}: apt install wordnet-base")
    wn = WordNet(args.wordnet)
    vocabularies = [{w for w in vocabulary_of(b) if w.isalpha()} for b in args.vocabulary]
    # Their union. The targets' order comes from the sort below (relation, sense, alphabet),
    # never from the bundles' order.
    vocabulary = sorted(set().union(*vocabularies))
    # What each vocabulary word is: its lemmas and its first senses' synsets.
    target_lemmas = {v: {lemma for lemma, _ in wn.lemmas(v)} for v in vocabulary}
    # Every noun and adjective sense of a vocabulary word, with its rank among the senses of
    # its part of speech: "bill" is a beak only in its ninth noun sense.
    target_synsets = {}
    for v in vocabulary:
        ranks = {}
        for lemma, p in wn.lemmas(v):
            if p in "na":
                for rank, s in enumerate(wn.senses[(lemma, p)]):
                    ranks.setdefault(s, rank)
        target_synsets[v] = ranks
    table = {}
    for word in sorted(surface_forms(wn)):
        if word in FUNCTION_WORDS or word in DENIED or len(word) < 3:
            continue
        # The vocabularies that will look the word up, and the targets any of them knows.
        lacking = [v for v in vocabularies if word not in v]
        if not lacking:
            continue
        useful = set().union(*lacking) - FUNCTION_WORDS - DENIED
        lemmas = {lemma for lemma, _ in wn.lemmas(word)}
        senses = wn.first_senses(word, args.senses)
        found = []  # (strength, sense rank, target, relation)
        for target in vocabulary:
            if target not in useful:
                continue
            if lemmas & target_lemmas[target]:
                found.append((0, (0, 0), target, "inflection"))
                continue
            shared = [
                (i, target_synsets[target][s])
                for i, s in enumerate(senses)
                if s in target_synsets[target]
                and (
                    wn.lexfile[s] in BODY_FILES
                    or (s[0] == "a" and target_synsets[target][s] == 0)
                )
            ]
            if shared:
                found.append((1, min(shared), target, "synonym"))
                continue
            similar = [
                i
                for i, s in enumerate(senses)
                if s[0] == "a" and i == 0
                for t in wn.synsets[s][1]
                if target_synsets[target].get(t) == 0
            ]
            if similar:
                found.append((2, (0, 0), target, "similar"))
        if found:
            found.sort()
            targets = list(dict.fromkeys(t for _, _, t, _ in found))
            table[word] = (targets, found[0][3])
    print("# The vocabulary word each word is read as (tools/make_word_map.py, from WordNet 3.0).")
    print("# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. Permission to")
    print("# use, copy, modify and distribute this database for any purpose and without fee or royalty")
    print("# is granted with this notice; it is provided AS IS, without warranties of any kind.")
    for bundle, words in zip(args.vocabulary, vocabularies):
        print(f"# vocabulary: {os.path.basename(bundle)} ({len(words)} words)")
    print(f"# senses: {args.senses}")
    for word, (targets, relation) in table.items():
        print(f"{word}\t{' '.join(targets)}\t{relation}")
    print(f"{len(table)} words mapped", file=sys.stderr)


if __name__ == "__main__":
    main()
