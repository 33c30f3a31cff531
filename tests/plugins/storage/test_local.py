"""local storage: atomic, idempotent copies under root, and nothing outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from homesec.plugins.registry import load_storage


async def test_put_get_exists_and_put_json(tmp_path: Path, person_clip: Path) -> None:
    # Given a local storage
    storage = load_storage("local", {"root": str(tmp_path / "store")})

    # When a clip is put twice and an artifact is stored next to it
    first = await storage.put(person_clip, "front_door/front_door_1700000000.mp4")
    second = await storage.put(person_clip, "front_door/front_door_1700000000.mp4")
    artifact = await storage.put_json({"risk_level": "low"}, "front_door/a.json")
    copy = tmp_path / "copy.mp4"
    await storage.get(first.storage_uri, copy)

    # Then the put is idempotent, readable back, and the artifact is JSON
    assert first == second
    assert await storage.exists("front_door/front_door_1700000000.mp4")
    assert not await storage.exists("front_door/missing.mp4")
    assert copy.read_bytes() == person_clip.read_bytes()
    assert Path(artifact.storage_uri.removeprefix("file://")).read_text().strip().startswith("{")
    assert await storage.ping()
    assert first.view_url == first.storage_uri


async def test_view_url_uses_the_configured_prefix(tmp_path: Path, person_clip: Path) -> None:
    # Given a storage with a view URL prefix
    storage = load_storage(
        "local", {"root": str(tmp_path), "view_url_prefix": "https://nas.local/clips/"}
    )

    # When a clip is put
    outcome = await storage.put(person_clip, "cam/cam_1700000000.mp4")

    # Then the link is the prefix plus the key
    assert outcome.view_url == "https://nas.local/clips/cam/cam_1700000000.mp4"


@pytest.mark.parametrize("key", ["../escape.mp4", "/etc/passwd", "a/../../b.mp4", ""])
async def test_keys_cannot_escape_the_root(tmp_path: Path, person_clip: Path, key: str) -> None:
    # Given a local storage
    storage = load_storage("local", {"root": str(tmp_path / "store")})

    # When a key tries to leave the root
    # Then it is refused
    with pytest.raises(ValueError, match="relative path inside root"):
        await storage.put(person_clip, key)


async def test_uris_of_other_places_are_refused(tmp_path: Path) -> None:
    # Given a local storage
    storage = load_storage("local", {"root": str(tmp_path / "store")})

    # When asked for a file outside its root
    # Then it refuses
    with pytest.raises(ValueError, match="not a URI of this storage"):
        await storage.get("file:///etc/passwd", tmp_path / "x")


async def test_delete_removes_the_object_and_a_missing_one_is_no_error(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a local storage holding a clip next to another one
    storage = load_storage("local", {"root": str(tmp_path / "store")})
    await storage.put(person_clip, "front_door/front_door_1700000000.mp4")
    await storage.put(person_clip, "front_door/front_door_1700000001.mp4")

    # When the first is deleted, twice
    await storage.delete("front_door/front_door_1700000000.mp4")
    await storage.delete("front_door/front_door_1700000000.mp4")

    # Then only that file is gone
    assert not await storage.exists("front_door/front_door_1700000000.mp4")
    assert await storage.exists("front_door/front_door_1700000001.mp4")
    assert not (tmp_path / "store" / "front_door" / "front_door_1700000000.mp4").exists()
