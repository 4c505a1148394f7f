import sys

from devhttps.cli import main

sys.exit(main())
