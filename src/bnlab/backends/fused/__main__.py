"""``python -m bnlab.backends.fused``: build (or find) the fused kernels and say where."""

import sys

from .build import main

sys.exit(main())
