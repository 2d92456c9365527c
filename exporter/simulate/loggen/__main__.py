"""`python -m exporter.simulate.loggen ...`"""

import sys

from exporter.simulate.loggen.cli import main

sys.exit(main())
