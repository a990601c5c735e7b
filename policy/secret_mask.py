"""The text a secret value is shown as in plans and reports (the engine's own word for it).

Its own module so that readers of saved plans (the plan cache's fast path in `platformctl preview`)
can use it without importing the pack's runner and the pulumi_policy SDK."""

SECRET_MASK = "[secret]"
