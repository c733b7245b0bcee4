"""``python -m carsearch.cli``: the ``carsearch`` command."""

from __future__ import annotations

import sys

from carsearch.cli import main

sys.exit(main())
