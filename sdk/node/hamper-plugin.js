// hamper-plugin.js: write a hamper plugin in a few lines of JavaScript (Node.js 20 or newer).
//
//     const { command, run } = require("./hamper-plugin");
//     command("hello", { usage: "hello [NAME]", help: "Say hello." }, (cmd) => `Hello, ${cmd.args || cmd.nick}!`);
//     run();
//
// It does the plumbing of hamper's plugin protocol (docs/protocol.md): the hello, pings answered
// in order, requests matched to their responses, and a clean exit on goodbye or end of input.
// One file, no dependencies: copy it next to your plugin. The reference is docs/sdk.md.
//
// It is a CommonJS module so that a plugin is one plain `.js` file that `require`s it, run with
// `node seen.js`, with no package.json or `.mjs` extension; an ES module plugin can still
// `import` it.
//
// Handlers run one at a time, in the order the events came: the next event waits until the
// promise a handler returns has settled. A handler that returns (or resolves to) a non-empty
// string replies with it. One that throws or rejects is logged to stderr, and the plugin
// carries on. console.log goes to stderr too: stdout belongs to the protocol.

"use strict";

const readline = require("readline");
const path = require("path");

const PROTOCOL_VERSION = 1;

/** A request the host answered with an error; `code` is the protocol's error code. */
class HamperError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "HamperError";
    this.code = code;
    this.hostMessage = message;
  }
}

const commands = []; // { spec, handler }
const handlers = new Map(); // subscription -> [handler]
const startHandlers = [];
const pending = new Map(); // request id -> { resolve, reject }
const queue = []; // messages waiting to be handled, in order; null marks the end of input
let nextId = 1;
let pumping = false;
let started = false;

/** The plugin's config section from hamper.conf (null when it has none), set at start-up. */
exports.config = null;
/** The bot's identity at start-up: nick, channels, command_prefix, connected. */
exports.bot = {};

// Protocol lines go to the real stdout; anything else written there (console.log) goes to
// stderr, so a debugging line is a log line instead of a malformed protocol line.
const writeProtocol = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

function send(message) {
  writeProtocol(JSON.stringify(message) + "\n");
}

/** Writes a line to stderr, which hamper logs under the plugin's name. */
function log(...parts) {
  console.error(...parts);
}

/** Handle the command `name`: `command(name, [options,] handler)`. The options are those of a
 * command spec: usage, help, long_help, aliases, directed, permission. */
function command(name, options, handler) {
  if (typeof options === "function") [options, handler] = [{}, options];
  const spec = {
    name,
    aliases: options.aliases || [],
    usage: options.usage || "",
    help: options.help || "",
    long_help: options.long_help || "",
    directed: options.directed !== false,
    permission: options.permission || null,
  };
  commands.push({ spec, handler });
}

/** Handle every event of the subscription `kind` (message, action, join, part, quit, kick,
 * nick, topic, invite, connected, disconnected). */
function on(kind, handler) {
  if (!handlers.has(kind)) handlers.set(kind, []);
  handlers.get(kind).push(handler);
}

const onMessage = (handler) => on("message", handler);
const onAction = (handler) => on("action", handler);
/** Run `handler(hostHello)` once after the handshake, before any event. */
const onStart = (handler) => startHandlers.push(handler);

/** Sends a request; resolves to its `result`, or rejects with a HamperError. */
function request(method, params = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: "request", id, method, params });
  });
}

/** The plugin's own key-value store in hamper's database. Every call returns a promise that
 * settles when the host has answered; a write is committed by then. */
const kv = {
  /** The value of `key`, or `fallback` when there is none. */
  async get(key, fallback = null) {
    try {
      return (await request("kv.get", { key })).value;
    } catch (err) {
      if (err instanceof HamperError && err.code === "not_found") return fallback;
      throw err;
    }
  },
  async set(key, value) {
    await request("kv.set", { key, value });
  },
  /** True if the key was there. */
  async delete(key) {
    return (await request("kv.delete", { key })).deleted;
  },
  /** Adds `by` to the integer under `key` (0 when missing), atomically; the new value. */
  async incr(key, by = 1) {
    return (await request("kv.incr", { key, by })).value;
  },
  /** [key, value] pairs of the keys starting with `prefix`. */
  async list(prefix = "", { order = "key", limit = 100, offset = 0 } = {}) {
    const { items } = await request("kv.list", { prefix, order, limit, offset });
    return items.map((item) => [item.key, item.value]);
  },
};

