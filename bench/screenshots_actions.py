#!/usr/bin/env python3
"""Screenshots of the dashboard's forms (issue 17) for the README: docs/screenshots/*.png.

    python3 -m bench.screenshots_actions

Starts `wire serve` on a temporary data directory (tests/servers.py), registers two agents with the
real `wire` CLI in two temporary clones, gives them some work, logs a headless Chromium in as a human
(`wire dashboard --key`) and saves one picture per form: mail, chat, a reply, a new bead, a bead's
edit / release / close forms, the team page's revoke button and its confirmation, the policy
editor with a preview, and a bead assigned by a person (maria, invited with `wire human add`). Not part
of the test suite (the tests take their own screenshots as artifacts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.servers import start_stack
from tests.test_cli_e2e import Wire, make_repo

ROOT = Path(__file__).resolve().parent.parent


OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


def agents(url: str, root: Path) -> tuple[Wire, Wire, str]:
    wires, key = [], None
    for i, name in enumerate(("alice", "bob")):
        repo = make_repo(root, f"clone{i}", "git@github.com:acme/shop.git")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WIRE_URL": url,
               "WIRE_CONFIG_DIR": str(root / f"cfg{i}"), "HOME": str(root / f"home{i}")}
        env.pop("WIRE_PROJECT_KEY", None)
        wire = Wire(repo, env)
        result = wire.json("init", "--project", "shop", "--alias", name, "--human", name.title(),
                           *(["--key", key] if key else []))
        key = key or result["project_key"]
        wires.append(wire)
    return wires[0], wires[1], str(key)


def shoot(page, name: str, full: bool = True) -> None:
    page.wait_for_timeout(300)  # let a live refresh settle
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = start_stack(root, workers=1, env={"PYTHONPATH": str(ROOT)})
        try:
            alice, bob, key = agents(stack.url, root)
            schema = alice.json("create", "Schema migration", "-p", "P0", "-t", "feature")["id"]
            alice.json("create", "Orders API", "--blocked-by", schema)
            bob("claim", schema)
            bob("mail", "send", "alice", "Schema lands in 20 minutes", "--subject", f"[{schema}] schema")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
                page.goto(alice.json("dashboard", "--key", key)["url"])
                page.click("#continue")
                base = page.url.rsplit("/", 1)[0]
                tour(page, base, bob, schema)
                assign_as_maria(browser, alice, key, base, schema)
                browser.close()
        finally:
            stack.stop()


def tour(page, base: str, bob: Wire, schema: str) -> None:
    page.goto(base + "/mail")
    page.click("#send-mail summary")
    page.fill("#send-mail input[name=to]", "@all")
    page.fill("#send-mail input[name=subject]", "Freeze merges to main until 15:00")
    page.fill("#send-mail textarea[name=body]", "The release is being cut; park finished work on branches.")
    shoot(page, "mail-send")
    page.click("#send-mail button[type=submit]")
    shoot(page, "mail-sent")

    page.goto(base + "/chat")
    page.click("#start-chat summary")
    page.fill("#start-chat input[name=to]", "bob")
    page.fill("#start-chat textarea[name=body]", "How far along is the schema migration?")
    shoot(page, "chat-start")
    page.click("#start-chat button[type=submit]")
    ask = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "chat", "ask", "dashboard",
                            "Nearly done. Can I drop the legacy orders table?", "--wait", "30"],
                           cwd=bob.cwd, env=bob.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page.wait_for_selector("text=Can I drop the legacy orders table?", timeout=15_000)
    page.fill("#reply textarea[name=body]", "Keep it until finance signs off.")
    shoot(page, "chat-reply")
    page.click("#reply button[type=submit]")
    ask.wait(timeout=30)

    page.goto(base + "/work")
    page.click("#new-bead summary")
    page.fill("#new-bead input[name=title]", "Add a read cache for orders")
    page.fill("#new-bead textarea[name=description]", "Orders are read 40x more often than written.")
    page.fill("#new-bead input[name=labels]", "perf, orders")
    shoot(page, "work-new-bead")

    page.goto(base + "/work")
    page.locator("#col-in_progress a.ref", has_text=schema).click()
    page.click("#edit summary")
    page.fill("#release input[name=reason]", "bob is off today; alice takes over")
    shoot(page, "bead-actions")
    page.click("#release button[type=submit]")
    shoot(page, "bead-released")

    page.goto(base + "/team")
    shoot(page, "team-revoke")
    page.locator('tr[data-alias="bob"] button', has_text="Revoke").click()
    shoot(page, "team-revoke-confirm")

    page.goto(base + "/policy")
    page.click("#edit-policy summary")
    text = page.input_value("#edit-policy textarea[name=markdown]")
    page.fill("#edit-policy textarea[name=markdown]",
              text.replace("# Invariants\n\n", "# Invariants\n\n- Never force-push main.\n", 1))
    shoot(page, "policy-edit", full=False)
    page.click("#preview-policy")
    shoot(page, "policy-preview", full=False)
    page.click("#save-policy")  # the preview keeps the draft open in the editor
    page.locator('tr[data-version="1"]').evaluate("e => e.scrollIntoView({block: 'center'})")
    shoot(page, "policy-activate", full=False)


def assign_as_maria(browser, alice: Wire, key: str, base: str, schema: str) -> None:
    """A person's own login (her invite link), assigning the released bead on its page."""
    link = alice("human", "add", "maria", "--role", "lead", "--key", key).stdout.strip()
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.goto(link)
    page.click("#accept")
    page.goto(base + "/work")
    page.locator("a.ref", has_text=schema).first.click()
    page.select_option("#assign select[name=alias]", "alice")
    page.fill("#assign input[name=reason]", "bob is off today; you know the schema")
    page.click("#assign button[type=submit]")
    page.wait_for_selector("#assignment")
    shoot(page, "bead-assign")


if __name__ == "__main__":
    main()
