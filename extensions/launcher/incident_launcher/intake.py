# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher's HTTP intake: aiohttp's HTTP/1.1 protocol behind an accept loop that slow and hostile clients cannot exhaust.

What holds whatever the clients do (docs/launcher.md, "Intake under attack"):

- **one deadline per request**: ``limits.request_timeout`` seconds from the request's first byte (from the
  accept for a new connection) to its last body byte. A connection that has not sent complete headers by
  then is closed; a body that has not arrived by then is answered 408. Idle keep-alive connections are
  closed after ``limits.keepalive_timeout``.
- **auth as soon as the headers are in**: a request to ``/webhook`` without valid credentials is answered
  401 and its connection closed before a byte of its body is read. Unauthenticated requests are counted in
  /metrics and logged at most once per ``UNAUTH_LOG_INTERVAL`` seconds (a summary); they are never written
  to disk.
- **connection limits unauthenticated clients cannot exhaust**: at most ``limits.max_connections`` open
  connections and ``limits.max_connections_per_peer`` per client address. At a limit, the oldest connection
  that has not yet authenticated (of that peer, or of all peers) is closed to make room; only when every
  connection at the limit has authenticated is the new one refused. A connection that authenticated once
  (Alertmanager's keep-alive connections) is never closed for an unauthenticated one.
- **bounded memory**: request headers are capped at ``limits.max_header_bytes`` before the request is
  handled, bodies at ``limits.max_body_bytes`` (refused from Content-Length, before reading), and all bodies
  being read at once at ``limits.max_body_memory`` (503 + Retry-After beyond).

The spool write stays where it was: :meth:`Launcher.intake` (synchronous, fsync'd) runs in a small thread
pool, and the 2xx is sent only after it returned.

The inbound routes of people in the loop (``/slack/interactivity``, ``/slack/commands``, ``/pagerduty/webhook``;
inbound.py) go through the same connection limits, deadline and body-memory budget. Their credentials are signatures
over the body: the signature headers are checked as soon as the headers are in (missing, malformed, or a Slack
timestamp outside the replay window: 401 and closed before a byte of the body is read), the body is capped at
``inbound.max_body_bytes`` and the signature verified right after it arrived. Refusals are counted
(``incident_launcher_inbound_refused_total``) and logged as a summary, never written to disk.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import resource
import socket
import ssl
import threading
import time

from aiohttp import web

from incident_launcher import LauncherError, __version__
from incident_launcher.inbound import ROUTES as INBOUND_ROUTES

UNAUTH_LOG_INTERVAL = 10.0
FD_RESERVE = 256
ACCEPT_BATCH = 16
HEADER_END = b'\r\n\r\n'
JSON_HEADERS = {'Cache-Control': 'no-store', 'Server': 'incident-launcher/' + __version__}
METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


class Connection:  # pylint: disable=too-many-instance-attributes
    """One accepted socket: its peer, whether it authenticated, and the deadline of the request in progress."""

    __slots__ = ('peer', 'sock', 'task', 'transport', 'authenticated', 'state', 'deadline', 'timer', 'header_bytes', 'tail', 'closed')

    def __init__(self, peer, sock):
        self.peer = peer
        self.sock = sock
        self.task = None
        self.transport = None
        self.authenticated = False
        # new (accepted, nothing read) -> headers (bytes of a request) -> body (headers complete) -> handling
        # (handler running) -> processing (body read, spooling) -> idle (answered, keep-alive) -> headers ...
        self.state = 'new'
        self.deadline = None
        self.timer = None
        self.header_bytes = 0
        self.tail = b''
        self.closed = False


class _Protocol(asyncio.Protocol):
    """Byte accounting and deadlines of :class:`Connection` in front of aiohttp's request handler.

    aiohttp's handler (a task, a parser, buffers) is created only once a connection has sent complete headers:
    a slow or half-open connection costs a few hundred bytes until it is closed.
    """

    def __init__(self, intake, conn):
        self.intake = intake
        self.conn = conn
        self.inner = None
        self.buffer = b''

    def connection_made(self, transport):
        self.conn.transport = transport
        self.intake.by_transport[transport] = self.conn

    def data_received(self, data):
        conn = self.conn
        if conn.closed:
            return
        if conn.state in ('new', 'idle', 'headers'):
            if conn.state == 'idle':
                conn.header_bytes, conn.tail = 0, b''
                self.intake.arm(conn)
            conn.state = 'headers'
            window = conn.tail + data
            end = window.find(HEADER_END)
            conn.header_bytes += len(data) if end < 0 else end + len(HEADER_END) - len(conn.tail)
            if conn.header_bytes > self.intake.max_header_bytes:
                self.intake.drop(conn, 'header_too_large')
                return
            if end < 0:
                conn.tail = window[-3:]
                if self.inner is None:
                    self.buffer += data
                    return
            else:
                conn.state = 'body'
                # Complete headers are answered at once (401 and closed when the credentials are wrong): not worth evicting.
                self.intake.unwait(conn)
                if self.inner is None:
                    self.inner = self.intake.server()
                    self.inner.connection_made(conn.transport)
                    data, self.buffer = self.buffer + data, b''
        self.inner.data_received(data)

    def eof_received(self):
        if self.inner is None:
            return False
        return self.inner.eof_received()

    def connection_lost(self, exc):
        try:
            if self.inner is not None:
                self.inner.connection_lost(exc)
        finally:
            self.intake.release(self.conn)

    def pause_writing(self):
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self):
        if self.inner is not None:
            self.inner.resume_writing()


class Intake:  # pylint: disable=too-many-instance-attributes
    """The HTTP server of one launcher, on its own event loop thread."""

    def __init__(self, launcher, ssl_context=None):
        config = launcher.config
        limits = config['limits']
        self.launcher = launcher
        self.metrics = launcher.metrics
        self.logger = launcher.logger
        self.ssl_context = ssl_context
        self.request_timeout = limits['request_timeout']
        self.keepalive_timeout = limits['keepalive_timeout']
        self.max_connections = limits['max_connections']
        self.max_per_peer = limits['max_connections_per_peer']
        self.max_header_bytes = limits['max_header_bytes']
        self.max_body_bytes = limits['max_body_bytes']
        self.max_body_memory = limits['max_body_memory']
        self.body_memory = 0
        self.conns = collections.OrderedDict()      # every open connection, oldest first
        self.waiting = collections.OrderedDict()    # connections that have not authenticated, oldest first
        self.peers = collections.Counter()
        self.peer_waiting = {}                       # peer -> its unauthenticated connections, oldest first
        self.by_transport = {}
        self.unauth = {'count': 0, 'reasons': collections.Counter(), 'peers': collections.OrderedDict(), 'logged': 0.0}
        self.unsigned = {'count': 0, 'reasons': collections.Counter(), 'peers': collections.OrderedDict(), 'logged': 0.0}
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix='launcher-intake')
        self.loop = None
        self.server = None
        self.sock = None
        self.thread = None
        self.accepting = None
        self.ready = threading.Event()
        self.startup_error = None

    # -- lifecycle (called from the launcher's thread) -------------------------------------
    def bind(self, address, port):
        """Listen now (so that a launcher that cannot listen fails before it resumes anything); returns (address, port)."""
        self._raise_fd_limit()
        family = socket.AF_INET6 if ':' in address else socket.AF_INET
        try:
            self.sock = socket.create_server((address, port), family=family, backlog=1024, reuse_port=False)
        except OSError as exc:
            raise LauncherError('cannot listen on %s:%s: %s' % (address, port, exc.strerror or exc)) from None
        self.sock.setblocking(False)
        return self.sock.getsockname()[:2]

    def start(self):
        self.thread = threading.Thread(target=self._run, name='launcher-http', daemon=True)
        self.thread.start()
        self.ready.wait(30)
        if self.startup_error is not None:
            raise LauncherError('the HTTP intake did not start: %s' % self.startup_error)

    def stop(self, timeout=5.0):
        """Stop accepting, give requests in progress ``timeout`` seconds, close every connection."""
        if self.loop is not None and self.thread is not None and self.thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), self.loop)
            try:
                future.result(timeout + 10)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        elif self.sock is not None:
            self.sock.close()
        self.executor.shutdown(wait=False)

    def _raise_fd_limit(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = self.max_connections + FD_RESERVE
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
            if soft < wanted:
                self.max_connections = max(16, soft - FD_RESERVE)
                self.logger.warning('connection_limit_lowered', max_connections=self.max_connections, open_files_limit=soft,
                                    message='limits.max_connections needs %d open files; the process may open %d' % (wanted, soft))

    def _run(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._setup())
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.startup_error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _setup(self):
        self.server = web.Server(self.handle, keepalive_timeout=self.keepalive_timeout, max_line_size=8190, max_field_size=8190,
                                 max_headers=100, lingering_time=min(2.0, self.request_timeout), read_bufsize=65536,
                                 access_log=None, handler_cancellation=True)
        self.accepting = asyncio.ensure_future(self._accept_loop())

    async def _shutdown(self, timeout):
        if self.accepting is not None:
            self.accepting.cancel()
        self.sock.close()
        deadline = time.monotonic() + timeout
        while any(conn.state in ('handling', 'processing') for conn in self.conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.conns):
            self._close(conn)
        await self.server.shutdown(0.5)

    # -- connections ---------------------------------------------------------------------
    async def _accept_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(self.sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                # EMFILE/ENFILE: the connection waits in the backlog; the limits above keep this rare.
                self.metrics.inc('incident_launcher_connections_closed_total', reason='accept_error')
                self.logger.error('accept_failed', error=exc.strerror or str(exc))
                await asyncio.sleep(0.05)
                continue
            self.admit(sock, address[0])
            # Then what else waits in the backlog, up to ACCEPT_BATCH, and back to the loop: under a flood the backlog never
            # empties, and the loop must read the connections it has (completing their headers protects them) between batches.
            for _more in range(ACCEPT_BATCH - 1):
                try:
                    sock, address = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                self.admit(sock, address[0])
            await asyncio.sleep(0)

    def admit(self, sock, peer):
        """A new connection: make room (evicting the oldest unauthenticated one) or refuse it."""
        if self.peers[peer] >= self.max_per_peer:
            victim = next(iter(self.peer_waiting.get(peer, ())), None)
            if victim is None:
                self._refuse(sock, 'peer_limit')
                return
            self.drop(victim, 'evicted')
        if len(self.conns) >= self.max_connections:
            victim = next(iter(self.waiting), None)
            if victim is None:
                self._refuse(sock, 'connection_limit')
                return
            self.drop(victim, 'evicted')
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = Connection(peer, sock)
        self.conns[conn] = None
        self._wait(conn)
        self.peers[peer] += 1
        self.arm(conn)
        self._gauge()
        conn.task = asyncio.ensure_future(self._connect(conn))
        conn.task.add_done_callback(lambda task, conn=conn: self._connected(conn, task))

    async def _connect(self, conn):
        loop = asyncio.get_running_loop()
        kwargs = {}
        if self.ssl_context is not None:
            kwargs = {'ssl': self.ssl_context, 'ssl_handshake_timeout': self.request_timeout}
        await loop.connect_accepted_socket(lambda: _Protocol(self, conn), conn.sock, **kwargs)

    def _connected(self, conn, task):
        if task.cancelled() or task.exception() is not None:
            if conn.transport is None:
                conn.sock.close()
            self.release(conn)

    def _refuse(self, sock, reason):
        self.metrics.inc('incident_launcher_connections_closed_total', reason=reason)
        try:
            if self.ssl_context is None:
                sock.send(b'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
        except OSError:
            pass
        sock.close()

    def arm(self, conn):
        """Start the deadline of the request that begins now."""
        loop = asyncio.get_running_loop()
        if conn.timer is not None:
            conn.timer.cancel()
        conn.deadline = loop.time() + self.request_timeout
        conn.timer = loop.call_at(conn.deadline, self._expired, conn)

    def _disarm(self, conn):
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        conn.deadline = None

    def _expired(self, conn):
        conn.timer = None
        if conn.state in ('new', 'headers', 'body'):
            # Headers not complete, or complete but the handler has not run: nothing to answer.
            self.drop(conn, 'request_timeout')
        # handling: the handler's own deadline answers 408; processing and idle are not cut.

    def drop(self, conn, reason):
        self.metrics.inc('incident_launcher_connections_closed_total', reason=reason)
        self._close(conn)

    def _close(self, conn):
        """Close now and give its place back at once (connection_lost follows later and finds it released)."""
        if conn.closed:
            return
        if conn.transport is not None:
            conn.transport.abort()
        elif conn.task is not None and not conn.task.done():
            conn.task.cancel()  # during the TLS handshake; _connected closes the socket if it was never wrapped
        else:
            conn.sock.close()
        self.release(conn)

    def release(self, conn):
        if conn.closed:
            return
        conn.closed = True
        self._disarm(conn)
        self.conns.pop(conn, None)
        self._unwait(conn)
        self.by_transport.pop(conn.transport, None)
        self.peers[conn.peer] -= 1
        if self.peers[conn.peer] <= 0:
            del self.peers[conn.peer]
        self._gauge()

    def _gauge(self):
        self.metrics.set_gauge('incident_launcher_connections_open', len(self.conns))
        self.metrics.gauge_max('incident_launcher_connections_open_peak', len(self.conns))

    def _wait(self, conn, first=False):
        for index in (self.waiting, self.peer_waiting.setdefault(conn.peer, collections.OrderedDict())):
            index[conn] = None
            index.move_to_end(conn, last=not first)

    def unwait(self, conn):
        self._unwait(conn)

    def _unwait(self, conn):
        self.waiting.pop(conn, None)
        waiting = self.peer_waiting.get(conn.peer)
        if waiting is not None:
            waiting.pop(conn, None)
            if not waiting:
                del self.peer_waiting[conn.peer]

    def _authenticated(self, conn):
        if conn is not None and not conn.authenticated:
            conn.authenticated = True
            self._unwait(conn)

    # -- requests ------------------------------------------------------------------------
    async def handle(self, request):
        conn = self.by_transport.get(request.transport)
        if conn is not None:
            if conn.deadline is None:  # a pipelined request: its deadline starts now
                self.arm(conn)
            conn.state = 'handling'
        try:
            response = await self._route(request, conn)
        finally:
            if conn is not None and not conn.closed:
                conn.state = 'idle'
                self._disarm(conn)
                if not conn.authenticated:
                    # An idle keep-alive connection that never authenticated (a /metrics scraper, a prober) goes first.
                    self._wait(conn, first=True)
        return response

    async def _route(self, request, conn):
        path, method = request.path, request.method
        if path == '/webhook':
            if method != 'POST':
                return self._answer(405, {'status': 'rejected', 'reason': 'method', 'error': 'use POST'}, {'Allow': 'POST'}, close=True)
            return await self._webhook(request, conn)
        if path in INBOUND_ROUTES:
            if method != 'POST':
                return self._answer(405, {'status': 'rejected', 'reason': 'method', 'error': 'use POST'}, {'Allow': 'POST'}, close=True)
            return await self._inbound(request, conn, path)
        if path == '/healthz' and method in ('GET', 'HEAD'):
            health = await asyncio.get_running_loop().run_in_executor(self.executor, self.launcher.health)
            return self._answer(200 if health['status'] == 'ok' else 503, health)
        if path == '/metrics' and method in ('GET', 'HEAD'):
            return web.Response(body=self.metrics.render().encode('utf-8'), headers=dict(JSON_HEADERS, **{'Content-Type': METRICS_TYPE}))
        if path in ('/healthz', '/metrics'):
            return self._answer(405, {'status': 'rejected', 'reason': 'method', 'error': 'use GET or HEAD'}, {'Allow': 'GET, HEAD'}, close=True)
        return self._answer(404, {'status': 'rejected', 'reason': 'not_found', 'error': 'unknown path'}, close=True)

    @staticmethod
    def _answer(status, document, headers=None, close=False):
        response = web.Response(status=status, body=(json.dumps(document, sort_keys=True) + '\n').encode('utf-8'),
                                headers=dict(JSON_HEADERS, **{'Content-Type': 'application/json'}, **(headers or {})))
        if close:
            response.force_close()
        return response

    def _unauthenticated(self, reason, peer, source=None):
        """Counted, and logged as a summary at most every UNAUTH_LOG_INTERVAL seconds; never written to disk."""
        if source is None:
            self.metrics.inc('incident_launcher_alerts_rejected_total', reason=reason)
            state, event = self.unauth, 'unauthenticated'
        else:
            self.metrics.inc('incident_launcher_inbound_refused_total', source=source, reason=reason)
            state, event = self.unsigned, 'inbound_unsigned'
            reason = '%s:%s' % (source, reason)
        state['count'] += 1
        state['reasons'][reason] += 1
        if peer not in state['peers'] and len(state['peers']) < 5:
            state['peers'][peer] = None
        now = time.monotonic()
        if now - state['logged'] >= UNAUTH_LOG_INTERVAL:
            self.logger.warning(event, requests=state['count'], reasons=dict(state['reasons']), peers=list(state['peers']),
                                message='requests refused since the last such line (at most one line per %g s)' % UNAUTH_LOG_INTERVAL)
            state.update(count=0, reasons=collections.Counter(), peers=collections.OrderedDict(), logged=now)

    async def _inbound(self, request, conn, path):  # pylint: disable=too-many-return-statements
        """A signed request of a person (Slack, PagerDuty): signature headers before the body, the signature after it."""
        inbound = self.launcher.inbound
        source = INBOUND_ROUTES[path]
        remote = conn.peer if conn is not None else (request.remote or '')
        if inbound is None or not inbound.configured(source):
            self.metrics.inc('incident_launcher_inbound_refused_total', source=source, reason='not_configured')
            return self._answer(404, {'status': 'rejected', 'reason': 'not_configured', 'error': 'no %s secret is configured' % source},
                                close=True)
        ok, reason = inbound.precheck(source, request.headers, time.time())
        if not ok:
            self._unauthenticated(reason, remote, source)
            return self._answer(401, {'status': 'rejected', 'reason': reason, 'error': 'missing, invalid or stale signature'}, close=True)
        refusal = self._check_length(request, inbound.max_body_bytes)
        if refusal is not None:
            self._unauthenticated(refusal[1], remote, source)
            return self._answer(refusal[0], {'status': 'rejected', 'reason': refusal[1], 'error': refusal[2]}, close=True)
        length = request.content_length
        if self.body_memory + length > self.max_body_memory:
            self._unauthenticated('busy', remote, source)
            return self._answer(503, {'status': 'rejected', 'reason': 'busy', 'error': 'retry later'}, {'Retry-After': '1'}, close=True)
        self.body_memory += length
        try:
            body, problem = await self._read_body(request, conn, length)
        finally:
            self.body_memory -= length
        if problem is not None:
            self._unauthenticated(problem[1], remote, source)
            return self._answer(problem[0], {'status': 'rejected', 'reason': problem[1], 'error': problem[2]}, close=True)
        now = time.time()
        ok, reason = inbound.verify(source, request.headers, body, now)
        if not ok:
            self._unauthenticated(reason, remote, source)
            return self._answer(401, {'status': 'rejected', 'reason': reason, 'error': 'missing, invalid or stale signature'}, close=True)
        self._authenticated(conn)
        if conn is not None:
            conn.state = 'processing'
            self._disarm(conn)
        status, document, extra = await asyncio.get_running_loop().run_in_executor(self.executor, inbound.handle, path, request.headers,
                                                                                   body, now)
        if document is None:
            return web.Response(status=status, body=b'', headers=dict(JSON_HEADERS, **extra))
        return self._answer(status, document, extra, close=status >= 400)

    async def _read_body(self, request, conn, length):
        """``(body, None)``, or ``(None, (status, reason, message))`` when it did not arrive whole within the deadline."""
        loop = asyncio.get_running_loop()
        deadline = conn.deadline if conn is not None and conn.deadline is not None else loop.time() + self.request_timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await request.content.readexactly(length), None
        except TimeoutError:
            return None, (408, 'request_timeout', 'the body did not arrive within limits.request_timeout (%g s)' % self.request_timeout)
        except asyncio.IncompleteReadError as exc:
            return None, (400, 'bad_request', 'the body ended after %d of %d bytes' % (len(exc.partial), length))

    async def _webhook(self, request, conn):  # pylint: disable=too-many-return-statements
        launcher = self.launcher
        started = time.perf_counter()
        remote = conn.peer if conn is not None else (request.remote or '')
        ok, reason = launcher.auth.check(request.headers.get('Authorization'))
        if not ok:
            self._unauthenticated(reason, remote)
            challenge = 'Bearer realm="incident-launcher"' if launcher.auth.bearer_token else 'Basic realm="incident-launcher"'
            return self._answer(401, {'status': 'rejected', 'reason': reason, 'error': 'missing or invalid credentials'},
                                {'WWW-Authenticate': challenge}, close=True)
        self._authenticated(conn)
        refusal = self._check_length(request)
        if refusal is not None:
            return await self._reject(refusal[0], refusal[1], refusal[2], remote, refusal[3] if len(refusal) > 3 else None)
        length = request.content_length
        if launcher.stopped.is_set():
            return await self._reject(503, 'stopping', 'the launcher is stopping; retry later', remote, {'Retry-After': '5'})
        if self.body_memory + length > self.max_body_memory:
            return await self._reject(503, 'busy', 'too many request bodies in memory (limits.max_body_memory); retry later', remote,
                                      {'Retry-After': '1'})
        self.body_memory += length
        try:
            loop = asyncio.get_running_loop()
            body, problem = await self._read_body(request, conn, length)
            if problem is not None:
                return await self._reject(problem[0], problem[1], problem[2], remote)
            if conn is not None:
                conn.state = 'processing'
                self._disarm(conn)
            status, answer = await loop.run_in_executor(self.executor, launcher.intake, body, remote)
        finally:
            self.body_memory -= length
        headers = {'Retry-After': '30'} if status == 503 else None
        response = self._answer(status, answer, headers)
        if 200 <= status < 300:
            self.metrics.observe_ack(time.perf_counter() - started)
        return response

    def _check_length(self, request, limit=None):
        limit = self.max_body_bytes if limit is None else limit
        if request.headers.get('Transfer-Encoding'):
            return 411, 'no_length', 'send the body with Content-Length (chunked bodies are not accepted)'
        raw = request.headers.get('Content-Length')
        if raw is None:
            return 411, 'no_length', 'Content-Length is required'
        length = request.content_length
        if length is None or length < 0:
            return 400, 'bad_request', 'Content-Length is not a number'
        if length > limit:
            return 413, 'too_large', 'the body is %d bytes; the limit is %d' % (length, limit)
        return None

    async def _reject(self, status, reason, message, remote, headers=None):
        """An authenticated request refused before its body was read (or while): logged, counted, the connection closed."""
        status, answer = await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: self.launcher.reject(status, reason, message, remote))
        return self._answer(status, answer, headers, close=True)


def ssl_context(tls):
    """The server's TLS context (TLS 1.2+, optional client certificates), or None without a certificate."""
    if not tls['cert_file']:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls['cert_file'], tls['key_file'])
        if tls['client_ca_file']:
            context.load_verify_locations(cafile=tls['client_ca_file'])
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise LauncherError('tls: cannot load the certificate, key or client CA: %s' % exc) from None
    return context
