import sys

from ecs_emulator.cli import main

sys.exit(main())
