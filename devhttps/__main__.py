import sys

from devhttps.cli.main import main

sys.exit(main())
