"""Application logs: one line per event, UTC timestamps, the request id on every line.
Lines carry methods, paths (with opaque local ids), status codes, timings and account ids;
never a body, a query string, a password or a token."""

from __future__ import annotations

import logging
import time
from typing import Any

FORMAT = "%(asctime)sZ %(levelname)s %(name)s [%(request_id)s] %(message)s"


class UtcFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)


def log_config(level: str = "info") -> dict[str, Any]:
    """A logging.config.dictConfig for uvicorn and the service."""
    lvl = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "line",
               "filters": ["request_id"], "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "trdstage.service.app.RequestIdFilter"}},
        "formatters": {"line": {"()": "trdstage.service.logs.UtcFormatter", "fmt": FORMAT,
                                "datefmt": "%Y-%m-%dT%H:%M:%S"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "trdstage": {"handlers": ["stderr"], "level": lvl, "propagate": False},
        },
    }
