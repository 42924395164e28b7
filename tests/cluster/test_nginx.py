"""docs/deploy.md's nginx configuration, run: Debian's nginx in front of real instances on one
Redis. Players connect and play through it, an instance is SIGKILLed, they play on through it."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.nginx_config import Site, nginx_command, render_site, write_standalone
from tests.cluster.conftest import NGINX, Balancer, Instances, Nginx
from tests.sockets.support import Client, by_id, dealt, of_round, round_state, submit_all
from tests.support.app_server import AppServer

TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[2]
slow = pytest.mark.slow  # real instances and nginx


def test_the_documented_configuration_is_the_rendered_one() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", doc, re.S)
    assert block is not None
    assert block.group(1) == render_site(Site("80", ["10.0.0.5:8000", "10.0.0.6:8000"]))


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    site = Site("127.0.0.1:1", ["127.0.0.1:2", "127.0.0.1:3"])
    conf = write_standalone(site, tmp_path)
    check = subprocess.run([*nginx_command(NGINX, conf)[:-2], "-t"], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    (tmp_path / "punchline.conf").write_text(render_site(site) + "oops\n")
    assert subprocess.run([*nginx_command(NGINX, conf)[:-2], "-t"], capture_output=True,
                          timeout=30).returncode != 0  # the check can fail


@pytest.mark.parametrize("bad", [
    {"listen": "nginx", "upstreams": ["h:1"]},
    {"listen": "80", "upstreams": []},
    {"listen": "80", "upstreams": ["h:1; evil"]},
    {"listen": "80", "upstreams": ["h:1", "h:1"]},
])
def test_a_bad_site_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Site(**bad)


async def connect(client: Client, transport: str, token: str | None = None,
                  headers: dict[str, str] | None = None) -> Client:
    """``Client.connect`` with a chosen transport and headers; "polling" never upgrades."""
    await client.sio.connect(client.url, transports=[transport], wait_timeout=5,
                             auth={"token": token} if token is not None else None,
                             headers=headers or {})
    return client


async def seat(clients: list[Client]) -> dict[str, Any]:
    """All in one room (the first creates it), game started: round 1's room state."""
    await clients[0].create()
    for c in clients[1:]:
        await c.join(clients[0].room_code)
    await clients[0].wait_for("room_state", lambda s: len(s["players"]) == len(clients),
                              timeout=TIMEOUT)
    await clients[0].call("start_game")
    return await round_state(clients[0], 1)


async def finish_round(players: list[Client], state: dict[str, Any]) -> dict[str, Any]:
    """Everyone submits, the czar picks the first submission: the round_won everyone saw."""
    await submit_all(players, state)
    czar = by_id(players, state["czar_id"])
    subs = await czar.wait_for("submissions", of_round(state["round"]), timeout=TIMEOUT)
    ack = await czar.call("pick_winner", {"submission_id": subs["submissions"][0]["submission_id"]})
    assert ack == {"ok": True}, ack
    won = [await p.wait_for("round_won", of_round(state["round"]), timeout=TIMEOUT)
           for p in players]
    assert all(w == won[0] for w in won)
    return won[0]


def websockets(server: AppServer) -> int:
    """WebSockets the instance accepted (uvicorn's log)."""
    return server.log.count('"WebSocket /socket.io/?') - server.log.count("[rejected]")


def serving(balancer: Nginx) -> str:
    """The one instance that served every Socket.IO request so far (host:port)."""
    used = {tried.split(", ")[-1] for tried in balancer.upstreams("/socket.io/")}
    assert len(used) == 1, f"Socket.IO requests of one address went to {used}"
    return used.pop()


