import sys

from tinyprune.cli import main

sys.exit(main())
