"""Training jobs on SageMaker: start, read, list, stop."""
