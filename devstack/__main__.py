"""``python -m devstack``: the demo; ``setup-ecs`` and ``config`` for an Airflow of your own."""

import sys

if sys.argv[1:2] and sys.argv[1] in ("setup-ecs", "config", "-h", "--help"):
    from devstack.byhand import main as byhand

    sys.exit(byhand(sys.argv[1:]))

from devstack.demo import main

sys.exit(main())
