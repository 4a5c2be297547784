"""One cache of loaded networks: built once per key, all freed together."""

from __future__ import annotations

from ewmbench.perception import model_cache


def test_networks_are_built_once_per_key_and_freed_together():
    model_cache.free_models()
    builds = []

    def build(name):
        builds.append(name)
        return object()

    first = model_cache.loaded(("test", "a"), lambda: build("a"))
    assert model_cache.loaded(("test", "a"), lambda: build("again")) is first
    model_cache.loaded(("test", "b"), lambda: build("b"))
    assert builds == ["a", "b"] and set(model_cache.loaded_keys()) == {("test", "a"), ("test", "b")}
    assert model_cache.free_models() == 2 and model_cache.loaded_keys() == []
    assert model_cache.loaded(("test", "a"), lambda: build("a")) is not first  # loaded afresh
