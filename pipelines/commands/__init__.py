"""One module per command group; ``pipelines.cli`` mounts them on the ``modelrail`` app.

Each module's ``register(app)`` mounts its commands, and ``pipelines.cli.COMMANDS`` names the
module of every top-level command, so a module is imported only when one of its commands runs
or shows its help. At module level they import only typer, ``pipelines.console`` and
``pipelines.errors``; heavy libraries (pulumi, sklearn, boto3, moto, pydantic, rich) are
imported inside the command functions, so that ``--help`` stays fast.
"""
