"""One module per command group; ``pipelines.cli`` mounts them on the ``modelrail`` app.

Command modules import heavy libraries (pulumi, sklearn, boto3, moto) inside the command
functions, so ``modelrail --help`` stays fast.
"""
