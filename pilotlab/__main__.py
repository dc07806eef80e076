import sys

from pilotlab.cli import main

sys.exit(main())
