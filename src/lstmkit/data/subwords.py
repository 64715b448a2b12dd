"""Tokenizers for translation: subwords (SentencePiece, unigram or BPE), words,
or characters; one per language side, saved as files beside the model.

Ids: 0 padding, 1 unknown, 2 start of sentence (BOS), 3 end (EOS), then the
pieces. The same four ids in every kind, so the model never asks which kind
it was given.

Files (in the run folder, ``<side>`` is "src" or "tgt"):
  subword: ``<side>.spm.model`` -- SentencePiece's own model file (a protobuf);
  word, char: ``<side>.vocab.json`` -- {"kind", "vocab": [token, ...]}.
Nothing is pickled.

Chinese, Japanese and Thai have no spaces between words: SentencePiece reads
them as they are (it does not need spaces), and the character tokenizer splits
every script alike.
"""
import json
import os
import re
import unicodedata
from collections import Counter

from ..io import atomic_write_bytes, write_json
from .errors import DataError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
KINDS = ("subword", "word", "char")

WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = set(".,;:!?)]}’”%")
_NO_SPACE_AFTER = set("([{‘„“¿¡")


def is_cjk(text):
    """Mostly Chinese/Japanese/Korean characters?"""
    chars = [c for c in text if not c.isspace()]
    wide = sum(unicodedata.east_asian_width(c) in "WF" for c in chars)
    return bool(chars) and wide > len(chars) / 2


def script_of(c):
    """'LATIN', 'CJK', 'CYRILLIC', ... from the character's Unicode name."""
    try:
        return unicodedata.name(c).split()[0]
    except ValueError:
        return "UNNAMED"


class Codec:
    """Base: text <-> ids for one language side."""
    kind = None

    def encode(self, text):
        raise NotImplementedError

    def decode(self, ids):
        raise NotImplementedError

    def pieces(self, text):
        """The tokens of text, as strings (labels for attention pictures)."""
        raise NotImplementedError

    def id_pieces(self, ids):
        raise NotImplementedError

    @property
    def vocab_size(self):
        raise NotImplementedError

    def known_chars(self):
        raise NotImplementedError

    def check_text(self, text, where="input"):
        """A DataError when text is empty or mostly in characters the tokenizer
        never saw (another script than the one it was trained on)."""
        if not text.strip():
            raise DataError(f"{where}: empty line; expected a sentence to translate")
        chars = [c for c in text if not c.isspace()]
        known = self.known_chars()
        unknown = [c for c in chars if c not in known]
        if len(unknown) * 2 > len(chars):
            seen = Counter(script_of(c) for c in unknown).most_common(2)
            trained = Counter(script_of(c) for c in known if c.isalpha()).most_common(1)
            raise DataError(f"{where}: {len(unknown)} of {len(chars)} characters are unknown to the "
                            f"source tokenizer (script {', '.join(s for s, _ in seen)}; the model was "
                            f"trained on {trained[0][0] if trained else 'other'} text): {text.strip()[:40]!r}")


class SentencePieceCodec(Codec):
    kind = "subword"

    def __init__(self, processor, model_bytes):
        self.sp = processor
        self.model_bytes = model_bytes
        self._known = None

    @classmethod
    def fit(cls, texts, vocab_size=4000, model_type="unigram", seed=0):
        spm = _sentencepiece()
        import io as _io
        texts = [t for t in texts if t.strip()]
        buf = _io.BytesIO()
        cjk = is_cjk("".join(texts[:2000]))
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=buf, vocab_size=int(vocab_size),
                model_type=model_type, pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
                character_coverage=0.9995 if cjk else 1.0, hard_vocab_limit=False,
                num_threads=1, minloglevel=2,
                input_sentence_size=0, shuffle_input_sentence=False)
        except RuntimeError as e:
            raise DataError(f"SentencePiece could not learn a vocabulary of {vocab_size} from "
                            f"{len(texts)} sentences: {e}") from None
        return cls.from_bytes(buf.getvalue())

    @classmethod
    def from_bytes(cls, data):
        spm = _sentencepiece()
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(data)
        except (RuntimeError, OSError) as e:
            raise DataError(f"not a SentencePiece model: {e}") from None
        return cls(sp, data)

    @property
    def vocab_size(self):
        return self.sp.get_piece_size()

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, ids):
        return self.sp.decode([int(i) for i in ids if i > EOS])

    def pieces(self, text):
        return self.sp.encode(text, out_type=str)

    def id_pieces(self, ids):
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def known_chars(self):
        if self._known is None:
            chars = set()
            for i in range(self.vocab_size):
                if not (self.sp.is_unknown(i) or self.sp.is_control(i)):
                    chars.update(self.sp.id_to_piece(i).replace("\u2581", ""))
            self._known = frozenset(chars)
        return self._known

    def save(self, folder, side):
        name = f"{side}.spm.model"
        atomic_write_bytes(os.path.join(folder, name), self.model_bytes)
        return {"kind": self.kind, "file": name}


