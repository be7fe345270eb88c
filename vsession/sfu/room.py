"""A session's call: who is in it, what each publishes, and who receives what."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCConfiguration, RTCRtpReceiver

from vsession.sfu.forwarding import Forwarder, Source
from vsession.sfu.peer import Downstream, Peer, Send

log = logging.getLogger("vsession.sfu")
MAX_PARTICIPANTS = 8
THERAPIST_PEER = "t"


def guest_peer_id(seat: int) -> str:
    return f"s{seat}"


@dataclass
class Member:
    peer: Peer
    name: str
    role: str
    send: Send
    sources: dict[str, Source] = field(default_factory=dict)
    media: dict[str, bool] = field(default_factory=lambda: {"audio": True, "video": True})

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.peer.id,
            "name": self.name,
            "role": self.role,
            "audio": self.media["audio"],
            "video": self.media["video"],
            "screen": "screen" in self.sources,
        }


class CallFull(Exception):
    pass


class RoomClosed(Exception):
    """The room closed while a join waited for it."""


class CallEnded(Exception):
    """The session's call has ended; it cannot be joined again."""


class RoomListener(Protocol):
    """Told of changes BEFORE they take effect (consent closes the recorder's gate first)."""

    async def member_joining(self, peer_id: str) -> None: ...

    async def member_joined(self, peer_id: str) -> None: ...

    async def member_leaving(self, peer_id: str, reason: str) -> None: ...

    async def session_ended(self, reason: str) -> None: ...


# How a room makes a participant's connection (tests of call logic swap in a light one).
PeerFactory = Callable[..., Peer]
# What listens to a new room (the session's consent machine).
ListenerFactory = Callable[[str, "MediaRoom"], RoomListener]


