"""Predict and the Open Inference Protocol v2: the function that runs from a snapshot."""
