"""Write a hamper plugin in a few lines of Python: decorators and plain functions.

    from hamper_plugin import command, run

    @command("hello", usage="hello [NAME]", help="Say hello.")
    def hello(cmd):
        return "Hello, %s!" % (cmd.args or cmd.nick)

    run()

This one file does the plumbing of hamper's plugin protocol (docs/protocol.md): the hello,
pings answered in order, every line flushed, requests matched to their responses, and a clean
exit on `goodbye` or end of input. It needs Python 3.8 or newer and nothing but the standard
library. Copy it next to your plugin, or `pip install ./sdk/python`. The reference is
docs/sdk.md.

Handlers run one at a time, in the order the events came. A call such as `kv.get` waits for its
answer, and whatever arrives meanwhile (events, pings) is handled afterwards, in order. An
exception in a handler is printed to stderr (hamper's log) and the plugin carries on. `print()`
goes to stderr too: stdout belongs to the protocol.
"""

import collections
import json
import os
import sys
import traceback

__all__ = [
    "HamperError",
    "Event",
    "command",
    "on",
    "on_message",
    "on_action",
    "on_start",
    "run",
    "kv",
    "request",
    "say",
    "me",
    "notice",
    "join",
    "part",
    "raw",
    "bot_info",
    "plugins_list",
    "log",
    "config",
    "bot",
]

PROTOCOL_VERSION = 1

#: The plugin's config section from hamper.conf (``None`` when it has none), set at start-up.
config = None
#: The bot's identity at start-up: nick, channels, command_prefix, connected.
bot = {}


class HamperError(Exception):
    """A request the host answered with an error. ``code`` is the protocol's error code:
    ``not_found``, ``too_large``, ``bad_request``, ``unknown_method``, ``unavailable``,
    ``internal``, or one a newer host added."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class Event(dict):
    """One event from the host: a dict whose fields are also attributes (``event.nick``).
    A field the event lacks reads as ``None``."""

    def __getattr__(self, field):
        if field.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(field)
        return self.get(field)

    def reply(self, text):
        """Answer where the event came from: its channel, or its sender in private."""
        _send({"type": "reply", "channel": self.get("channel"), "nick": self.get("nick"), "text": str(text)})


_commands = []  # (spec, handler)
_handlers = collections.defaultdict(list)  # subscription -> handlers
_start = []


def command(name, usage="", help="", long_help="", aliases=(), directed=True, permission=None):
    """Decorator: the function handles the command ``name``. It gets the command event
    (``.args``, ``.nick``, ``.channel``, ``.reply()``...); if it returns a string, that is the
    reply."""

    def register(handler):
        spec = {"name": name, "aliases": list(aliases), "usage": usage, "help": help,
                "long_help": long_help, "directed": directed, "permission": permission}
        _commands.append((spec, handler))
        return handler

    return register


def on(kind):
    """Decorator: the function gets every event of ``kind``, a subscription of the protocol
    (``message``, ``action``, ``join``, ``part``, ``quit``, ``kick``, ``nick``, ``topic``,
    ``invite``, ``connected``, ``disconnected``). A returned string is a reply."""

    def register(handler):
        _handlers[kind].append(handler)
        return handler

    return register


def on_message(handler):
    """Decorator: the function gets every chat message the bot sees (not ``/me`` actions)."""
    return on("message")(handler)


def on_action(handler):
    """Decorator: the function gets every ``/me`` action the bot sees."""
    return on("action")(handler)


def on_start(handler):
    """Decorator: the function runs once after the handshake, before any event, with the
    host's hello (``config`` and ``bot`` are set by then). An exception stops the plugin."""
    _start.append(handler)
    return handler


def log(*parts):
    """Write a line to stderr, which hamper logs under the plugin's name."""
    print(*parts, file=sys.stderr, flush=True)


# --- the pipe ---------------------------------------------------------------------------------

# Stdout is kept for protocol lines; from the import on, sys.stdout is stderr, so that a stray
# print() (even one before run()) is a log line instead of a malformed protocol line.
_out = sys.stdout.buffer
_in = sys.stdin.buffer
sys.stdout = sys.stderr
_deferred = collections.deque()
_next_id = 1


