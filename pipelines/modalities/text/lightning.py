"""The text classifier's LightningModule: cross-entropy over the intents + DeepSpeed's
load-balancing loss, accuracy and macro-F1 (torchmetrics) on validation; the optimizer,
schedule and MoE logs are the shared ones (pipelines.lightning_module.MoEClassifierBase), and
it trains through the same fit (pipelines.training.fit_classifier: strategies, precision,
accumulation, resumable checkpoints, loggers) as the tabular models.

Batches are token ids alone, (batch, max_length) int64 as the tokenizer pads them; the
attention mask is `ids != pad_id` ([PAD] never spells real text in byte-level BPE), so the
tabular data module and its resumable sampler carry text unchanged. Each batch is cut to its
longest text before the forward (pipelines.models.text.trim_to_longest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from torch import Tensor

from pipelines.lightning_module import MulticlassClassifierBase
from pipelines.models.text import TextClassifier, trim_to_longest


class TextIntentClassifier(MulticlassClassifierBase):
    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        class_names: list[str],
        model: dict[str, Any],
        train: dict[str, Any],
        class_weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.record_settings(model, train)
        self.model = TextClassifier(vocab_size, len(class_names), pad_id, self.model_cfg)
        self.track_classes(len(class_names))

    def model_inputs(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Token ids and their attention mask, cut to the batch's longest text."""
        return trim_to_longest(ids, (ids != self.hparams.pad_id).long())


def intent_classifier(
    cfg: Any, tokenizer: Tokenizer, class_names: list[str], class_weights: list[float] | None
) -> TextIntentClassifier:
    """The module for `cfg`'s model and train settings over `tokenizer`'s vocabulary."""
    from pipelines.config import to_container
    from pipelines.modalities.text.tokenizer import PAD

    return TextIntentClassifier(
        vocab_size=tokenizer.get_vocab_size(),
        pad_id=tokenizer.token_to_id(PAD),
        class_names=class_names,
        model=to_container(cfg.model),
        train=to_container(cfg.train),
        class_weights=class_weights,
    )


def load_text_checkpoint(path: Path) -> tuple[TextIntentClassifier, Tokenizer]:
    """The text model (eval mode) and the tokenizer it was trained with, from the train
    stage's checkpoint (the tokenizer travels inside it)."""
    from pipelines.training import read_checkpoint

    payload = read_checkpoint(path, "text")
    module = TextIntentClassifier(**payload["hyper_parameters"])
    module.load_state_dict(payload["state_dict"])
    return module.eval(), Tokenizer.from_str(payload["tokenizer"])
