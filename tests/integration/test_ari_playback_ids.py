"""What Asterisk does with a play request sent twice under one playback id (a retry after an outage).

`ivrpowers.calls.ari_call` relies on this: Asterisk does not refuse the duplicate, it queues a
second playback under the same id (res_stasis_playback's `playback_create` has no duplicate check),
so a blind retry would make the caller hear the prompt twice.

An Asterisk of its own, so that this test may hold the product's app name (the shipped dialplan
sends every channel there) without taking it from a controller under test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from ivrpowers.ari import AriClient, AriNotFound, Channel, PlaybackFinished, PlaybackStarted, StasisStart

from .conftest import AsteriskUnderTest, running_asterisk


@pytest.fixture(scope="module")
def own_asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskUnderTest]:
    with running_asterisk(tmp_path_factory.mktemp("ast-playback-ids"), 30000) as running:
        yield running


async def test_a_second_play_with_the_same_playback_id_is_queued_not_refused(own_asterisk: AsteriskUnderTest) -> None:
    settings = own_asterisk.settings
    client = AriClient(settings.ari_base_url, settings.ari_user, settings.ari_secret, settings.ari_app)
    entered: asyncio.Queue[Channel] = asyncio.Queue()
    started: list[str] = []
    finished: list[str] = []
    both_done = asyncio.Event()

    def on_finished(event: PlaybackFinished) -> None:
        finished.append(event.playback.id)
        if len(finished) == 2:
            both_done.set()

    client.subscribe(StasisStart, lambda e: entered.put_nowait(e.channel))
    client.subscribe(PlaybackStarted, lambda e: started.append(e.playback.id))
    client.subscribe(PlaybackFinished, on_finished)
    client.start()
    try:
        await client.wait_connected(10)
        # A Local pair: ;2 runs the dialplan into our app, ;1 joins it once ;2 answers.
        ours = await client.originate("Local/100@from-trunk", app=settings.ari_app, timeout=10)
        dialplan_half = await asyncio.wait_for(entered.get(), 10)
        await client.answer(dialplan_half.id)
        while (await asyncio.wait_for(entered.get(), 10)).id != ours.id:
            pass

        playback_id = str(uuid.uuid4())
        first = await client.play(ours.id, "sound:beep", playback_id=playback_id)
        # What AriCall asks before re-sending: the playback is known from its request on...
        assert (await client.get_playback(playback_id)).id == playback_id
        second = await client.play(ours.id, "sound:beep", playback_id=playback_id)
        assert first.id == second.id == playback_id  # the second is not refused...

        await asyncio.wait_for(both_done.wait(), 15)
        assert started == [playback_id, playback_id]  # ...and it plays: twice
        assert finished == [playback_id, playback_id]
        with pytest.raises(AriNotFound):  # ...until it has played
            await client.get_playback(playback_id)
        await client.hangup(ours.id)
    finally:
        await client.close()
