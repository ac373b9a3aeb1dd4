"""The Lua scripts' unit tests again, on a three-node Redis Cluster: every script gets all its keys
from one project's hash tag, so none raises CROSSSLOT and each runs on the node owning that slot.

The tests are those of test_lua.py, test_lua_reservations.py and test_lua_security.py (star-imported,
so collected again here); only the `redis` fixture differs.
"""

from __future__ import annotations

import pytest

from tests.test_lua import *  # noqa: F403 - its tests, collected again on the cluster
from tests.test_lua_reservations import *  # noqa: F403 - its tests, collected again on the cluster
from tests.test_lua_security import *  # noqa: F403 - its tests, collected again on the cluster

# the star imports bring the `atomic` mark (fakeredis and a real server): here the cluster is the one Redis
pytestmark: list[pytest.MarkDecorator] = []


@pytest.fixture
def redis(redis_cluster):
    from store.redis import make_client

    client = make_client(redis_cluster.url, cluster=True)
    client.flushall()
    yield client
    client.flushall()
    close_cluster_client(client)


def close_cluster_client(client) -> None:
    """Close every node's connections (RedisCluster.close() leaves the node pools open: unclosed
    sockets warn, and warnings fail)."""
    for node in client.get_nodes():
        node.redis_connection.connection_pool.disconnect()
    client.close()


def test_projects_spread_over_the_cluster_nodes(redis):
    from store.keys import Keys

    keys = Keys()
    nodes = {redis.get_node_from_key(keys.events_key(project)).port for project in range(1, 30)}
    assert len(nodes) == 3  # the hash tags really spread projects, so the tests above crossed nodes


def test_publish_many_pipelines_one_project_and_routes_several(redis):
    # a cluster pipeline refuses EVALSHA: one project's rows go in a pipeline on its node, rows of
    # several projects one routed call each; either way each row is delivered once
    from store.keys import Keys
    from store.redis import RedisStore

    rs = RedisStore(redis, Keys("t"))
    one = [(1, 10 + i, "mail", f'{{"n": {i}}}', 7, 100 + i, True) for i in range(3)]
    cursor, done = rs.publish_many(one, cursor_of=(1, 7))
    assert (cursor, done) == ("0-0", [True, True, True])
    assert redis.xlen(rs.keys.mailbox_key(1, 7)) == 3
    mixed = [(project, 50 + project, "mail", "{}", 7, 200 + project, True) for project in range(1, 8)]
    cursor, done = rs.publish_many(mixed + one, cursor_of=(2, 7))
    assert cursor == "0-0" and done == [True] * 7 + [False] * 3  # the first three were delivered already
    assert all(redis.xlen(rs.keys.mailbox_key(p, 7)) == (4 if p == 1 else 1) for p in range(1, 8))
