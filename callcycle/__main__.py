import sys

from callcycle.cli import main

sys.exit(main())
