"""Email, knowing nothing of governance: templates, the SMTP mailer, the embedded SMTP server."""
