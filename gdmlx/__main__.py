"""``python -m gdmlx``: the ``gdmlx`` command, where its script is not on PATH (``pip install
--user`` without ``~/.local/bin`` on it)."""

from gdmlx.cli.main import main

raise SystemExit(main())
