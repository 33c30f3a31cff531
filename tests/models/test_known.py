"""Known entities in the config: each needs its picture and a name of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.fakes.builders import config_dict, make_config


def test_known_entities_need_their_picture_and_a_name_of_their_own(tmp_path: Path) -> None:
    # Given a picture, and known entities with a missing picture or a name used twice
    picture = tmp_path / "alice.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xd9")
    vlm = config_dict(tmp_path)["vlm"]
    missing = {**vlm, "known": [{"name": "Bob", "image": str(tmp_path / "nowhere.jpg")}]}
    twice = {**vlm, "known": [{"name": "Alice", "image": str(picture)}] * 2}

    # When each config is validated
    # Then it is refused, saying what is wrong
    with pytest.raises(ValidationError, match="does not point to a file"):
        make_config(tmp_path, vlm=missing)
    with pytest.raises(ValidationError, match="a name of its own"):
        make_config(tmp_path, vlm=twice)
