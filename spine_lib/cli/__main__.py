"""``python -m spine_lib.cli`` is the ``spine-vision`` command."""

from spine_lib.cli import main

main()