const say = (target, text) => send({ type: "say", target, text: String(text) });
const me = (target, text) => send({ type: "me", target, text: String(text) });
const notice = (target, text) => send({ type: "notice", target, text: String(text) });
const join = (channel, key = null) => send({ type: "join", channel, key });
const part = (channel, reason = null) => send({ type: "part", channel, reason });
const raw = (line) => send({ type: "raw", line });
const botInfo = () => request("bot.info");
const pluginsList = () => request("plugins.list");

function withReply(event) {
  Object.defineProperty(event, "reply", {
    value: (text) =>
      send({ type: "reply", channel: event.channel ?? null, nick: event.nick, text: String(text) }),
  });
  return event;
}

async function call(handler, event) {
  try {
    const answer = await handler(event);
    if (typeof answer === "string" && answer) event.reply(answer);
  } catch (err) {
    log(`error in ${handler.name || "a handler"}:`, err && err.stack ? err.stack : err);
  }
}

async function dispatch(event) {
  if (event.type === "command") {
    for (const { spec, handler } of commands) {
      if (spec.name === event.command) await call(handler, event);
    }
    return;
  }
  const kind = event.type === "message" && event.action ? "action" : event.type;
  for (const handler of handlers.get(kind) || []) await call(handler, event);
}

async function begin(hello) {
  for (const rejected of hello.rejected || []) {
    log(`the host refused ${rejected.kind} ${rejected.name}: ${rejected.reason}`);
  }
  exports.config = hello.config ?? null;
  exports.bot = hello.bot || {};
  for (const handler of startHandlers) await handler(hello);
  started = true;
}

/** Handles queued messages one at a time, in order. */
async function pump() {
  if (pumping) return;
  pumping = true;
  while (queue.length > 0) {
    const message = queue.shift();
    if (message === null) process.exit(started ? 0 : 1);
    if (!started) {
      if (message.type === "goodbye") {
        log(`refused by the host: ${message.reason || ""}`);
        process.exit(1);
      }
      if (message.type === "hello") {
        try {
          await begin(message);
        } catch (err) {
          log("plugin start-up failed:", err && err.stack ? err.stack : err);
          process.exit(1);
        }
      }
    } else if (message.type === "ping") {
      send({ type: "pong", id: message.id });
    } else if (message.type === "goodbye") {
      process.exit(0);
    } else {
      await dispatch(withReply(message));
    }
  }
  pumping = false;
}

function receive(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    log(`ignoring a line from the host that is not JSON: ${line.slice(0, 80)}`);
    return;
  }
  if (message === null || typeof message !== "object") return;
  if (message.type === "response") {
    // Answered at once, not queued: the handler that asked is waiting for it. A response to
    // nothing of ours is dropped.
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if (message.error) {
      waiting.reject(new HamperError(message.error.code || "internal", message.error.message || ""));
    } else {
      waiting.resolve(message.result || {});
    }
    return;
  }
  queue.push(message);
  pump();
}

/** Sends the hello and serves events until the host says goodbye; then exits. The description
 * defaults to the first command's `usage - help`, the name to the one hamper runs it under. */
function run({ name, description = "", help = "", version = "" } = {}) {
  if (process.stdin.isTTY) {
    log(`this is a hamper plugin; try it with: hamper plugin ${process.argv[1]}`);
    process.exit(2);
  }
  const specs = commands.map((c) => c.spec);
  if (!description && specs.length > 0) {
    description = `${specs[0].usage || specs[0].name} - ${specs[0].help}`;
  }
  name = name || process.env.HAMPER_PLUGIN_NAME || path.basename(process.argv[1] || "plugin", ".js");
  process.stdout.on("error", () => process.exit(0)); // the host is gone
  process.on("unhandledRejection", (err) => log("unhandled rejection:", err));
  send({
    type: "hello",
    protocol_version: PROTOCOL_VERSION,
    name,
    version,
    description,
    help,
    commands: specs,
    subscriptions: [...handlers.keys()].sort(),
  });
  // readline hands over each line as soon as it is complete, never waiting for more input.
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", receive);
  lines.on("close", () => {
    for (const waiting of pending.values()) waiting.reject(new Error("the host closed stdin"));
    pending.clear();
    queue.push(null);
    pump();
  });
}

Object.assign(exports, {
  HamperError,
  command,
  on,
  onMessage,
  onAction,
  onStart,
  run,
  kv,
  request,
  say,
  me,
  notice,
  join,
  part,
  raw,
  botInfo,
  pluginsList,
  log,
});
