"""The study storage: Optuna's RDB storage, safe for many workers, behind one object.

:func:`carsearch.storage.seam.open_storage` opens a :class:`carsearch.storage.seam.Storage`,
the one object a process asks to flush a trial's held writes, fail its running trials and
translate database errors. Behind it: :mod:`~carsearch.storage.urls` (URLs, drivers, a URL
shown without its password), :mod:`~carsearch.storage.errors` (one-line errors on open),
:mod:`~carsearch.storage.first_open` (creating the tables once, whoever comes first),
:mod:`~carsearch.storage.schema` (old schemas), :mod:`~carsearch.storage.sqlite` (SQLite
for many writers), :mod:`~carsearch.storage.rdb` (trial budget, silent trials),
:mod:`~carsearch.storage.buffered` (buffered writes), :mod:`~carsearch.storage.faults`
(one-line errors mid-run), and :mod:`~carsearch.storage._optuna_private`, the only module
that touches Optuna's private API.
"""
