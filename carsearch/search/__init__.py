"""The Optuna side: search space, study, storage, the trial loop and worker processes."""
