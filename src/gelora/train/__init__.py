"""Training: the runner ``train(TrainConfig)`` (gelora, lora, adalora, eva, full) and GeoLoRA's adapters and integrator."""
