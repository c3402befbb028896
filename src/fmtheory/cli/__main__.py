import sys

from fmtheory.cli import main

sys.exit(main())
