"""``python -m sklearn_imgcls.cli``: the console script."""

import sys

from .main import main

sys.exit(main())