def _send(message):
    # ASCII-only JSON (non-ASCII escaped), one line, flushed: a buffered line is a line never sent.
    _out.write(json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n")
    _out.flush()


def _read():
    """The next message from the host, or None at the end of input. One line at a time:
    readline() returns as soon as a whole line is there, without waiting for more."""
    while True:
        raw = _in.readline()
        if not raw:
            return None
        try:
            message = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            log("ignoring a line from the host that is not JSON: %r" % raw[:80])
            continue
        if isinstance(message, dict):
            return Event(message)


def _next():
    return _deferred.popleft() if _deferred else _read()


def request(method, params=None):
    """Send a request and return its ``result``; raise :class:`HamperError` for an error.
    Whatever arrives before the answer is kept and handled afterwards, in order."""
    global _next_id
    request_id = _next_id
    _next_id += 1
    _send({"type": "request", "id": request_id, "method": method, "params": params or {}})
    while True:
        message = _read()
        if message is None:
            raise EOFError("the host closed stdin while a request was open")
        if message.get("type") == "response" and message.get("id") == request_id:
            if "error" in message:
                error = message["error"] or {}
                raise HamperError(error.get("code", "internal"), error.get("message", ""))
            return message.get("result") or {}
        if message.get("type") != "response":  # a response to nothing of ours is dropped
            _deferred.append(message)


class _Storage:
    """The plugin's own key-value store in hamper's database (protocol.md section 8). Keys are
    strings; values are anything JSON can hold. Every call waits until the host has answered, and
    a write is committed when it returns."""

    def get(self, key, default=None):
        """The value of ``key``, or ``default`` if there is none."""
        try:
            return request("kv.get", {"key": key})["value"]
        except HamperError as error:
            if error.code == "not_found":
                return default
            raise

    def set(self, key, value):
        """Store ``value`` under ``key``."""
        request("kv.set", {"key": key, "value": value})

    def delete(self, key):
        """Remove ``key``; True if it was there."""
        return request("kv.delete", {"key": key})["deleted"]

    def incr(self, key, by=1):
        """Add ``by`` to the integer under ``key`` (0 if missing), atomically; the new value."""
        return request("kv.incr", {"key": key, "by": by})["value"]

    def list(self, prefix="", order="key", limit=100, offset=0):
        """``(key, value)`` pairs of the keys starting with ``prefix``, ordered by ``"key"``,
        ``"value_asc"`` or ``"value_desc"``."""
        params = {"prefix": prefix, "order": order, "limit": limit, "offset": offset}
        return [(item["key"], item["value"]) for item in request("kv.list", params)["items"]]


kv = _Storage()


def bot_info():
    """The bot's identity now: ``nick``, ``channels``, ``command_prefix``, ``connected``."""
    return request("bot.info")


def plugins_list():
    """Every plugin, as ``!help`` sees them (protocol.md section 8)."""
    return request("plugins.list")


def say(target, text):
    """Send ``text`` to a channel or nick."""
    _send({"type": "say", "target": target, "text": str(text)})


def me(target, text):
    """Send a ``/me`` action."""
    _send({"type": "me", "target": target, "text": str(text)})


def notice(target, text):
    """Send a NOTICE."""
    _send({"type": "notice", "target": target, "text": str(text)})


def join(channel, key=None):
    """Join a channel (needs ``grants: [join]`` in the plugin's entry)."""
    _send({"type": "join", "channel": channel, "key": key})


def part(channel, reason=None):
    """Leave a channel (needs ``grants: [part]``)."""
    _send({"type": "part", "channel": channel, "reason": reason})


def raw(line):
    """Send a raw IRC line (needs ``grants: [raw]``)."""
    _send({"type": "raw", "line": line})


# --- the loop ---------------------------------------------------------------------------------

def _hello(name, description, help, version):
    commands = [spec for spec, _ in _commands]
    if not description and commands:
        first = commands[0]
        description = "%s - %s" % (first["usage"] or first["name"], first["help"])
    return {"type": "hello", "protocol_version": PROTOCOL_VERSION, "name": name,
            "version": version, "description": description, "help": help,
            "commands": commands, "subscriptions": sorted(_handlers)}


def _call(handler, event):
    try:
        answer = handler(event)
        if isinstance(answer, str) and answer:
            event.reply(answer)
    except (BrokenPipeError, EOFError):
        raise
    except Exception:  # the plugin carries on: one bad event must not stop it
        log("error in %s: %s" % (handler.__name__, traceback.format_exc().rstrip()))


def _dispatch(event):
    kind = event.get("type")
    if kind == "command":
        for spec, handler in _commands:
            if spec["name"] == event.get("command"):
                _call(handler, event)
    elif kind == "message":
        for handler in _handlers["action" if event.get("action") else "message"]:
            _call(handler, event)
    else:
        for handler in _handlers.get(kind, ()):
            _call(handler, event)


def _serve(name, description, help, version):
    global config, bot
    if sys.stdin.isatty():
        log("this is a hamper plugin; try it with: hamper plugin %s" % sys.argv[0])
        return 2
    _send(_hello(name, description, help, version))
    while True:
        message = _next()
        if message is None:
            return 1
        if message.get("type") == "goodbye":
            log("refused by the host: %s" % message.get("reason", ""))
            return 1
        if message.get("type") == "hello":
            break
    for rejected in message.get("rejected") or []:
        log("the host refused %s %s: %s" % (rejected.get("kind"), rejected.get("name"), rejected.get("reason")))
    config = message.get("config")
    bot = message.get("bot") or {}
    for handler in _start:
        handler(message)
    while True:
        event = _next()
        if event is None or event.get("type") == "goodbye":
            return 0
        if event.get("type") == "ping":
            _send({"type": "pong", "id": event.get("id")})
        else:
            _dispatch(event)


def run(name=None, description="", help="", version=""):
    """Do the handshake and serve events until the host says goodbye; then exit the process.
    ``description`` defaults to the first command's ``usage - help``; ``name`` to the name hamper
    runs the plugin under."""
    name = name or os.environ.get("HAMPER_PLUGIN_NAME") or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    try:
        status = _serve(name, description, help, version)
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        status = 0
    sys.exit(status)
