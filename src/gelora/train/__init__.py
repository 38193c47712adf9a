"""Train adapters: the fine-tuning runner (``train(TrainConfig)``), its methods, and GeoLoRA."""
