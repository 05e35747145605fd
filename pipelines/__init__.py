"""modelrail's delivery controller: the ``modelrail`` CLI and everything it drives."""
