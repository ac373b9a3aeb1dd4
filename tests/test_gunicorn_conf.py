"""web/gunicorn_conf.py: the `web` process's gunicorn settings (the Procfile and `wire serve` load it)."""

from __future__ import annotations

import gc
import importlib
import io
import logging
import sys
import types

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import message, wsgi

from web import gunicorn_conf, worker
from web.worker import DateHeader, ErrorStream, PeerTrust, SettledConfig


@pytest.fixture
def worker_init():
    """`post_worker_init` run in this process, its effects undone afterwards."""
    before = sys.getswitchinterval()
    gc.unfreeze()
    yield
    sys.setswitchinterval(before)
    gc.unfreeze()  # the test process's objects are collected as usual again


def test_each_worker_gives_the_gil_back_after_a_millisecond(worker_init):
    sys.setswitchinterval(0.005)
    gunicorn_conf.post_worker_init(object())
    assert sys.getswitchinterval() == pytest.approx(gunicorn_conf.GIL_SWITCH_INTERVAL) == pytest.approx(0.001)


def test_what_a_worker_built_before_serving_is_left_out_of_full_collections(worker_init):
    assert gc.get_freeze_count() == 0
    gunicorn_conf.post_worker_init(object())
    assert gc.get_freeze_count() > 10_000  # the modules and objects loaded so far, as a worker's app


def test_the_settings_are_the_procfiles_read_from_the_environment(monkeypatch):
    for name in ("WEB_CONCURRENCY", "WEB_CONNECTIONS", "WEB_HOST", "PORT", "WEB_GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    try:
        conf = importlib.reload(gunicorn_conf)
        settings = (conf.worker_class, conf.workers, conf.worker_connections, conf.bind,
                    conf.graceful_timeout)
        assert settings == ("web.worker.Worker", 2, 10000, ["0.0.0.0:8765"], 25)
        monkeypatch.setenv("WEB_CONCURRENCY", "4")
        monkeypatch.setenv("WEB_CONNECTIONS", "500")
        monkeypatch.setenv("WEB_HOST", "127.0.0.1")
        monkeypatch.setenv("PORT", "9000")
        monkeypatch.setenv("WEB_GRACEFUL_TIMEOUT", "7")
        conf = importlib.reload(gunicorn_conf)
        assert (conf.workers, conf.worker_connections, conf.bind, conf.graceful_timeout) == (
            4, 500, ["127.0.0.1:9000"], 7)
    finally:
        monkeypatch.undo()
        importlib.reload(gunicorn_conf)


def test_a_worker_reads_each_gunicorn_setting_through_gunicorn_once():
    class Source:
        reads = 0

        @property
        def keepalive(self) -> int:
            Source.reads += 1
            return 2

    settled = SettledConfig(Source())
    assert settled.keepalive == settled.keepalive == 2
    assert Source.reads == 1
    real = Config()
    real.set("worker_connections", 123)
    as_read = SettledConfig(real)
    assert (as_read.worker_connections, as_read.keepalive, as_read.is_ssl) == (
        123, real.keepalive, real.is_ssl)
    assert as_read.forwarded_allow_networks() == real.forwarded_allow_networks()


def test_a_worker_dates_each_answer_with_the_second_it_is_sent_in(monkeypatch):
    clock = [1_700_000_000.25]
    monkeypatch.setattr(worker.time, "time", lambda: clock[0])
    date = DateHeader()
    assert date() == "Tue, 14 Nov 2023 22:13:20 GMT" == util.http_date(1_700_000_000)
    clock[0] = 1_700_000_000.999
    assert date() == "Tue, 14 Nov 2023 22:13:20 GMT"
    clock[0] = 1_700_000_001.0  # the next second: a new Date, not the cached one
    assert date() == "Tue, 14 Nov 2023 22:13:21 GMT"
    clock[0] = 1_700_000_000.5  # a clock set back is followed too
    assert date() == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert date(86_400) == util.http_date(86_400) == "Fri, 02 Jan 1970 00:00:00 GMT"  # an explicit time


def test_a_worker_asks_once_per_peer_address_whether_it_may_set_forwarding_headers(monkeypatch):
    asked = []

    def check(ip, allow_list, networks):
        asked.append(ip)
        return message._ip_in_allow_list(ip, allow_list, networks)  # gunicorn's own, as the worker wraps it

    config = Config()
    allowed, networks = config.forwarded_allow_ips, config.forwarded_allow_networks()
    trust = PeerTrust(check)
    assert [trust("127.0.0.1", allowed, networks) for _ in range(3)] == [True] * 3
    assert [trust("10.1.2.3", allowed, networks) for _ in range(2)] == [False] * 2
    assert asked == ["127.0.0.1", "10.1.2.3"]
    assert trust("10.1.2.3", ["*"], []) is True  # other lists: asked anew, never the kept answer
    assert asked[-1] == "10.1.2.3" and len(asked) == 3
    monkeypatch.setattr(PeerTrust, "LIMIT", 2)
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        trust(ip, allowed, networks)
    assert len(trust._known) <= 2


@pytest.mark.parametrize("errorlog", ["-", "/var/log/gunicorn.log"])
def test_a_requests_error_stream_writes_where_gunicorns_would(errorlog, monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    error_log = logging.getLogger("gunicorn.error")
    monkeypatch.setattr(error_log, "handlers", [logging.StreamHandler(first), logging.StreamHandler(second)])
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    config = Config()
    config.set("errorlog", errorlog)
    theirs, ours = wsgi.WSGIErrorsWrapper(config), ErrorStream(config)
    assert ours.streams == theirs.streams
    ours.write("traceback\n")
    written = (sys.stderr.getvalue(), first.getvalue(), second.getvalue())
    to_stderr = errorlog == "-"  # gunicorn's "-": stderr in place of the first handler's stream
    tb = "traceback\n"
    assert written == ((tb, "", tb) if to_stderr else ("", tb, tb))
    reopened = io.StringIO()  # a log reopened after the request began (SIGUSR1): written to as it is now
    error_log.handlers[1].stream = reopened
    ours.write("more\n")
    assert reopened.getvalue() == "more\n"


def test_a_worker_settles_gunicorns_per_request_lookups_once_forked(monkeypatch):
    # what `settle` replaces must exist in the gunicorn we run (an upgrade that renames one fails here)
    for module, name in ((util, "http_date"), (message, "_ip_in_allow_list"), (wsgi, "WSGIErrorsWrapper")):
        monkeypatch.setattr(module, name, getattr(module, name))  # put back after the test
    forked = types.SimpleNamespace(cfg=Config())
    worker.Worker.settle(forked)  # type: ignore[arg-type]
    assert isinstance(forked.cfg, SettledConfig) and isinstance(util.http_date, DateHeader)
    assert isinstance(message._ip_in_allow_list, PeerTrust) and wsgi.WSGIErrorsWrapper is ErrorStream
