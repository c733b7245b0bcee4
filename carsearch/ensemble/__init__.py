"""Post-hoc ensembles of a study's trials: their stored validation predictions
(:mod:`~carsearch.ensemble.predictions`) and greedy ensemble selection
(:mod:`~carsearch.ensemble.select`)."""

from carsearch.ensemble.predictions import decode, encode, kept_rows
from carsearch.ensemble.select import Selection, select

__all__ = ["Selection", "decode", "encode", "kept_rows", "select"]