class VocabCodec(Codec):
    """Words or characters with a vocabulary list (index = id)."""

    def __init__(self, vocab):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self._known = None

    @classmethod
    def fit(cls, texts, vocab_size=None, **_):
        counts = Counter()
        for t in texts:
            counts.update(cls.split(t))
        # most frequent first, ties by the token, so a fit is reproducible
        ranked = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        if vocab_size is not None:
            ranked = ranked[:max(0, int(vocab_size) - len(SPECIALS))]
        return cls(SPECIALS + ranked)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def encode(self, text):
        get = self.index.get
        return [get(t, UNK) for t in self.split(text)]

    def pieces(self, text):
        return self.split(text)

    def id_pieces(self, ids):
        return [self.vocab[i] if 0 <= i < len(self.vocab) else SPECIALS[UNK] for i in ids]

    def decode(self, ids):
        return self.join(self.id_pieces([int(i) for i in ids if i > EOS or i == UNK]))

    def known_chars(self):
        if self._known is None:
            self._known = frozenset(c for t in self.vocab[len(SPECIALS):] for c in t)
        return self._known

    def save(self, folder, side):
        name = f"{side}.vocab.json"
        write_json(os.path.join(folder, name), {"kind": self.kind, "vocab": self.vocab})
        return {"kind": self.kind, "file": name}


class WordCodec(VocabCodec):
    """Words and punctuation marks, case kept; joined with spaces, none before
    closing punctuation."""
    kind = "word"

    @staticmethod
    def split(text):
        return WORD_RE.findall(text)

    @staticmethod
    def join(tokens):
        out = []
        for t in tokens:
            if out and t[:1] not in _NO_SPACE_BEFORE and out[-1][-1:] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(t)
        return "".join(out)


class CharCodec(VocabCodec):
    """One id per character, spaces included (any script)."""
    kind = "char"

    @staticmethod
    def split(text):
        return list(" ".join(text.split()))

    @staticmethod
    def join(tokens):
        return "".join(tokens)


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise DataError("subword tokenization needs the sentencepiece package: "
                        "pip install 'lstmkit[translate]' (or choose --tokens word|char)") from None
    return sentencepiece


def fit_codec(kind, texts, vocab_size=4000, model_type="unigram", seed=0):
    if kind == "subword":
        return SentencePieceCodec.fit(texts, vocab_size, model_type, seed)
    if kind == "word":
        return WordCodec.fit(texts, vocab_size)
    if kind == "char":
        return CharCodec.fit(texts, None)
    raise DataError(f"unknown token kind {kind!r}; expected one of {KINDS}")


def load_codec(folder, spec):
    """spec: what save() returned ({"kind", "file"})."""
    path = os.path.join(folder, spec.get("file", ""))
    if not os.path.isfile(path):
        raise DataError(f"{path}: tokenizer file missing; a translation run folder holds it beside "
                        f"the model")
    kind = spec.get("kind")
    if kind == "subword":
        with open(path, "rb") as f:
            return SentencePieceCodec.from_bytes(f.read())
    if kind in ("word", "char"):
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a vocabulary file ({e})") from None
        vocab = d.get("vocab") if isinstance(d, dict) else None
        if not isinstance(vocab, list) or vocab[:len(SPECIALS)] != SPECIALS:
            raise DataError(f"{path}: not a vocabulary file: expected {{'vocab': {SPECIALS + ['...']}}}")
        return (WordCodec if kind == "word" else CharCodec)(vocab)
    raise DataError(f"{path}: unknown tokenizer kind {kind!r}; expected one of {KINDS}")
