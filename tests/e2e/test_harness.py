"""The e2e harness proves itself without Asterisk: the private network namespace, fake cameras, chromium,
the media probe (stats, pixels, freeze meter) and the JsSIP bundle.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivrpowers.config import PROJECT_ROOT

from . import probe
from .browser import Browsers, screenshot
from .camera import BLUE, GREEN, MAGENTA, Cameras
from .conftest import MEDIA_ADDRESS

pytestmark = pytest.mark.e2e

PAGES = Path(__file__).with_name("pages")
VENDOR = PROJECT_ROOT / "ivrpowers" / "web" / "static" / "vendor"


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """The harness pages and the vendor bundle over http://127.0.0.1 (a secure context for getUserMedia)."""
    app = web.Application()
    app.router.add_static("/pages", PAGES)
    app.router.add_static("/vendor", VENDOR)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def _links(*nsenter: str, pass_fds: tuple[int, ...] = ()) -> dict[str, tuple[set[str], set[tuple[str, int]]]]:
    """Each interface `ip` sees: its flags and its (address, prefix length) pairs."""
    out = subprocess.run([*nsenter, "ip", "-j", "addr", "show"], capture_output=True, text=True, check=True,
                         pass_fds=pass_fds)
    return {link["ifname"]: (set(link["flags"]), {(a["local"], a["prefixlen"]) for a in link["addr_info"]})
            for link in json.loads(out.stdout)}


def test_the_tests_run_in_a_private_network_namespace(host_netns: int) -> None:
    assert os.readlink("/proc/self/ns/net") != os.readlink(f"/proc/self/fd/{host_netns}")
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    links = _links()
    assert list(links) == ["lo"]
    flags, addresses = links["lo"]
    assert "UP" in flags
    assert {("127.0.0.1", 8), (MEDIA_ADDRESS, 32)} <= addresses
    # The host's side: the media address was never put there.
    host = _links("nsenter", f"--net=/proc/self/fd/{host_netns}", pass_fds=(host_netns,))
    assert host, "nothing seen in the host's namespace"
    assert all(address != MEDIA_ADDRESS for _, pairs in host.values() for address, _ in pairs), host


async def test_camera_through_a_peer_connection(browsers: Browsers, cameras: Cameras, site: str) -> None:
    (caller,) = await browsers.open_many({"caller": cameras.get("caller", GREEN)})
    page = caller.page
    await page.goto(f"{site}/pages/loopback.html")
    assert await page.evaluate("window.loopback") == "audio,video"
    local = await probe.wait_colour(page, "#local", GREEN)
    remote = await probe.wait_colour(page, "#remote", GREEN)
    assert (local.width, local.height) == (remote.width, remote.height) == (320, 240)

    first = await probe.wait_frames_decoded(page, 1)
    assert first["decoderImplementation"] and first["mimeType"].startswith("video/"), first
    assert first["keyFramesDecoded"] >= 1
    await probe.start_freeze_meter(page, "#remote")
    report = await probe.watch_for(page, "#remote", 1500)
    assert report.changes >= 10, report  # the camera runs at 15 fps
    assert report.longest_gap_ms < 1000, report
    (later,) = await probe.inbound_video(page)
    assert later["framesDecoded"] >= first["framesDecoded"] + 10, (first, later)
    assert (await probe.connections(page))[0]["connectionState"] == "connected"
    shot = await screenshot(page, "harness-loopback")
    assert shot.stat().st_size > 0


async def test_freeze_meter_sees_a_stopped_picture(browsers: Browsers, cameras: Cameras, site: str) -> None:
    """Without new pictures the meter's gap grows: a real freeze fails the `< 1 s` checks."""
    (caller,) = await browsers.open_many({"caller": cameras.get("caller", BLUE)})
    page = caller.page
    await page.goto(f"{site}/pages/loopback.html")
    await page.evaluate("window.loopback")
    await probe.wait_colour(page, "#remote", BLUE)
    await probe.start_freeze_meter(page, "#remote")
    moving = await probe.wait_until(lambda: probe.freeze_report(page, "#remote"), lambda r: r.changes >= 3,
                                    timeout=5, what="new pictures on #remote")
    assert moving.longest_gap_ms < 1000, moving
    await page.evaluate("window.senders.find((s) => s.track.kind === 'video').replaceTrack(null)")
    frozen = await probe.wait_until(lambda: probe.freeze_report(page, "#remote"),
                                    lambda r: r.current_gap_ms is not None and r.current_gap_ms >= 1200,
                                    timeout=5, what="the meter seeing #remote frozen")
    assert frozen.longest_gap_ms >= 1200


async def test_each_browser_has_its_own_camera(browsers: Browsers, cameras: Cameras, site: str) -> None:
    colours = {"caller": GREEN, "agent": MAGENTA}
    opened = await browsers.open_many({name: cameras.get(name, rgb) for name, rgb in colours.items()})
    for b in opened:
        await b.page.goto(f"{site}/pages/loopback.html")
    for b in opened:
        seen = await probe.wait_colour(b.page, "#local", colours[b.name])
        others = [rgb for name, rgb in colours.items() if name != b.name]
        assert all(seen.distance(rgb) > 100 for rgb in others), (b.name, str(seen))


async def test_console_and_page_errors_are_collected(browsers: Browsers, cameras: Cameras, site: str) -> None:
    (b,) = await browsers.open_many({"caller": cameras.get("caller", GREEN)})
    await b.page.goto(f"{site}/pages/jssip.html")
    await b.page.evaluate("console.warn('probe-warning'); setTimeout(() => { throw new Error('probe-error'); })")
    await probe.wait_until(lambda: _list(browsers.log), lambda log: len(log) >= 2, timeout=5, what="two log lines")
    assert "[caller] console.warning: probe-warning" in browsers.log
    assert any(line.startswith("[caller] page error:") and "probe-error" in line for line in browsers.log)


async def _list(log: list[str]) -> list[str]:
    return list(log)


async def test_the_jssip_bundle_loads(browsers: Browsers, cameras: Cameras, site: str) -> None:
    bundle = VENDOR / "jssip.js"
    assert bundle.is_file(), f"{bundle} is missing: scripts/build-web-assets builds it"
    lock = json.loads((PROJECT_ROOT / "web" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/jssip"]["version"]
    (b,) = await browsers.open_many({"caller": cameras.get("caller", GREEN)})
    await b.page.goto(f"{site}/pages/jssip.html")
    found = await b.page.evaluate("({ua: typeof JsSIP.UA, session: typeof JsSIP.RTCSession, version: JsSIP.version})")
    assert found == {"ua": "function", "session": "function", "version": pinned}
    assert browsers.log == []
