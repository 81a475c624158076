"""Real text for training: source files separated by the byte 0x1E (plain or .xz), tokenized as the base
model tokenizes them, cut into prompts to collect on and into windows to anchor the model's quality on."""
import json
import lzma
import random

from tokenizers import Tokenizer


class CorpusError(Exception):
    """A text or tokenizer file cllm cannot use: shown to the user as one line."""


def read_documents(path):
    try:
        with (lzma.open if path.endswith(".xz") else open)(path, "rt", encoding="utf-8") as file:
            text = file.read()
    except (OSError, lzma.LZMAError, UnicodeDecodeError) as err:
        raise CorpusError(f"cannot read the text {path}: {err}")
    documents = [doc for doc in text.split("\x1e") if doc.strip()]
    if not documents:
        raise CorpusError(f"{path} holds no text")
    return documents


class TextTokenizer:
    """The base model's tokenizer in Hugging Face format, with the BOS that llama.cpp adds."""

    def __init__(self, path, bos):
        try:
            self.tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # tokenizers raises a bare Exception for a bad file
            raise CorpusError(f"cannot read the tokenizer {path}: {err}")
        self.bos = bos

    def encode(self, text):
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ([self.bos] if self.bos is not None else []) + ids


def read_prompts(path, limit=None):
    """The prompts of a JSONL file of {"prompt": text} lines."""
    prompts = []
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if line.strip():
                    try:
                        prompts.append(json.loads(line)["prompt"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise CorpusError(f"{path}:{number}: expected a JSON object with a \"prompt\" string")
    except OSError as err:
        raise CorpusError(f"cannot read {path}: {err.strerror}")
    return prompts[:limit]


def file_prefixes(documents, per_file, seed, shortest=100, longest=2400):
    """Several prompts from each file: prefixes cut at line ends, between `shortest` and `longest` characters,
    so that one file gives the model several contexts of different lengths to continue."""
    rng = random.Random(seed)
    prompts = []
    for doc in documents:
        ends = [i + 1 for i, c in enumerate(doc[:longest]) if c == "\n" and i + 1 >= shortest]
        for end in sorted(rng.sample(ends, min(per_file, len(ends)))):
            prompts.append(doc[:end])
    return prompts


class Windows:
    """Windows of real text, `shortest` to `longest` tokens: half from a file's start (BOS first), half from
    anywhere in a longer file, as a pretraining stream cuts them. Files are tokenized when first drawn."""

    def __init__(self, documents, tokenizer, shortest, longest, seed):
        self.documents, self.tokenizer = documents, tokenizer
        self.shortest, self.longest = shortest, longest
        self.rng = random.Random(seed)
        self.tokens = {}

    def _file(self, index):
        if index not in self.tokens:
            self.tokens[index] = self.tokenizer.encode(self.documents[index])
        return self.tokens[index]

    def draw(self, count):
        windows = []
        while len(windows) < count:
            tokens = self._file(self.rng.randrange(len(self.documents)))
            length = self.rng.randint(self.shortest, self.longest)
            if len(tokens) < min(length, self.shortest):
                continue
            from_start = len(windows) % 2 == 0 or len(tokens) <= length
            offset = 0 if from_start else self.rng.randrange(1, len(tokens) - length + 1)
            windows.append(tokens[offset:offset + length])
        return windows
