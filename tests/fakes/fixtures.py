"""pytest fixtures for the fake Render API (register with ``pytest_plugins``).

- ``manual_clock``: a :class:`ManualClock`; the fakes below run on it. Pass
  ``manual_clock.sleep`` as the code-under-test's injected sleep so that waiting moves time.
- ``render_fake``: a started fake (NullBackend, the manual clock, one team owner
  ``"AuthKit Team"``, accepting :data:`FAKE_RENDER_KEY`), closed at teardown.
- ``make_render_fake(**kwargs)``: the same, with any :class:`FakeRenderAPI` keyword overridden
  (``backend=``, ``rate_limits=``, ``deploy_response=``...); every fake it makes is closed at
  teardown. ``seed_owner=False`` skips the owner; ``owner_name=`` renames it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from tests.fakes.render_api import (
    FAKE_OWNER_NAME,
    FAKE_RENDER_KEY,
    FakeRenderAPI,
    ManualClock,
    NullBackend,
)

__all__ = [
    "FAKE_OWNER_NAME",
    "FAKE_RENDER_KEY",
    "MakeRenderFake",
    "make_render_fake",
    "manual_clock",
    "render_fake",
]


class MakeRenderFake(Protocol):
    def __call__(
        self, *, seed_owner: bool = True, owner_name: str = FAKE_OWNER_NAME, **kwargs: Any
    ) -> FakeRenderAPI: ...


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_render_fake(manual_clock: ManualClock) -> Iterator[MakeRenderFake]:
    made: list[FakeRenderAPI] = []

    def make(
        *, seed_owner: bool = True, owner_name: str = FAKE_OWNER_NAME, **kwargs: Any
    ) -> FakeRenderAPI:
        kwargs.setdefault("api_keys", {FAKE_RENDER_KEY})
        kwargs.setdefault("backend", NullBackend())
        kwargs.setdefault("clock", manual_clock)
        fake = FakeRenderAPI(**kwargs)
        made.append(fake)
        if seed_owner:
            fake.add_owner(owner_name, type="team")
        return fake

    yield make
    for fake in made:
        fake.close()
    errors = [error for fake in made for error in fake.internal_errors]
    assert not errors, "the fake Render API crashed:\n" + "\n".join(errors)


@pytest.fixture
def render_fake(make_render_fake: MakeRenderFake) -> FakeRenderAPI:
    return make_render_fake()
