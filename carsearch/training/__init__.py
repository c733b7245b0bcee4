"""Training: the loop, optimizer plugins, schedulers, metrics, devices and seeds, refits,
TensorBoard curves."""
