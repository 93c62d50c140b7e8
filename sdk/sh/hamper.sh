# hamper.sh: write a hamper plugin in POSIX sh, with jq doing the JSON.
#
# Source it from your plugin, declare handlers, and call hamper_run:
#
#     . "$(dirname "$0")/hamper.sh"
#     hello() { reply "Hello, ${args:-$nick}!"; }
#     hamper_command hello hello "hello [NAME]" "Say hello."
#     hamper_run
#
# It does the plumbing of hamper's plugin protocol (docs/protocol.md): the hello, pings answered
# in order, requests matched to their responses (events that arrive meanwhile wait their turn),
# and a clean exit on goodbye or end of input. Every JSON line is read and written by jq, so
# whatever a user types, the plugin writes valid JSON. Needs a POSIX sh (dash, bash, busybox)
# and jq 1.6 or newer. The reference is docs/sdk.md.
#
# Handlers run one at a time, in order, in this shell (not a subshell), and see the event's
# fields as variables: $type $nick $channel $text $message $args $command $invoked_as $directed
# $private $action $target $user $host $old $new $reason $by $topic $is_bot $server, plus $event
# (the whole line, for jq). Once this file is sourced, the script's stdout goes to stderr
# (hamper's log): the protocol has its own descriptor, 3. A handler that fails is logged, and
# the plugin carries on.

_hamper_nl='
'
_hamper_specs=''     # one JSON command spec per line
_hamper_routes=' '   # " cmd:NAME=HANDLER on:KIND=HANDLER "
_hamper_subs=''      # "message join ..."
_hamper_queue=''     # lines read while waiting for a response, one per line
_hamper_id=0
hamper_config=null   # the plugin's config section (JSON), set by the host's hello

# From here on, protocol lines go to descriptor 3 and the script's own output to stderr, so that
# an `echo` for debugging is a log line instead of a malformed protocol line.
exec 3>&1 1>&2

hamper_log() { printf '%s\n' "$*" >&2; }

