"""Repo identity: every spelling of one origin is one repo."""

import pytest

from store.errors import InvalidInput
from store.repos import normalise_origin, repo_name


@pytest.mark.parametrize("origin", [
    "git@github.com:acme/shop.git",
    "https://github.com/acme/shop",
    "https://github.com/acme/shop.git",
    "ssh://git@github.com/acme/shop.git",
    "ssh://git@github.com:22/acme/shop.git",
    "https://token@GitHub.com/acme/shop/",
])
def test_clones_of_one_remote_are_one_repo(origin):
    assert normalise_origin(origin) == "github.com/acme/shop"


def test_different_repos_stay_different():
    assert normalise_origin("git@github.com:acme/shop.git") != (
        normalise_origin("git@github.com:acme/shop-api.git"))
    assert normalise_origin("git@gitlab.com:acme/shop.git") == "gitlab.com/acme/shop"


def test_local_paths_are_accepted_as_origins():
    assert normalise_origin("/srv/git/shop.git") == "local/srv/git/shop"


@pytest.mark.parametrize("origin", ["", "   ", "https://github.com/"])
def test_empty_origins_are_refused(origin):
    with pytest.raises(InvalidInput):
        normalise_origin(origin)


def test_repo_name_is_the_last_path_segment():
    assert repo_name("github.com/acme/shop") == "shop"
