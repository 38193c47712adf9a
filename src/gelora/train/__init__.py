"""Train adapters: ``train(TrainConfig)`` runs any registered method on any registered task.

``gelora.train.tasks`` (what to learn and how it is scored), ``gelora.train.methods`` (how to fine-tune),
``gelora.train.runner`` (the loop), ``gelora.train.checkpoint`` (the run folder and exact resume).
"""
