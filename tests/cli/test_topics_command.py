"""``newsroom topics --create``: creates what is missing with the cluster's layout and says what differs."""

from __future__ import annotations

from newsroom.common.admin import admin_client
from newsroom.common.topics import SNAPSHOTS
from tests.conftest import RunningStack
from tests.fakes import newsroom


async def test_create_reports_the_layout_and_a_topic_that_differs(infra: RunningStack) -> None:
    """On the embedded broker the layout is one replica; a topic wanting more partitions is named, exit 1."""
    done = newsroom(infra, "topics", "--create")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "layout: replication factor 1, min.insync.replicas broker default" in done.stdout
    assert "differs" not in done.stdout
    wanted = {**infra.env, "NEWSROOM_TOPIC_PARTITIONS": f"{SNAPSHOTS.name}={SNAPSHOTS.partitions + 2}"}
    infra_wanting_more = RunningStack(infra.settings, wanted, infra.stack)
    done = newsroom(infra_wanting_more, "topics", "--create")
    assert done.returncode == 1
    expected = (
        f"differs: {SNAPSHOTS.name}: {SNAPSHOTS.partitions} partitions, declared {SNAPSHOTS.partitions + 2}"
    )
    assert expected in done.stdout
    async with admin_client(infra.settings) as admin:  # left as it was: more partitions would move keys
        (described,) = await admin.describe_topics([SNAPSHOTS.name])
    assert len(described["partitions"]) == SNAPSHOTS.partitions
