"""Logging set-up, done once: structured lines, and redaction of secrets before anything is written."""

from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = (
    re.compile(r"(?i)(x-auth-token|x-subject-token|password|secret|token)(['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)"),
    re.compile(r"(://[^:/\s]+:)([^@/\s]+)(@)"),
)


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub(lambda m: m.group(1) + m.group(2) + "***", text)
    return _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + "***" + m.group(3), text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aiormq", "aio_pika", "pyroute2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
