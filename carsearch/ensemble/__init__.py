"""Post-hoc ensembles of a study's trials: their stored validation predictions
(:mod:`~carsearch.ensemble.predictions`)."""

from carsearch.ensemble.predictions import decode, encode, kept_rows

__all__ = ["decode", "encode", "kept_rows"]
