"""One module per CLI sub-command.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Modules import only argparse-level things at top level: heavy imports (numpy, requests,
websocket, watchdog) happen inside ``run`` so ``dgx-pixels snap`` starts fast.
"""
