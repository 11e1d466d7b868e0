"""Keep a Celery worker consuming after an acknowledgement that Redis never received.

kombu's Redis transport frees a message's prefetch slot only once Redis has confirmed the
ack (or reject). When Redis is unreachable at that moment the ack fails ("Couldn't ack ...",
logged and swallowed by kombu) and the slot stays taken for good: with prefetch 1 the worker
never fetches again and sits idle until restarted, though Redis is back (seen on the cluster
test: thumbnailer/tests/test_cluster.py). Freeing the slot anyway loses nothing: the message
stays in Redis's unacked set and comes back after the visibility timeout, and make_thumbnails
answers a finished job with nothing to do. Upstream: https://github.com/celery/celery/issues/2415
"""

import functools

from kombu.transport import redis as redis_transport
from kombu.transport import virtual


def free_prefetch_slot_on_failure(settle):
    """Wrap QoS.ack/reject: if telling Redis fails, still release the slot, then raise as before."""

    @functools.wraps(settle)
    def settle_or_release(qos, delivery_tag, *args, **kwargs):
        try:
            return settle(qos, delivery_tag, *args, **kwargs)
        except Exception:
            virtual.QoS.ack(qos, delivery_tag)  # only the in-memory bookkeeping: the slot is free again
            raise

    settle_or_release.releases_slot_on_failure = True
    return settle_or_release


def install() -> None:
    """Patch kombu's Redis QoS once per process (the worker calls this when it starts)."""
    qos = redis_transport.QoS
    if getattr(qos.ack, "releases_slot_on_failure", False):
        return
    qos.ack = free_prefetch_slot_on_failure(qos.ack)
    qos.reject = free_prefetch_slot_on_failure(qos.reject)
