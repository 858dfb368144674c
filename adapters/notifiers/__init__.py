"""Alert channels (:class:`~domain.ports.Notifier`): a webhook, e-mail over SMTP, the
WebSocket's hub."""
