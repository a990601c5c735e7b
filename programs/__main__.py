"""Entry point the Pulumi CLI runs for this project (`main: programs/` in Pulumi.yaml)."""

from programs.stack import main

main()
