"""The soak test's simulated agents (bench/soak.py): each one a thread doing the agent loop, and the
coordinator that keeps the ready list full; `Books` keeps what the server acknowledged to them."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bench.soak_client import Answer, Client

if TYPE_CHECKING:
    from bench.soak import Soak

#: Seconds an agent's chat ask waits for its partner's reply (in /chat/wait slices of 10 s).
CHAT_WAIT_S = 20
#: The coordinator keeps at least this many beads ready.
READY_FLOOR = 60


class Books:
    """What the server acknowledged to the agents, to check against its own records at the end."""

    def __init__(self) -> None:
        self.claims: list[tuple[str, str]] = []  # (bead id, alias), claims answered 200 (not already held)
        self.closes: list[tuple[str, str]] = []  # (bead id, alias), closes answered 200
        self.mail_sent: dict[int, str] = {}  # message id -> recipient alias
        self.mail_opened: list[tuple[str, int]] = []  # (alias, message id) handed out by /mail/open
        self.banner_mail: list[tuple[str, int]] = []  # (alias, message id) shown as new in a banner
        self.chat: Counter[str] = Counter()  # asks, replies received, waits timed out, replies sent
        self.beads_created = 0


class Agent(threading.Thread):
    def __init__(self, n: int, alias: str, token: str, run: Soak) -> None:
        super().__init__(name=alias, daemon=True)
        self.n, self.alias, self.run_ = n, alias, run
        self.api = Client(run.url, token, run.stats, timeout=CHAT_WAIT_S + 30)
        self.rng = random.Random(n)
        self.unread = 0
        self.replied: dict[str, float] = {}

    @property
    def partner(self) -> str:
        return self.run_.aliases[self.n ^ 1] if (self.n ^ 1) < len(self.run_.aliases) else ""

    def think(self) -> None:
        self.run_.stop.wait(self.run_.think * self.rng.uniform(0.5, 1.5))

    def call(self, op: str, method: str, path: str, body: dict | None = None, **query: Any) -> Answer | None:
        answer = self.api.call(op, method, path, body, **query)
        if answer is not None and answer.status < 300:
            self.look_at(answer.banner)
        return answer

    def look_at(self, banner: dict | None) -> None:
        """Note mail shown as new, the unread count, and answer a partner who waits on us."""
        if not banner:
            self.unread = 0
            return
        self.unread = banner.get("unread", 0)
        for item in banner.get("new", []):
            if item.get("kind") == "mail":
                self.run_.books.banner_mail.append((self.alias, item["id"]))
        for waiting in banner.get("waiting", []):
            who = waiting["alias"]
            if time.monotonic() - self.replied.get(who, 0) > 3:
                self.replied[who] = time.monotonic()
                reply = {"to": who, "body": f"{self.alias} here, go ahead"}
                self.api.call("chat_reply", "POST", "/chat", reply)
                self.run_.books.chat["replies_sent"] += 1

    def run(self) -> None:
        stop = self.run_.stop
        while not stop.is_set():
            self.iteration()
        self.api.close()

    def iteration(self) -> None:
        books = self.run_.books
        mine = self.call("mine", "GET", "/mine")
        for bead in (mine.json if mine and mine.status == 200 else []):  # left over: finish it first
            self.close(bead["id"])
        self.think()
        ready = self.call("ready", "GET", "/ready", limit=20)
        beads = ready.json if ready is not None and ready.status == 200 else []
        if not beads or self.rng.random() < 0.1:  # agents file work too
            created = self.call("create", "POST", "/beads", {"title": f"{self.alias}: found while working",
                                                             "priority": self.rng.randint(0, 4)})
            if created is not None and created.status == 201:
                books.beads_created += 1
                beads = [created.json, *beads]
            self.think()
        if not beads:
            return
        bead = self.rng.choice(beads[:20])["id"]
        claim = self.call("claim", "POST", f"/beads/{quote(bead, safe='')}/claim", {})
        self.think()
        if claim is None or claim.status != 200:
            self.read_mail()
            return
        if not claim.json.get("already_held"):
            books.claims.append((bead, self.alias))
        self.work_on(bead)
        self.close(bead)
        self.read_mail()

    def work_on(self, bead: str) -> None:
        ref = quote(bead, safe="")
        paths = [f"src/{bead}/main.py", f"tests/test_{bead}.py"]
        self.call("lock", "POST", "/locks", {"paths": paths, "bead": bead, "reason": "working", "ttl": 120})
        self.think()
        self.call("comment", "POST", f"/beads/{ref}/comments", {"text": f"{self.alias}: on it"})
        self.think()
        to = self.rng.choice([a for a in self.run_.aliases if a != self.alias])
        mail = self.call("mail", "POST", "/mail", {"to": to, "subject": f"{bead} progress",
                                                  "body": f"{self.alias} is closing {bead}"})
        if mail is not None and mail.status == 201:
            self.run_.books.mail_sent[mail.json["message"]["id"]] = to
        self.think()
        if self.n % 2 == 0 and self.partner and self.rng.random() < self.run_.chat_prob:
            self.ask_partner(bead)
        self.call("unlock", "DELETE", "/locks", {"paths": paths})
        self.think()

    def ask_partner(self, bead: str) -> None:
        books = self.run_.books
        asked = self.call("chat_ask", "POST", "/chat", {"to": self.partner, "body": f"ok to close {bead}?",
                                                        "wait": CHAT_WAIT_S})
        if asked is None or asked.status != 201:
            return
        books.chat["asks"] += 1
        query = {"with": self.partner, "after": asked.json["message"]["id"], "cursor": asked.json["cursor"]}
        deadline = time.monotonic() + CHAT_WAIT_S
        while time.monotonic() < deadline and not self.run_.stop.is_set():
            slice_s = max(1, min(10, int(deadline - time.monotonic())))
            waited = self.call("chat_wait", "GET", "/chat/wait", **query, timeout=slice_s)
            if waited is None or waited.status != 200:
                break
            if waited.json["messages"]:
                books.chat["replies"] += 1
                return
            query["cursor"] = waited.json["cursor"]
        books.chat["timeouts"] += 1
        self.call("chat_done", "POST", "/chat/done", {"with": self.partner})

    def close(self, bead: str) -> None:
        closed = self.call("close", "POST", f"/beads/{quote(bead, safe='')}/close", {"reason": "done"})
        if closed is not None and closed.status == 200:
            self.run_.books.closes.append((bead, self.alias))
        self.think()

    def read_mail(self) -> None:
        if self.unread:
            self.open_mail()
            self.think()

    def open_mail(self) -> int:
        opened = self.call("mail_open", "POST", "/mail/open", {})
        if opened is None or opened.status != 200:
            return 0
        mails = [m["id"] for m in opened.json if m["kind"] == "mail"]
        self.run_.books.mail_opened.extend((self.alias, i) for i in mails)
        return len(mails)


class Coordinator(threading.Thread):
    """Seeds beads and keeps the ready list from running dry."""

    def __init__(self, run: Soak, token: str) -> None:
        super().__init__(name="coordinator", daemon=True)
        self.run_ = run
        self.api = Client(run.url, token, run.stats)
        self.made = 0

    def seed(self, count: int) -> None:
        for _ in range(count):
            self.make()

    def make(self) -> None:
        self.made += 1
        bead = {"title": f"task {self.made}", "priority": self.made % 5,
                "description": "seeded by the coordinator"}
        created = self.api.call("seed", "POST", "/beads", bead)
        if created is not None and created.status == 201:
            self.run_.books.beads_created += 1

    def run(self) -> None:
        while not self.run_.stop.wait(2.0):
            ready = self.api.call("ready", "GET", "/ready", limit=READY_FLOOR)
            short = READY_FLOOR - len(ready.json) if ready is not None and ready.status == 200 else 0
            for _ in range(max(0, short)):
                self.make()
        self.api.close()
