"""Every error leaves the API as `{"error": {"code", "message", ...}}`: one payload builder."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from store.db import storage_error
from store.errors import BeadwireError, RateLimited

log = logging.getLogger("beadwire.web")


def error_response(status: int, code: str, message: str, **details: object):
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    return response


def _first_message(messages: object, path: str = "") -> str:
    """The first marshmallow message with its field path, for a one-line summary."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _first_message(messages[0], path)
    return f"{path}: {messages}" if path else str(messages)


def init_app(app: Flask) -> None:
    @app.errorhandler(BeadwireError)
    def beadwire_error(exc: BeadwireError):
        response = error_response(exc.status_code, exc.code, exc.message, **exc.details)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return error_response(422, "invalid", f"invalid input: {_first_message(exc.messages)}",
                              fields=exc.messages)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                413: "too_large"}.get(
            exc.code or 500, "http_error")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        storage = storage_error(exc)  # a database failure outside `db.transaction()`: a plain read
        if storage is not None:
            log.warning("%s", storage.message)
            return beadwire_error(storage)
        log.exception("unhandled error")
        return error_response(500, "internal", "internal server error")
