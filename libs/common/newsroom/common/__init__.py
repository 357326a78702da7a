"""What every newsroom process shares: events, topics, settings, messaging, the store.

Importing it makes every Kafka client of the process ask for topics without creating them
(:mod:`newsroom.common.no_autocreate`): topics are created from the registry in
:mod:`newsroom.common.topics` only, with their declared partitions and settings.
"""

from newsroom.common import no_autocreate

no_autocreate.apply()
