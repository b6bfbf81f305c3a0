"""Personas: alice (owner), bob (her colleague), charlie (outsider), stella (staff).

Hypothesis runs the same examples on every run, locally and in CI (``derandomize``: the seed
is a hash of each test), so a property test passes or fails with the code, never with the
draw, and a CI failure replays as it is on a laptop; it keeps no example database. To hunt
for new counterexamples, opt in: ``pytest --hypothesis-profile=explore`` (random draws; a
failure prints the blob that replays it with ``@reproduce_failure``).
"""

import pytest
from hypothesis import settings as hypothesis_settings

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create

hypothesis_settings.register_profile(
    "repeatable", derandomize=True, database=None, deadline=None, print_blob=True
)
hypothesis_settings.register_profile(
    "explore", derandomize=False, database=None, deadline=None, print_blob=True
)
hypothesis_settings.load_profile("repeatable")  # --hypothesis-profile=explore overrides it


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Users are created in most tests: a real password hasher costs 0.2 s each (it is meant
    to be slow), so the suite hashes with MD5. Nothing here tests the hasher; the real ones stay
    listed, so a password a subprocess (``manage.py``) hashed still verifies."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


@pytest.fixture
def alice(django_user_model):
    """The owner."""
    return django_user_model.objects.create_user("alice", password="alice-pw-123")


@pytest.fixture
def bob(django_user_model, alice):
    """A colleague: shares a team (group) with alice."""
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="desk")
    bob = django_user_model.objects.create_user("bob", password="bob-pw-123")
    team.user_set.add(alice, bob)
    return bob


@pytest.fixture
def charlie(django_user_model):
    """An outsider."""
    return django_user_model.objects.create_user("charlie", password="charlie-pw-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("stella", password="stella-pw-123", is_staff=True)


@pytest.fixture
def datasets(db, settings):
    """Two small synthetic hourly datasets (BTC, ETH), 60 days."""
    synthetic_universe_create(days=60, timeframes=("1h",))
    return list(Dataset.objects.filter(kind=Dataset.Kind.CANDLES, timeframe="1h").order_by("id"))


@pytest.fixture
def small_chunks(settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_SIZE": 5}
