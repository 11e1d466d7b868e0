"""kombu's Redis transport, with one redis-py client per channel instead of one per command.

kombu's Redis channel builds a new `redis.Redis` for each publish and each ack
(`Channel.conn_or_acquire`), and building one fills a ~170-entry table of response
callbacks: ~65 us of CPU every time, a sixth of a task publish. A client holds no
connection of its own (each command borrows one from the channel's pool, which is
thread-safe), so one client per pool serves as well. Settings select this transport for
`redis://` broker URLs (CELERY_BROKER_TRANSPORT); other schemes keep kombu's own.
"""

from contextlib import contextmanager

from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        # A reconnect replaces the pool (_disconnect_pools); the client follows it.
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(redis.Transport):
    Channel = Channel
