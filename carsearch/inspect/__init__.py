"""Looking at studies: the HTML report, optuna-dashboard, TensorBoard curves."""
