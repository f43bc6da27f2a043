"""train for text: a byte-level BPE tokenizer trained on the train split, then the text
Transformer (MoE or dense) through the shared Lightning fit; the tokenizer travels inside the
checkpoint."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.io import read_split, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    TEXT,
    class_names,
    encoded_split,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.datamodule import TabularDataModule
    from pipelines.modalities.text.lightning import (
        TextIntentClassifier,
        text_probabilities,
    )
    from pipelines.modalities.text.tokenizer import PAD, train_tokenizer
    from pipelines.models.moe import count_parameters
    from pipelines.multiclass import balanced_class_weights, multiclass_metrics
    from pipelines.strategy import check_hardware
    from pipelines.training import (
        drop_other_runs,
        finish_run,
        fit_classifier,
        run_fingerprint,
        save_checkpoint,
        write_history,
    )

    check_hardware(cfg)
    classes = class_names(layout)
    train_texts = [t or "" for t in read_split(layout.augmented_train)[TEXT][:]]
    tokenizer = train_tokenizer(train_texts, cfg.data.text.tokenizer)
    ids_train, y_train, _ = encoded_split(layout.augmented_train, tokenizer, classes)
    ids_val, y_val, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    dm = TabularDataModule(
        (ids_train, y_train),
        (ids_val, y_val),
        ["input_ids"],
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        cfg.train.num_workers,
        seed=cfg.seed,
    )
    # train.pos_weight = auto: each intent weighs the same in the loss in total
    auto = cfg.train.pos_weight == "auto"
    weights = balanced_class_weights(y_train, len(classes)) if auto else None

    def build() -> TextIntentClassifier:
        return TextIntentClassifier(
            vocab_size=tokenizer.get_vocab_size(),
            pad_id=tokenizer.token_to_id(PAD),
            class_names=classes,
            model=to_container(cfg.model),
            train=to_container(cfg.train),
            class_weights=weights,
        )

    inputs = [layout.augmented_train, layout.cleaned]
    work_dir = layout.train_work / run_fingerprint(cfg, inputs)
    drop_other_runs(layout.train_work, keep=work_dir.name)
    run_name = f"{cfg.data.name}-{cfg.model.name}"
    result = fit_classifier(cfg, dm, work_dir, run_name=run_name, build_module=build)
    module = result.module
    scores = multiclass_metrics(y_val, text_probabilities(module, ids_val), classes)
    val = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
    write_json(work_dir / "ranks" / f"rank{result.global_rank}.json", val)
    if result.global_rank != 0:
        return {"val": val}
    metrics = {
        "val": val,
        "epochs_run": result.epochs_run,
        "parameters": count_parameters(module.model),
        "vocab_size": tokenizer.get_vocab_size(),
    }
    outputs = (layout.checkpoint, layout.train_metrics, layout.train_history)
    with staged_outputs(layout.staging, *outputs) as (ckpt, metrics_file, history):
        # the tokenizer travels inside the checkpoint: the model is meaningless without it
        extra = {"val_metrics": val, "modality": "text", "tokenizer": tokenizer.to_str()}
        save_checkpoint(module, ckpt, extra)
        write_json(metrics_file, metrics)
        write_history(result.history, history)
    finish_run(work_dir)
    return metrics
