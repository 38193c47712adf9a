"""Fine-tuning runner: ``train(TrainConfig)`` for the methods gelora, lora, adalora, eva and full."""
