"""Clip identity: a name is free only when no clip in flight, spool, state or storage has it;
a slow or hung database or storage never hides what the other one knows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_storage
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import DSN_ENV, done_state, state_store_config

NAME = "front_door_1700000000.mp4"


@pytest.mark.slow
async def test_a_name_in_storage_is_not_given_out_while_the_database_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silent_server: int
) -> None:
    # Given a hung database, and storage holding an old clip under a name
    monkeypatch.setenv(DSN_ENV, f"postgresql://postgres@127.0.0.1:{silent_server}/homesec")
    repository = ClipRepository.from_config(state_store_config(tmp_path, write_timeout_s=5.0))
    storage = load_storage("local", {"root": str(tmp_path / "storage")})
    old = tmp_path / "old.mp4"
    old.write_bytes(b"old clip")
    await storage.put(old, f"front_door/{NAME}")
    names = ClipNames(repository, storage, check_timeout_s=0.5)

    # When a new file of that name is claimed
    try:
        path = await names.claim("front_door", 1, ".mp4", tmp_path / "spool", wanted=NAME)
    finally:
        await repository.aclose()

    # Then it gets the next free name: the old clip in storage is never overwritten
    assert path.name == "front_door_1700000000_2.mp4"


async def test_names_known_to_the_state_storage_or_a_claim_are_skipped(tmp_path: Path) -> None:
    # Given the state knowing _1, storage holding _2 and a claim in flight for _3
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    await repository.save(done_state(NAME))
    storage = load_storage("local", {"root": str(tmp_path / "storage")})
    (tmp_path / "x.mp4").write_bytes(b"x")
    await storage.put(tmp_path / "x.mp4", "front_door/front_door_1700000000_2.mp4")
    names = ClipNames(repository, storage)
    spool = tmp_path / "spool"
    first = await names.claim("front_door", 1700000000, ".mp4", spool)

    # When two more clips of that second are claimed at once
    second, third = await asyncio.gather(
        names.claim("front_door", 1700000000, ".mp4", spool),
        names.claim("front_door", 1700000000, ".mp4", spool),
    )
    await repository.aclose()

    # Then each gets a name of its own that nobody had
    assert first.name == "front_door_1700000000_3.mp4"
    assert sorted([second.name, third.name]) == [
        "front_door_1700000000_4.mp4",
        "front_door_1700000000_5.mp4",
    ]
