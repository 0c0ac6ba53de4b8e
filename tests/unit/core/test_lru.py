"""fieldsvc.lru: what the console's county memo and the public certificate pages keep."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fieldsvc.lru import LRU


def test_the_least_recently_used_entry_goes_first():
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the newest
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    lru.put("a", 10)  # replacing keeps one entry
    assert len(lru) == 2 and lru.get("a") == 10
    assert lru.get("missing", "default") == "default"
    lru.clear()
    assert len(lru) == 0


def test_threads_never_push_it_past_its_size():
    lru = LRU(50)

    def work(n: int) -> None:
        for i in range(500):
            lru.put((n, i), i)
            lru.get((n, i - 3))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert len(lru) == 50
