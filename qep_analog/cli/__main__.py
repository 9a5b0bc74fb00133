"""``python -m qep_analog.cli``: the ``qep-analog`` command without the installed script."""

import sys

from qep_analog.cli import main

sys.exit(main())
