"""Looking at studies: the HTML report, optuna-dashboard (TensorBoard curves are written
while trials train, by :mod:`carsearch.training.tensorboard`)."""
