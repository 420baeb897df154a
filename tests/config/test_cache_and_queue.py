"""Clearing the cache must not touch the Celery broker: RedisCache.clear() flushes its whole Redis database."""

import redis
from django.conf import settings
from django.core.cache import cache


def test_clearing_the_cache_leaves_queued_tasks_alone():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    probe = "custody-test:queued-task-probe"
    broker.set(probe, "still here", ex=60)
    try:
        cache.set("custody-test:cached", 1)
        cache.clear()
        assert cache.get("custody-test:cached") is None
        assert broker.get(probe) == b"still here"
    finally:
        broker.delete(probe)
