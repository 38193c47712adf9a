"""Training: adapters, integrators and the training loop."""
