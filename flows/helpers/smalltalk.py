"""Greetings, thanks and goodbyes typed on their own: answered as a clerk would.

Only a message that is nothing but small talk counts ("halo", "selamat pagi pak", "terima
kasih bu 🙏", "thanks!"): "terima kasih, tapi KTP saya belum jadi" is a message with content
and goes on to the question as usual.
"""

from __future__ import annotations

from rapidfuzz import utils

GREETINGS = ("halo", "hallo", "helo", "hai", "hi", "hey", "hello", "pagi", "siang", "sore", "malam",
             "selamat pagi", "selamat siang", "selamat sore", "selamat malam", "assalamualaikum",
             "assalamu alaikum", "asalamualaikum", "salam", "permisi", "punten", "good morning",
             "good afternoon", "good evening", "halo selamat pagi", "halo selamat siang",
             "halo selamat sore", "halo selamat malam", "hai selamat pagi", "om swastiastu",
             "shalom", "salam sejahtera")
THANKS = ("terima kasih", "terimakasih", "makasih", "makasi", "trima kasih", "trimakasih", "thanks",
          "thank you", "thx", "tq", "tengkyu", "matur nuwun", "hatur nuhun", "terima kasih banyak",
          "makasih banyak", "thank you very much", "thanks a lot", "ok terima kasih", "oke terima kasih",
          "baik terima kasih", "siap terima kasih", "ok makasih", "oke makasih", "ok thanks")
BYE = ("dadah", "bye", "sampai jumpa", "goodbye", "good bye", "see you", "selamat tinggal")
# Words of address and filler that may surround a greeting ("halo pak", "makasih ya kak").
POLITE = frozenset((
    "pak", "bu", "bapak", "ibu", "kak", "kakak", "mas", "mbak", "bang", "dik", "adik", "min",
    "admin", "om", "tante", "sis", "gan", "ya", "yah", "dong", "nih", "ok", "oke", "sir",
    "madam", "all", "semua"
))
_TIMES = {"pagi": ("Selamat pagi!", "Good morning!"), "siang": ("Selamat siang!", "Good afternoon!"),
          "sore": ("Selamat sore!", "Good afternoon!"), "malam": ("Selamat malam!", "Good evening!")}
_PHRASES = {**{p: "greeting" for p in GREETINGS}, **{p: "thanks" for p in THANKS},
            **{p: "bye" for p in BYE}}


def _core(text: str) -> str:
    words = utils.default_process(text).split()
    return " ".join(w for w in words if w not in POLITE)


def kind(text: str) -> str | None:
    """"greeting", "thanks", "bye", or None when the message says more than that."""
    if len(text) > 60:
        return None
    core = _core(text)
    if not core:
        return None
    return _PHRASES.get(core)


def echo_greeting(text: str, lang: str) -> str:
    """Answer "selamat pagi" with "Selamat pagi!", anything else with a plain hello."""
    words = set(_core(text).split())
    for word, (id_text, en_text) in _TIMES.items():
        if word in words:
            return en_text if lang == "en" else id_text
    if words & {"assalamualaikum", "asalamualaikum"} or "assalamu alaikum" in _core(text):
        return "Wa'alaikumsalam!"
    return "Hello!" if lang == "en" else "Halo!"


# A plain yes or no, in the words residents use, for questions whose answers are a yes and a no
# (consent, "keep my identity confidential?", "may staff contact me?", "delete?").
YES = frozenset((
    "ya", "iya", "iyaa", "iye", "y", "yes", "yess", "yup", "yep", "yeah", "ok", "oke", "okay", "okey",
    "okee", "boleh", "setuju", "saya setuju", "ya setuju", "iya setuju", "betul", "benar", "bener",
    "sip", "siap", "lanjut", "mau", "ya boleh", "iya boleh", "ya mau", "iya mau", "sure", "agree",
    "i agree", "of course", "tentu", "tentu saja", "silakan", "silahkan", "ya silakan",
))
NO = frozenset((
    "tidak", "tdk", "gak", "ga", "gk", "nggak", "ngga", "enggak", "engga", "ndak", "nda", "no", "n",
    "nope", "nah", "tidak usah", "gak usah", "ga usah", "nggak usah", "ngga usah", "enggak usah",
    "jangan", "tidak mau", "gak mau", "ga mau", "nggak mau", "tidak setuju", "gak setuju",
    "ga setuju", "tidak boleh", "gak boleh", "ga boleh", "disagree", "i disagree", "no thanks",
    "no thank you", "tidak perlu", "gak perlu", "ga perlu", "nggak perlu",
))
_ADDRESS = POLITE - {"ya", "yah", "ok", "oke"}


def yes_no(text: str) -> str | None:
    """"yes", "no" or None for a message that is only a yes or a no ("iya pak", "gak usah")."""
    words = utils.default_process(text).split()
    phrase = " ".join(w for w in words if w not in _ADDRESS)
    if phrase in YES:
        return "yes"
    if phrase in NO:
        return "no"
    return None


# "I don't know", as residents write it, for the rating's "Tidak tahu" answer: a negation and
# a word for knowing ("gak tau", "tdk tahu", "kurang tahu"), run together ("gatau") or in English.
_NOT = frozenset(("tidak", "tdk", "gak", "ga", "g", "gk", "nggak", "ngga", "ndak", "nda", "enggak",
                  "engga", "kurang", "blm", "belum"))
_KNOW = frozenset(("tahu", "tau", "taw", "tw", "thu"))
DONT_KNOW = frozenset((
    "gatau", "gatahu", "gktau", "gktahu", "gtau", "tdktau", "tdktahu", "entah",
    "entahlah", "ntah", "tidak yakin", "tdk yakin", "gak yakin", "ga yakin", "kurang yakin",
    "dont know", "do not know", "i dont know", "i do not know", "idk", "not sure", "im not sure",
    "i am not sure", "unsure", "no idea", "dunno",
))
_SELF = frozenset(("saya", "aku", "sy", "gw", "gue", "lah", "deh", "sih", "really", "just"))


def dont_know(text: str) -> bool:
    """The message only says "I don't know" ("gak tau", "tdk tahu", "not sure", "dont know")."""
    if len(text) > 40:
        return False
    plain = text.replace("'", "").replace("\u2019", "")
    words = [w for w in utils.default_process(plain).split() if w not in _ADDRESS and w not in _SELF]
    if " ".join(words) in DONT_KNOW:
        return True
    return len(words) == 2 and words[0] in _NOT and words[1] in _KNOW