@slow
async def test_players_play_on_through_nginx_after_their_instance_is_killed(
        instances: Instances, nginx: Balancer) -> None:
    servers = instances(2)
    balancer = nginx(servers)
    ada, bo, cy = (Client(balancer.base_url, name) for name in ("Ada", "Bo", "Cy"))
    # As a browser would: an Origin of nginx's own address passes the same-origin check, which
    # needs the Host header (with its port) passed through.
    await connect(ada, "websocket", headers={"Origin": balancer.base_url})
    await connect(bo, "websocket")
    await connect(cy, "websocket")
    players = [ada, bo, cy]
    try:
        state = await seat(players)
        await finish_round(players, state)
        state = await round_state(ada, 2)
        # Every client comes from 127.0.0.1: the address hash puts them all on one instance.
        # (nginx logs a WebSocket when it closes: the instances' logs show where they are.)
        victim, survivor = sorted(servers, key=lambda s: -websockets(s))
        assert (websockets(victim), websockets(survivor)) == (3, 0)
        victim.process.kill()  # SIGKILL: no goodbye to anyone
        victim.process.wait()
        for p in players:  # nginx closes the proxied WebSockets of the dead instance
            while p.sio.connected:
                await asyncio.sleep(0.05)
        back = [await connect(Client(balancer.base_url, p.name), "websocket", p.token)
                for p in players]
        for old, new in zip(players, back, strict=True):
            new.player_id, new.token, new.room_code = old.player_id, old.token, old.room_code
        players = back
        resumed = await players[0].wait_for("room_state", of_round(2), timeout=TIMEOUT)
        assert resumed["czar_id"] == state["czar_id"]
        assert sum(resumed["scores"].values()) == 1  # round 1's point survived the kill
        for p in players:
            hand = await p.wait_for("hand", of_round(2), timeout=TIMEOUT)
            assert len(hand["cards"]) == dealt(state, p.player_id)
        won = await finish_round(players, state)
        assert sum(won["scores"].values()) == 2
        # The hash still chose the dead instance for 127.0.0.1: nginx saw it refuse, and passed
        # the reconnections to the survivor.
        assert websockets(survivor) == 3
        victim_address = victim.base_url.removeprefix("http://")
        assert "connect() failed (111: Connection refused) while connecting to upstream" in (
            balancer.prefix / "error.log").read_text()
        assert victim_address in (balancer.prefix / "error.log").read_text()
    finally:
        for p in players:
            await p.close()


@slow
# python-engineio's polling client drops a non-2xx poll unread (the server's answer to the poll
# pending at close): aiohttp then warns about that connection when it is collected.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <function Connection.__del__"
                            ":pytest.PytestUnraisableExceptionWarning")
async def test_the_polling_transport_sticks_to_one_instance(
        instances: Instances, nginx: Balancer) -> None:
    servers = instances(2)
    balancer = nginx(servers)
    players = [await connect(Client(balancer.base_url, name), "polling")
               for name in ("Ada", "Bo", "Cy")]
    try:
        assert all(p.sio.transport() == "polling" for p in players)
        won = await finish_round(players, await seat(players))
        assert sum(won["scores"].values()) == 1
        assert len(balancer.upstreams("transport=polling")) > 20  # many requests, one instance
        serving(balancer)
    finally:
        for p in players:
            await p.close()
        del players
        gc.collect()  # here, under this test's filter, rather than in a later test


def polling_statuses(base_url: str) -> list[int]:
    """An Engine.IO polling handshake, then the Socket.IO connect packet ("40") posted on that
    session and a poll for its answer: 200s from the instance that made it, 400 from another."""
    with httpx.Client(base_url=base_url, timeout=5) as http:
        handshake = http.get("/socket.io/?EIO=4&transport=polling")
        sid = json.loads(handshake.text[1:])["sid"]  # "0{...}": an Engine.IO open packet
        session = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        posted = http.post(session, content=b"40").status_code
        if posted != 200:  # refused: a poll would wait on the other instance for nothing
            return [posted]
        return [posted, http.get(session).status_code]


@slow
async def test_without_the_hash_polling_sessions_break(
        instances: Instances, nginx: Balancer) -> None:
    """The control of the test above: the same configuration less its ``hash`` line (round
    robin) sends a session's requests to both instances, and one of them refuses it."""
    servers = instances(2)
    assert polling_statuses(nginx(servers).base_url) == [200, 200]
    assert 400 in polling_statuses(nginx(servers, sticky=False).base_url)


@slow
async def test_limits_and_forwarded_address(instances: Instances, nginx: Balancer) -> None:
    (server,) = instances(1)
    balancer = nginx([server])
    with httpx.Client(base_url=balancer.base_url, timeout=5) as http:
        # Request heads: nginx refuses what the app would (HTTP_MAX_HEADER_BYTES, 64 KiB).
        assert http.get("/health", headers={"X-Pad": "a" * 16_000}).status_code == 200
        big = http.get("/health", headers={"X-Pad": "a" * 70_000})
        assert big.status_code == 400 and "nginx" in big.text
        # Bodies: small on REST, Engine.IO's 1 MB on /socket.io/.
        assert http.post("/api/admin/login", content=b"x" * 100_000).status_code == 413
        polled = http.post("/socket.io/?EIO=4&transport=polling&sid=none", content=b"x" * 500_000)
        assert polled.status_code == 400 and "nginx" not in polled.text  # the app's answer
        assert http.post("/socket.io/?EIO=4&transport=polling",
                         content=b"x" * 1_100_000).status_code == 413
        # A client's own X-Forwarded-For is replaced: the app sees the real peer.
        http.get("/health?probe=forwarded", headers={"X-Forwarded-For": "203.0.113.9"})
    log = server.log
    line = next(ln for ln in log.splitlines() if "probe=forwarded" in ln)
    assert "203.0.113.9" not in line and "127.0.0.1:0 " in line, line  # port 0: from the header