# The lowercase of $1 (ASCII letters).
lower() { printf '%s\n' "$1" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz'; }

# hamper_command NAME HANDLER [USAGE [HELP [LONG_HELP]]]: HANDLER runs for the command NAME.
hamper_command() {
    _hamper_routes="$_hamper_routes cmd:$1=$2 "
    _hamper_specs="$_hamper_specs$(jq -cn --arg n "$1" --arg u "${3:-}" --arg h "${4:-}" --arg l "${5:-}" \
        '{name:$n,aliases:[],usage:$u,help:$h,long_help:$l,directed:true,permission:null}')$_hamper_nl"
}

# hamper_on KIND HANDLER: HANDLER runs for every event of that subscription (message, action,
# join, part, quit, kick, nick, topic, invite, connected, disconnected).
hamper_on() {
    _hamper_routes="$_hamper_routes on:$1=$2 "
    _hamper_subs="$_hamper_subs $1"
}

_hamper_send() { printf '%s\n' "$1" >&3; }

# Sends one action built by jq from --arg pairs and a filter (the last argument).
_hamper_emit() { jq -cn "$@" >&3; }

# reply TEXT: answers where the current event came from (its channel, or its sender).
reply() {
    _hamper_emit --arg c "$channel" --arg n "$nick" --arg t "$1" \
        '{type:"reply",channel:(if $c == "" then null else $c end),nick:$n,text:$t}'
}
say() { _hamper_emit --arg g "$1" --arg t "$2" '{type:"say",target:$g,text:$t}'; }
me() { _hamper_emit --arg g "$1" --arg t "$2" '{type:"me",target:$g,text:$t}'; }
notice() { _hamper_emit --arg g "$1" --arg t "$2" '{type:"notice",target:$g,text:$t}'; }
join() { _hamper_emit --arg c "$1" --arg k "${2:-}" '{type:"join",channel:$c,key:(if $k == "" then null else $k end)}'; }
part() { _hamper_emit --arg c "$1" --arg r "${2:-}" '{type:"part",channel:$c,reason:(if $r == "" then null else $r end)}'; }
raw() { _hamper_emit --arg l "$1" '{type:"raw",line:$l}'; }

# hamper_request METHOD [PARAMS_JSON]: sends a request and waits for its answer. On success
# (status 0) $result holds the result as JSON and $value its `value` as text (a string as it
# is, anything else as JSON); on an error (status 1) $error_code and $error_message say why.
hamper_request() {
    _hamper_id=$((_hamper_id + 1))
    _hamper_p=${2:-}
    [ -n "$_hamper_p" ] || _hamper_p='{}'
    printf '{"type":"request","id":%s,"method":"%s","params":%s}\n' "$_hamper_id" "$1" "$_hamper_p" >&3
    while IFS= read -r _hamper_line; do
        _hamper_t=''
        eval "$(printf '%s\n' "$_hamper_line" | jq -r '@sh "_hamper_t=\(.type // "" | tostring) _hamper_i=\(.id // "" | tostring) _hamper_r=\(.result // null | tojson) _hamper_v=\(.result.value? // null | if type == "string" then . else tojson end) _hamper_c=\(.error.code? // "" | tostring) _hamper_m=\(.error.message? // "" | tostring)"' 2>/dev/null)"
        if [ "$_hamper_t" = response ] && [ "$_hamper_i" = "$_hamper_id" ]; then
            result=$_hamper_r value=$_hamper_v error_code=$_hamper_c error_message=$_hamper_m
            [ -z "$error_code" ]
            return
        fi
        # Anything but a response to nothing of ours waits its turn.
        [ "$_hamper_t" = response ] || _hamper_queue="$_hamper_queue$_hamper_line$_hamper_nl"
    done
    exit 0 # the host closed stdin while we waited: it is stopping us
}

# kv_get KEY: status 0 with the value in $value; 1 if there is none (or on an error, with
# $error_code set).
kv_get() {
    error_code=''
    hamper_request kv.get "$(jq -cn --arg k "$1" '{key:$k}')" && return 0
    [ "$error_code" = not_found ] || hamper_log "kv.get $1: $error_code: $error_message"
    return 1
}
# kv_set KEY TEXT: stores TEXT as a string. kv_set_json KEY JSON stores any JSON value.
kv_set() { _hamper_kv kv.set "$(jq -cn --arg k "$1" --arg v "$2" '{key:$k,value:$v}')"; }
kv_set_json() { _hamper_kv kv.set "$(jq -cn --arg k "$1" --argjson v "$2" '{key:$k,value:$v}')"; }
# kv_incr KEY [BY]: adds BY (default 1) to the integer under KEY; the new value in $value.
kv_incr() { _hamper_kv kv.incr "$(jq -cn --arg k "$1" --argjson b "${2:-1}" '{key:$k,by:$b}')"; }
# kv_delete KEY: status 0 if the key was there.
kv_delete() {
    _hamper_kv kv.delete "$(jq -cn --arg k "$1" '{key:$k}')" && [ "$result" = '{"deleted":true}' ]
}
# kv_list PREFIX [ORDER [LIMIT]]: $result holds {"items":[{"key":…,"value":…},…]}.
kv_list() {
    _hamper_kv kv.list "$(jq -cn --arg p "$1" --arg o "${2:-key}" --argjson l "${3:-100}" '{prefix:$p,order:$o,limit:$l}')"
}
_hamper_kv() {
    hamper_request "$1" "$2" && return 0
    hamper_log "$1: $error_code: $error_message"
    return 1
}

# The next line from the host: one waiting in the queue, or one read now. Status 1 at the end.
_hamper_next() {
    if [ -n "$_hamper_queue" ]; then
        _hamper_line=${_hamper_queue%%"$_hamper_nl"*}
        _hamper_queue=${_hamper_queue#*"$_hamper_nl"}
        return 0
    fi
    IFS= read -r _hamper_line
}

# Sets the event's fields as variables (missing ones empty).
_hamper_parse() {
    event=$1
    type=''
    eval "$(printf '%s\n' "$1" | jq -r '@sh "type=\(.type // "") id=\(.id // "" | tostring) nick=\(.nick // "") channel=\(.channel // "") text=\(.text // "") message=\(.message // "") args=\(.args // "") command=\(.command // "") invoked_as=\(.invoked_as // "") directed=\(.directed | tostring) private=\(.private | tostring) action=\(.action | tostring) target=\(.target // "") user=\(.user // "") host=\(.host // "") old=\(.old // "") new=\(.new // "") reason=\(.reason // "") by=\(.by // "") topic=\(.topic // "") is_bot=\(.is_bot | tostring) server=\(.server // "")"' 2>/dev/null)"
}

# Runs the handler routed as $1 (cmd:NAME or on:KIND), if there is one.
_hamper_route() {
    case $_hamper_routes in
    *" $1="*) ;;
    *) return 0 ;;
    esac
    _hamper_h=${_hamper_routes#*" $1="}
    _hamper_h=${_hamper_h%% *}
    "$_hamper_h" || hamper_log "$_hamper_h failed (status $?) handling: $event"
}

# hamper_run [DESCRIPTION [HELP]]: sends the hello and serves events until the host says
# goodbye or closes stdin; then exits.
hamper_run() {
    if [ -t 0 ]; then
        hamper_log "this is a hamper plugin; try it with: hamper plugin $0"
        exit 2
    fi
    command -v jq >/dev/null 2>&1 || { hamper_log "hamper.sh needs jq (apt-get install jq)"; exit 1; }
    printf '%s' "$_hamper_specs" | jq -sc --arg name "${HAMPER_PLUGIN_NAME:-$(basename "$0" .sh)}" \
        --arg d "${1:-}" --arg h "${2:-}" --arg subs "$_hamper_subs" \
        '{type:"hello",protocol_version:1,name:$name,version:"",
          description:(if $d != "" or length == 0 then $d
            else "\(if .[0].usage != "" then .[0].usage else .[0].name end) - \(.[0].help)" end),
          help:$h,commands:.,subscriptions:($subs | split(" ") | map(select(. != "")) | unique)}' >&3
    while _hamper_next; do
        _hamper_parse "$_hamper_line"
        case $type in
        hello)
            hamper_config=$(printf '%s\n' "$event" | jq -c '.config')
            break
            ;;
        goodbye)
            hamper_log "refused by the host: $reason"
            exit 1
            ;;
        esac
    done
    while _hamper_next; do
        _hamper_parse "$_hamper_line"
        case $type in
        ping) case $id in '' | *[!0-9]*) ;; *) printf '{"type":"pong","id":%s}\n' "$id" >&3 ;; esac ;;
        goodbye) exit 0 ;;
        command) _hamper_route "cmd:$command" ;;
        message) if [ "$action" = true ]; then _hamper_route on:action; else _hamper_route on:message; fi ;;
        *) _hamper_route "on:$type" ;;
        esac
    done
    exit 0
}
