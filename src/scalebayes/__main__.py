"""``python -m scalebayes``."""

import sys

from scalebayes.cli import main

sys.exit(main())
