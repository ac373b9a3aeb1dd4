"""Rows of the operations table (cli/operations.py): mail, watch, chat, reservations."""

from __future__ import annotations

from cli.ops_work import DEFAULT_WATCH_WAIT, LIMIT, MAX_WATCH_WAIT, TEXT
from cli.opspec import Arg, Command, Operation, Option, Param, Tool

#: Seconds `chat_ask` waits by default, and the most any chat tool may wait (MCP clients time out).
DEFAULT_ASK_WAIT = 120
MAX_WAIT = 600
#: The chat tools' arguments.
CHAT_TO = Arg("to", str, field=TEXT)
CHAT_MESSAGE = Arg("message", str, field=TEXT)
COUNT_MAIL = Option("limit", ("--limit",), metavar="N", help="At most N messages.", type="count")

ROWS: tuple[Operation, ...] = (
    Operation(
        "send_mail", "POST", "/v1/mail",
        tuple(Param(n) for n in ("to", "body", "subject", "thread", "priority")),
        offline="mail to {to}", cli=("mail send",),
        tools=(Tool("send_mail", "Mail an agent (alias, a,b, @role or @all); asynchronous, nobody waits.", (
            Arg("to", str, field=TEXT), Arg("body", str, field=TEXT, not_empty="message body"),
            Arg("subject", str | None, None),
            Arg("thread", str | None, None, field={"description": "Thread, e.g. a bead id."})),
            "cli.mail:_print_sent", command="mail send"),)),
    Operation(
        "mail", "GET", "/v1/mail", (Param("unread", "query"), Param("sender", "query", api="from"),
                                    Param("limit", "query")), cli=("mail list",),
        tools=(Tool("check_inbox",
                    "Your mail and notices, newest first (unread only by default); read ones stay "
                    "until acked.", (
                        Arg("unread_only", bool, True, param="unread"),
                        Arg("sender", str | None, None, field={"description": "Only from this alias."}),
                        Arg("limit", int, 20, field=LIMIT)),
                    "cli.mail:_print_received", (("unread", "unread_only"),), readonly=True,
                    command="mail list"),)),
    Operation(
        "sent_mail", "GET", "/v1/mail/sent", (Param("limit", "query"),),
        command=Command("mail sent", "List mail you sent, newest first.", (COUNT_MAIL,),
                        "cli.mail:_print_sent_list"),
        cli_only="agents read their inbox over MCP (check_inbox)"),
    Operation(
        "search_mail", "GET", "/v1/mail/search", (Param("text", "query", api="q"), Param("limit", "query")),
        command=Command("mail search", "Search mail you sent or received (subject and body).", (
            Option("text", (), argument=True), COUNT_MAIL), "cli.mail:_print_found"),
        cli_only="agents read their inbox over MCP (check_inbox)"),
    Operation("open_mail", "POST", "/v1/mail/open",
              (Param("message_id", api="id"), Param("sender", api="from")),
              cli=("mail open",), cli_only="over MCP, check_inbox shows mail and ack_mail acknowledges it"),
    Operation(
        "ack", "POST", "/v1/mail/{message_id}/ack", (Param("message_id", "path", kind=int),),
              cli=("mail ack",),
        tools=(Tool("ack_mail", "Acknowledge (mark read) one message by id.", (
            Arg("id", int, param="message_id", field={"ge": 1}),), "cli.mail:_print_acked",
            (("number", "id"),),
            command="mail ack"),)),
    Operation(
        "watch", "GET", "/v1/watch", (Param("seconds", "query", api="timeout"), Param("ready", "query"),
                                      Param("cursor", "query")), cli=("watch",),
        tools=(Tool("watch",
                    "Wait (up to timeout seconds) until mail, chat or a notice arrives, someone waits on "
                    "you, or a bead you follow becomes ready (ready=true: any new ready work); says why it "
                    "woke.", (
                        Arg("timeout", int, DEFAULT_WATCH_WAIT, param="seconds", field={
                            "ge": 1, "le": MAX_WATCH_WAIT,
                            "description": "Seconds to wait; a wait_timeout error when nothing came."}),
                        Arg("ready", bool, False, field={
                            "description": "Also wake when new work becomes ready in your repo for your "
                                           "role."})),
                    "cli.watch:_print_watch", readonly=True, command="watch", run="cli.mcp_bodies:watch"),)),
    Operation(
        "chat", "POST", "/v1/chat", (Param("to"), Param("text", api="body"), Param("wait")),
        cli=("chat ask", "chat reply", "chat send"),
        tools=(Tool("chat_ask",
                    "Ask an agent and block until they reply (up to wait_seconds); use when you are "
                    "blocked.", (CHAT_TO, CHAT_MESSAGE, Arg("wait_seconds", int, DEFAULT_ASK_WAIT, field={
                        "ge": 0, "le": MAX_WAIT,
                        "description": "How long to wait for the reply; 0 sends and returns."})),
                    command="chat ask", run="cli.mcp_bodies:chat_talk"),
               Tool("chat_reply",
                    "Answer an agent who asked you (see chat_pending); wait_seconds > 0 also waits for "
                    "their next message.", (CHAT_TO, CHAT_MESSAGE, Arg("wait_seconds", int, 0, field={
                        "ge": 0, "le": MAX_WAIT})), command="chat reply", run="cli.mcp_bodies:chat_talk"))),
    Operation(
        "chat_wait", "GET", "/v1/chat/wait", (Param("alias", "query", api="with"), Param("after", "query"),
                                              Param("cursor", "query"),
                                              Param("seconds", "query", api="timeout")),
        cli=("chat ask", "chat reply"), mcp=("chat_ask", "chat_reply")),
    Operation("chat_done", "POST", "/v1/chat/done", (Param("alias", api="with"),),
              cli=("chat ask", "chat reply"),
              mcp=("chat_ask", "chat_reply")),
    Operation(
        "chat_pending", "GET", "/v1/chat/pending",
        command=Command("chat pending", "Who is waiting on you, and your conversations with unread messages.",
                        (), "cli.chat:_print_pending"),
        tools=(Tool("chat_pending",
                    "Who is waiting on your reply, and your conversations with unread messages.", (),
                    "cli.chat:_print_pending", readonly=True, command="chat pending"),)),
    Operation("chat_history", "GET", "/v1/chat/history", (Param("alias", "query", api="with"),
                                                          Param("limit", "query")),
              cli=("chat history",),
              cli_only="over MCP, chat_ask and chat_reply answer with the conversation"),
    Operation(
        "lock", "POST", "/v1/locks", (Param("paths"), Param("ttl"), Param("bead"), Param("reason")),
              cli=("lock",),
        tools=(Tool("lock",
                    "Reserve files or globs (relative to the worktree) so others know you are editing them; "
                    "conflicts come back, nothing is refused.", (
                        Arg("paths", list[str], field={"min_length": 1,
                                                       "description": "Paths or globs, e.g. src/api/**"}),
                        Arg("ttl", int | None, None, field={"ge": 1, "le": 24 * 3600,
                                                            "description": "Seconds to hold."}),
                        Arg("reason", str | None, None, field={"description": "What you are doing."}),
                        Arg("bead", str | None, None, field={"description": "The bead this work is for."})),
                    "cli.locks:_print_lock", command="lock", run="cli.mcp_bodies:lock"),)),
    Operation(
        "unlock", "DELETE", "/v1/locks", (Param("paths"), Param("all")), raw_body=True, cli=("unlock",),
        tools=(Tool("unlock", "Release reservations: the given paths, or all of yours when paths is omitted.",
                    (
            Arg("paths", list[str] | None, None),), "cli.locks:_print_unlock", command="unlock",
            run="cli.mcp_bodies:unlock"),)),
    Operation(
        "locks", "GET", "/v1/locks", (Param("mine", "query"),), cli=("locks",),
        tools=(Tool("locks", "Live file reservations in this repo (only yours with mine=true).", (
            Arg("mine", bool, False),), "cli.locks:_print_locks", readonly=True, command="locks"),)),
    Operation("check_locks", "GET", "/v1/locks/check", cli=("locks", "guard check"),
              cli_only="a git hook's question (`wire guard`); over MCP, lock answers with the overlaps"),
    Operation("check_locks_long", "POST", "/v1/locks/check", (Param("paths"),), cli=("locks", "guard check"),
              cli_only="check_locks for a list too long for a URL"),
)
