"""Free-text service matching: which service (or agency) a resident's words name.

Residents type "ktp", "akte lahir anak saya", "bayar pajak motor", "birth certificate". A
service is found when the words of one of its names stand in the message, each word exactly
or with a typo; what the message says besides ("saya mau", "di kantor capil") costs a little,
and a name only half present ("akta") is a candidate to ask about, never a decision. Words
are compared whole, so "sim" does not find "sip" (a doubled key press, "ktpp", still finds "ktp") and "jalan rusak" does not find "Rawat
Jalan" (only one of its two words is there). Names in the resident's language count a little
more than the same words in the other language.

Speed: the names' words form a vocabulary; each word of the message is looked up exactly, and
only words of four letters or more are compared fuzzily, against vocabulary words of a
similar length (rapidfuzz, in C). Only names sharing a word with the message are scored, so a
query costs about the same on 20 services as on 500 (``bench/bench_matching.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process, utils
from rapidfuzz.distance import Levenshtein

SURE = 86.0  # a score this high, clearly ahead of the next target, is taken without asking
MARGIN = 8.0  # how far ahead of the runner-up a winner must be
FLOOR = 70.0  # below this a target is not even offered as a candidate
CLOSE = 15.0  # candidates within this of the best one are offered together
OTHER_LANGUAGE = 4.0  # a name in the other language scores this much less
MAX_WORDS = 16  # words of a message looked at (a long story names its service early)

# Words that say nothing about which service is meant (Indonesian, chat forms and English).
STOPWORDS = frozenset((
    "yang", "di", "ke", "dari", "untuk", "utk", "buat", "bikin", "urus", "ngurus", "mengurus",
    "saya", "aku", "sy", "gw", "gue", "kami", "kita", "mau", "mo", "ingin", "pengen", "pingin",
    "dan", "atau", "ini", "itu", "ada", "sudah", "udah", "sdh", "belum", "blm", "dengan", "dgn",
    "sama", "pak", "bu", "bapak", "ibu", "mas", "mbak", "tolong", "mohon", "bagaimana",
    "gimana", "cara", "caranya", "apa", "kok", "tentang", "soal", "masalah", "tadi", "nya",
    "lagi", "juga", "dong", "ya", "yg", "tp", "tapi", "karena", "krn", "pada", "punya", "the",
    "a", "an", "of", "for", "my", "i", "to", "want", "with", "and", "in", "at", "please",
    "about", "how", "do", "get", "need", "is", "on", "our", "me",
    # what the resident wants to do, not which service: "mau lapor soal kk"
    "lapor", "melapor", "laporan", "aduan", "pengaduan", "mengadu", "komplain", "keluhan",
    "nilai", "menilai", "survei", "report", "complaint", "complain", "rate", "rating", "survey",
))


def _typos_allowed(a: str, b: str) -> int:
    """Edits (Levenshtein) two words may differ by: none up to three letters ("sim" is not
    "sip"), one up to five, two up to eight, three beyond."""
    shorter = min(len(a), len(b))
    if shorter <= 3:
        return 0
    if shorter <= 5:
        return 1
    return 2 if shorter <= 8 else 3


def _squeeze(word: str) -> str:
    """The word with each run of one repeated letter written once ("ktpp" -> "ktp")."""
    return "".join(ch for i, ch in enumerate(word) if i == 0 or ch != word[i - 1])


@dataclass(frozen=True)
class Match:
    """``decided`` is set when the text clearly means one target; ``candidates`` otherwise."""

    decided: str | None
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class _Name:
    key: str
    words: tuple[str, ...]
    lang: str
    weight: int  # total letters of its words


Name = str | tuple[str, str]  # a name, or (name, language code)


def words_of(text: str, letters: bool = False) -> list[str]:
    """Lower-cased words without punctuation; stopwords (and with ``letters`` False, single
    letters such as the "e" of "e ktp") dropped, unless nothing else is left."""
    tokens = utils.default_process(text).split()
    kept = [t for t in tokens if t not in STOPWORDS and (letters or len(t) > 1)]
    return kept or tokens


class ServiceMatcher:
    """Targets are service codes, or ``@agency-slug`` for a whole agency.

    ``parents`` maps a service to its agency's target: when both match about as well, the
    service wins ("ktp di kantor capil").
    """

    def __init__(self, targets: Sequence[tuple[str, Sequence[Name]]],
                 parents: dict[str, str] | None = None) -> None:
        self._parents = parents or {}
        self._names: list[_Name] = []
        vocab: dict[str, list[int]] = defaultdict(list)
        joined: dict[str, list[int]] = defaultdict(list)
        for key, names in targets:
            for entry in names:
                text, lang = (entry, "") if isinstance(entry, str) else entry
                words = tuple(dict.fromkeys(words_of(text)))
                if not words:
                    continue
                spelled = words_of(text, letters=True)
                idx = len(self._names)
                self._names.append(_Name(key, words, lang, sum(len(w) for w in words)))
                for w in words:
                    vocab[w].append(idx)
                if len(spelled) > 1:  # "ektp" for "e ktp", "kartukeluarga"
                    joined["".join(spelled)].append(idx)
        self._vocab = {w: np.array(ids, dtype=np.int32) for w, ids in vocab.items()}
        self._joined = dict(joined)
        self._fuzzy_pool = [w for w in self._vocab if len(w) >= 4]
        self._seen: dict[str, dict[str, float]] = {}  # message word -> similar words (bounded)
        # Per name, as arrays, so one query scores every name in a few vector operations.
        self._weight = np.array([n.weight for n in self._names], dtype=np.float64)
        self._keys = list(dict.fromkeys(n.key for n in self._names))
        key_index = {k: i for i, k in enumerate(self._keys)}
        self._key_of = np.array([key_index[n.key] for n in self._names], dtype=np.int64)
        self._in_lang = {code: np.array([n.lang == code for n in self._names], dtype=bool)
                         for code in ("id", "en")}

    def __len__(self) -> int:
        return len(self._names)

    def _similar(self, word: str) -> dict[str, float]:
        """Vocabulary words this message word may stand for, with their similarity.

        Remembered per word: residents type the same few hundred words again and again.
        """
        known = self._seen.get(word)
        if known is not None:
            return known
        hits: dict[str, float] = {}
        if word in self._vocab:
            hits[word] = 100.0
        squeezed = _squeeze(word)  # a key pressed twice: "ktpp" is "ktp", "simm" is "sim"
        if squeezed != word and squeezed in self._vocab:
            hits[squeezed] = float(fuzz.ratio(word, squeezed))
        if len(word) >= 4:
            # One pass in C; the cutoff lets rapidfuzz skip words of a very different length.
            for found, score, _ in process.extract(word, self._fuzzy_pool, scorer=fuzz.ratio,
                                                   limit=None, score_cutoff=75.0):
                if found != word and Levenshtein.distance(word, found) <= _typos_allowed(word, found):
                    hits[found] = float(score)
        if len(self._seen) >= 8192:
            self._seen.clear()
        self._seen[word] = hits
        return hits

    def scores(self, text: str, lang: str = "") -> dict[str, float]:
        """The best score per target for ``text`` (targets far below :data:`FLOOR` are left out).

        A name's score is mostly how much of it (in letters) the message contains, each word
        weighted by how alike it is, and a little how much of the message it explains.
        """
        qwords = list(dict.fromkeys(words_of(text[:1000])))[:MAX_WORDS]
        if not qwords:
            return {}
        n = len(self._names)
        letters = np.zeros(n)  # similarity-weighted letters of each name found in the message
        used = np.zeros(n)  # letters of the message that found a word of each name
        best_sim: dict[str, float] = {}  # a name word found by two message words counts once
        for qw in qwords:
            hits = self._similar(qw)
            for vw, sim in hits.items():
                best_sim[vw] = max(best_sim.get(vw, 0.0), sim)
            touched = [self._vocab[vw] for vw in hits]
            if touched:
                used[np.unique(np.concatenate(touched))] += len(qw)
        for vw, sim in best_sim.items():
            letters[self._vocab[vw]] += len(vw) * sim
        name_cov = letters / self._weight
        whole = [*(i for qw in qwords for i in self._joined.get(qw, ())),
                 *(self._joined.get("".join(qwords), ()) if len(qwords) > 1 else ())]
        for idx in whole:  # "ektp" typed for "e ktp"
            name_cov[idx] = 100.0
            spelled = "".join(self._names[idx].words)
            used[idx] = sum(len(qw) for qw in qwords if qw in spelled)
        query_cov = 100.0 * np.minimum(used, sum(len(w) for w in qwords)) / sum(len(w) for w in qwords)
        score = np.maximum(0.9 * name_cov + 0.1 * query_cov, 0.5 * name_cov + 0.5 * query_cov)
        other = {"id": "en", "en": "id"}.get(lang)
        if other is not None:
            score -= OTHER_LANGUAGE * self._in_lang[other]
        # Names far below the floor cannot change the outcome (the service-over-agency rule
        # looks 5 points down); the best name per target is then picked without a Python loop.
        idxs = np.flatnonzero(score >= FLOOR - 10)
        if idxs.size == 0:
            return {}
        values = score[idxs]
        order = np.argsort(-values, kind="stable")
        keys, first = np.unique(self._key_of[idxs][order], return_index=True)
        best_values = values[order][first]
        return {self._keys[k]: float(v) for k, v in zip(keys.tolist(), best_values.tolist(), strict=True)}

    def match(self, text: str, limit: int = 4, lang: str = "") -> Match:
        best = self.scores(text, lang)
        # "ktp di kantor capil": the service wins over its own agency when both match well.
        for key, score in list(best.items()):
            parent = self._parents.get(key)
            if parent in best and score >= best[parent] - 5:
                del best[parent]
        ranked = sorted(((k, s) for k, s in best.items() if s >= FLOOR), key=lambda kv: (-kv[1], kv[0]))
        if not ranked:
            return Match(None, ())
        top_key, top = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if top >= SURE and top - second >= MARGIN:
            return Match(top_key, (top_key,))
        close = tuple(k for k, s in ranked[:limit] if top - s < CLOSE)
        return Match(None, close)
