"""Example carsearch plugins: a residual MLP, AdamW, and a square-root embedding rule.

Nothing is imported here: carsearch imports each plugin's module only when a run uses it.
"""
