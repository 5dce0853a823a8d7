"""The model registry: models and their versions."""
