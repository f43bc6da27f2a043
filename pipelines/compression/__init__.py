"""Model compression beyond post-training INT8: structured pruning, knowledge distillation and
quantization-aware training, each a short Lightning fine-tune of the trained model."""
