"""``python -m snnrs.cuda``: the CUDA self-test (see :mod:`snnrs.cuda._selftest`)."""

import sys

from ._selftest import main

if __name__ == "__main__":
    sys.exit(main())
