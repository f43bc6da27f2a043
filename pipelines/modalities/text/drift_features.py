"""What the model server's text drift gauges measure of each text: one definition for the
export's reference (the raw train split, pipelines.modalities.text.plugins.export) and for the
server's window (pipelines.serve.inputs.text), so both sides bin the same quantity.

- `characters`: the text's length (before truncation at max_length, which tokens would hide).
- `oov_word_rate`: the share of its words that the tokenizer's vocabulary does not hold whole.
  A byte-level BPE tokenizer has no unknown token (every byte is in its vocabulary), so a word
  it never learnt shows as one split into several pieces; a word is a pre-token (the
  tokenizer's own split, `Encoding.word_ids`).
- `non_ascii_rate`: the share of its non-space characters outside ASCII: the language-mix
  signal of a tokenizer trained on one language (accents, other scripts, emoji).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from tokenizers import Encoding

FEATURES = ["characters", "oov_word_rate", "non_ascii_rate"]


def text_drift_rows(texts: Sequence[str], encodings: Sequence[Encoding]) -> np.ndarray:
    """[len(texts), 3] float64: FEATURES of each text, given its encoding by the folder's
    tokenizer."""
    rows = np.zeros((len(texts), len(FEATURES)), dtype=np.float64)
    for i, (text, encoding) in enumerate(zip(texts, encodings, strict=True)):
        pieces = Counter(word for word in encoding.word_ids if word is not None)
        split = sum(1 for count in pieces.values() if count > 1)
        visible = [c for c in text if not c.isspace()]
        rows[i] = (
            len(text),
            split / len(pieces) if pieces else 0.0,
            sum(1 for c in visible if not c.isascii()) / len(visible) if visible else 0.0,
        )
    return rows
