"""The study storage: Optuna's RDB storage, safe for many workers, behind one object.

Modules: :mod:`~carsearch.storage.urls` (URLs and drivers), :mod:`~carsearch.storage.errors`
(one-line errors on open), :mod:`~carsearch.storage.faults` (one-line errors mid-run),
:mod:`~carsearch.storage.schema` (old schemas), :mod:`~carsearch.storage.sqlite` (SQLite for
many writers), :mod:`~carsearch.storage.rdb` (the trial budget, heartbeats),
:mod:`~carsearch.storage.buffered` (buffered writes), :mod:`~carsearch.storage.open`
(opening one).
"""
