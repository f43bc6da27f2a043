"""Back-translation: each text translated out of its language by one `transformers`
sequence-to-sequence model and back by another (AutoModelForSeq2SeqLM with its own
AutoTokenizer), in batches, seeded. The paraphrase keeps the meaning (and so the label) while
changing words and word order in ways EDA's token edits cannot.

Models are read from local folders or the local Hugging Face cache only (`local_files_only`):
nothing is downloaded. `require_translation_models` says, in one line, when one is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError
from pipelines.modalities.text.rules_config import AUGMENT_KEY as KEY
from pipelines.modalities.text.rules_config import BackTranslationConfig


def require_translation_models(cfg: BackTranslationConfig) -> None:
    """Back-translation needs `transformers` and both models on this machine; nothing can be
    downloaded here, so a missing one ends the stage with one line instead of a hub timeout."""
    try:
        from transformers.utils import cached_file
    except ImportError as error:
        raise PipelineError(
            f"config key '{KEY}.back_translation.enabled' = true: back-translation needs the "
            f"`transformers` package and the models {cfg.model!r} and {cfg.reverse_model!r}; "
            "transformers is not installed, so back-translation was not run (set it to false)"
        ) from error
    for key, model in (("model", cfg.model), ("reverse_model", cfg.reverse_model)):
        if Path(model).is_dir():
            continue
        try:
            cached_file(model, "config.json", local_files_only=True)
        except OSError as error:
            raise PipelineError(
                f"config key '{KEY}.back_translation.{key}' = {model!r}: no local copy of this "
                "model (nothing can be downloaded here), so back-translation was not run"
            ) from error


def translate(
    texts: list[str], model_name: str, cfg: BackTranslationConfig, seed: int
) -> list[str]:
    """`texts` through one seq2seq model, cfg.batch_size at a time: sampled with torch seeded
    by `seed` (cfg.sample) or greedy, at most cfg.max_length tokens in and out. The global
    torch generator is left as it was."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_name, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_name, local_files_only=True).eval()
    options: dict[str, Any] = {
        "do_sample": cfg.sample,
        "max_new_tokens": cfg.max_length,
        "min_new_tokens": 1,
    }
    out: list[str] = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for start in range(0, len(texts), cfg.batch_size):
            batch = tokenizer(
                texts[start : start + cfg.batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=cfg.max_length,
            )
            generated = model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **options
            )
            decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
            out.extend(text.strip() for text in decoded)
    return out


def back_translate(texts: list[str], cfg: BackTranslationConfig, seed: int) -> list[str]:
    """Each text to the pivot language (cfg.model) and back (cfg.reverse_model); one output per
    input, in order (an empty one where the models produced nothing)."""
    if not texts:
        return []
    pivot = translate(texts, cfg.model, cfg, seed)
    return translate(pivot, cfg.reverse_model, cfg, seed + 1)
