"""Release notifications to webhooks (generic JSON, Slack), delivered off the reconcile path.

- `messages`: which Events are notified, the payloads and the idempotency key (pure).
- `config`: channels from `run --notify-url-file/--notify-format/--notify-config` (URLs only
  in mounted files, never in annotations or args) and `api7.cloud/canary-notify`.
- `sender`: one bounded queue and sending thread per channel; timeouts, retries, metrics.
- `notifier`: the reconciler's collaborator that routes a reconcile's Events to channels.
"""
