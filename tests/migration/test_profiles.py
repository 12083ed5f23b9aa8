"""Profiles are checked before anything is stored: a bad one, however deep, is refused, never a crash."""

from functools import reduce
from typing import Any

import pytest

from idp.migration.profiles import MAX_DEPTH, ProfileInvalid, parse


def nested(depth: int, leaf: Any = "x") -> Any:
    """Return `leaf` inside `depth` alternating dicts and lists."""
    return reduce(lambda inner, level: {"k": inner} if level % 2 else [inner], range(depth), leaf)


def profile(**fields: Any) -> dict[str, Any]:
    """Return a valid profile with some fields changed."""
    return {"user_id": 7, "email": "max@example.com", **fields}


def test_metadata_as_deep_as_allowed_is_kept():
    # The profile itself is one level, its metadata a second: MAX_DEPTH - 2 more fit inside.
    deepest = nested(MAX_DEPTH - 2)
    assert parse(profile(user_metadata={"tree": deepest})).user_metadata == {"tree": deepest}


@pytest.mark.parametrize("name", ["user_metadata", "app_metadata"])
@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, 500, 100_000])
def test_deeper_metadata_is_refused(name: str, depth: int):
    with pytest.raises(ProfileInvalid, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse(profile(**{name: {"tree": nested(depth)}}))


def test_a_nul_anywhere_is_refused():
    for where in (profile(name="a\x00b"), profile(user_metadata={"a\x00": 1}),
                  profile(app_metadata={"list": [nested(20, "deep\x00")]})):
        with pytest.raises(ProfileInvalid, match="NUL"):
            parse(where)