class MediaRoom:
    def __init__(self, config: RTCConfiguration, forwarder: Forwarder, make_peer: PeerFactory = Peer) -> None:
        self._config = config
        self._forwarder = forwarder
        self._make_peer = make_peer
        self.members: dict[str, Member] = {}
        self.listener: RoomListener | None = None
        self.closed = False  # sticky: a closed room is never joined again (the SFU makes a new one)
        self._lock = asyncio.Lock()

    async def join(self, peer_id: str, name: str, role: str, send: Send) -> Peer:
        """Enter the call. A second join by the same participant (a reload, a reconnect) replaces
        the first. Raises RoomClosed if the room was closed while this waited for it."""
        others: list[Peer] = []
        async with self._lock:
            if self.closed:
                raise RoomClosed
            if peer_id in self.members:
                if self.listener is not None:
                    await self.listener.member_leaving(peer_id, "reconnected")
                others = await self._remove(peer_id)
            if len(self.members) >= MAX_PARTICIPANTS:
                raise CallFull
            try:
                peer = await self._enter(peer_id, name, role, send)
            except BaseException:
                # No ghost: whoever was told of the joining is told of the leaving.
                if self.listener is not None:
                    await asyncio.shield(self.listener.member_leaving(peer_id, "failed to join"))
                if peer_id in self.members:
                    await asyncio.shield(self._remove(peer_id))
                raise
        await asyncio.gather(*(p.negotiate() for p in others), return_exceptions=True)
        await self.announce()
        if self.listener is not None:
            await self.listener.member_joined(peer_id)
        return peer

    async def _enter(self, peer_id: str, name: str, role: str, send: Send) -> Peer:
        if self.listener is not None:
            await self.listener.member_joining(peer_id)
        peer = self._make_peer(peer_id, self._config, send, self._published, self._forwarder.prepare_receiver)
        member = Member(peer, name, role, send)
        self.members[peer_id] = member
        await peer.negotiate()
        # What the others publish comes in a second offer, once the first is answered: media
        # sections in the very first offer were seen to stall with aiortc peers.
        for other in self.members.values():
            for source_name, source in other.sources.items():
                if other is not member:
                    self._forward(source, peer, Downstream(other.peer.id, source_name))
        if peer.downstream:
            await peer.negotiate()
        return peer

    def _forward(self, source: Source, to: Peer, what: Downstream) -> None:
        sender = to.add_downstream(self._forwarder.subscribe(source), what)
        self._forwarder.prepare_sender(sender, source)

    async def leave(self, peer_id: str, reason: str = "left", peer: Peer | None = None) -> None:
        """Leave the call; with `peer`, only if that connection is still the participant's (a
        replaced connection closing late must not take its successor out)."""
        async with self._lock:
            member = self.members.get(peer_id)
            if member is None or (peer is not None and member.peer is not peer):
                return
            if self.listener is not None:
                await self.listener.member_leaving(peer_id, reason)
            others = await self._remove(peer_id)
        await asyncio.gather(*(p.negotiate() for p in others), return_exceptions=True)
        await self.announce()

    async def _remove(self, peer_id: str) -> list[Peer]:
        member = self.members.pop(peer_id)
        for source in member.sources.values():
            await self._forwarder.remove_source(source)
        await member.peer.close()
        return [m.peer for m in self.members.values() if m.peer.drop_downstream(peer_id)]

    async def _published(
        self, peer: Peer, source_name: str, track: MediaStreamTrack, receiver: RTCRtpReceiver
    ) -> None:
        async with self._lock:
            member = self.members.get(peer.id)
            if member is None or member.peer is not peer:
                return
            old = member.sources.pop(source_name, None)
            if old is not None:
                await self._forwarder.remove_source(old)
            source = self._forwarder.add_source(track, receiver)
            member.sources[source_name] = source
            subscribers = [m.peer for m in self.members.values() if m.peer is not peer]
            for other in subscribers:
                other.drop_downstream(peer.id, source_name)
                self._forward(source, other, Downstream(peer.id, source_name))
        await asyncio.gather(*(p.negotiate() for p in subscribers), return_exceptions=True)
        if source_name == "screen":
            await self.announce()

    async def screen(self, peer_id: str, on: bool) -> None:
        """Screen share adds (or removes) an upstream m-line for that participant."""
        async with self._lock:
            member = self.members.get(peer_id)
            if member is None:
                return
            if on and "screen" not in member.peer.upstream:
                member.peer.add_upstream("screen")
                changed = [member.peer]
            elif not on and "screen" in member.peer.upstream:
                member.peer.drop_upstream("screen")
                source = member.sources.pop("screen", None)
                if source is not None:
                    await self._forwarder.remove_source(source)
                changed = [member.peer] + [
                    m.peer for m in self.members.values() if m.peer.drop_downstream(peer_id, "screen")
                ]
            else:
                return
        await asyncio.gather(*(p.negotiate() for p in changed), return_exceptions=True)
        await self.announce()

    async def set_media(self, peer_id: str, audio: bool, video: bool) -> None:
        member = self.members.get(peer_id)
        if member is not None:
            member.media = {"audio": audio, "video": video}
            await self.announce()

    async def broadcast(self, message: dict[str, Any]) -> None:
        await asyncio.gather(*(m.send(message) for m in list(self.members.values())), return_exceptions=True)

    async def announce(self) -> None:
        await self.broadcast({"type": "participants", "list": [m.describe() for m in self.members.values()]})

    async def close(self, reason: str = "session ended") -> None:
        if self.listener is not None:
            await self.listener.session_ended(reason)
        async with self._lock:
            self.closed = True
            for peer_id in list(self.members):
                await self._remove(peer_id)

    async def close_if_empty(self) -> bool:
        """Close the room if nobody is in it, checked under its lock (a rejoin may be waiting)."""
        async with self._lock:
            if self.members or self.closed:
                return False
            self.closed = True
        if self.listener is not None:
            await self.listener.session_ended("everyone left")
        return True


class SFU:
    """The calls currently running, one per therapy session."""

    def __init__(
        self,
        config: RTCConfiguration,
        forwarder: Forwarder,
        make_peer: PeerFactory = Peer,
        make_listener: ListenerFactory | None = None,
    ) -> None:
        self._config = config
        self.forwarder = forwarder
        self._make_peer = make_peer
        self._make_listener = make_listener
        self.rooms: dict[str, MediaRoom] = {}
        self._ended: set[str] = set()  # sessions whose call ended in this process: never reopened

    def room(self, session_id: str) -> MediaRoom:
        room = self.rooms.get(session_id)
        if room is None:
            room = self.rooms[session_id] = MediaRoom(self._config, self.forwarder, self._make_peer)
            if self._make_listener is not None:
                room.listener = self._make_listener(session_id, room)
        return room

    async def join(self, session_id: str, peer_id: str, name: str, role: str, send: Send) -> Peer:
        """Join the session's call; if its room closed while this waited, join the new one."""
        while True:
            if session_id in self._ended:
                raise CallEnded
            try:
                return await self.room(session_id).join(peer_id, name, role, send)
            except RoomClosed:
                continue

    async def leave(
        self, session_id: str, peer_id: str, reason: str = "left", peer: Peer | None = None
    ) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            return
        await room.leave(peer_id, reason, peer)
        if await room.close_if_empty() and self.rooms.get(session_id) is room:
            del self.rooms[session_id]

    async def end(self, session_id: str) -> None:
        self._ended.add(session_id)
        room = self.rooms.pop(session_id, None)
        if room is not None:
            await room.close()

    async def close(self) -> None:
        for session_id in list(self.rooms):
            await self.end(session_id)
