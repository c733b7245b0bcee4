"""Models: model and embedding-rule plugins, and the modules they build."""
