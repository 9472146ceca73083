"""Email, knowing nothing of governance: templates, the SMTP mailer, the embedded SMTP server.

Modules (import what you need; this package imports nothing, so that importing it
costs the CLI nothing, and Jinja2 and aiosmtpd load only when used):

- ``errors``     the error tree (``NotificationError`` and its subclasses)
- ``templates``  ``TemplateRenderer``, ``KINDS``, ``RenderedMessage``; the contract of
                 variables per kind is ``samples.SAMPLE_CONTEXT``
- ``message``    ``build_message`` (an ``OutgoingMessage``: envelope, bytes, SHA-256),
                 ``make_message_id``, ``Attachment``
- ``ics``        ``meeting_invite``: an RFC 5545 invitation as an attachment
- ``mailer``     the ``Mailer`` port, ``SmtpMailer``, ``SmtpSettings`` and ``Submission``
- ``sink``       ``MailSink``: the development SMTP server storing into a Maildir
- ``testing``    ``FakeMailer`` for tests of code that sends mail
"""
