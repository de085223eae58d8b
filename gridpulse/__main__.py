import sys

from gridpulse.cli import main

sys.exit(main())
