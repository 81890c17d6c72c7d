"""The engine: device and precision choice, seeding, checkpoints, distributed context, training loop."""
