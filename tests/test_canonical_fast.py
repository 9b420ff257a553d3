"""The YAML-free reader of canonical manifests (canonical.load_canonical) never disagrees with the strict loader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import canonical, manifest
from modelreg.errors import ModelregError

scalars = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
keys = st.text(min_size=1, max_size=8)
trees = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
                     max_leaves=12)
manifests = st.builds(
    lambda params, meta, tags, desc: {"name": "m", "version": "1.0", "description": desc, "params": params,
                                      "meta": meta, "tags": tags},
    st.dictionaries(keys, trees, max_size=4), st.dictionaries(keys, trees, max_size=3),
    st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True), max_size=3, unique=True),
    st.text(max_size=20) | st.none(),
)


def slow(data: bytes) -> object:
    real = canonical.load_canonical
    canonical.load_canonical = lambda data: None
    try:
        return manifest.from_object(data, "manifest")
    except ModelregError as exc:
        return ("error", type(exc).__name__, exc.message)
    finally:
        canonical.load_canonical = real


def fast(data: bytes) -> object:
    try:
        return manifest.from_object(data, "manifest")
    except ModelregError as exc:
        return ("error", type(exc).__name__, exc.message)


@settings(max_examples=300, deadline=None)
@given(manifests)
def test_canonical_bytes_read_back_as_the_strict_loader_reads_them(raw):
    try:
        m = manifest.validate(raw)
    except ModelregError:
        return
    data = manifest.to_bytes(m)
    assert canonical.load_canonical(data) == canonical.load(data)
    assert manifest.from_object(data, "manifest") == m


@settings(max_examples=400, deadline=None)
@given(manifests, st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_damaged_bytes_get_the_same_verdict(raw, pos, junk):
    try:
        data = manifest.to_bytes(manifest.validate(raw))
    except ModelregError:
        return
    i = pos % len(data)
    damaged = data[:i] + junk + data[i + 1:]
    assert fast(damaged) == slow(damaged)


@pytest.mark.parametrize("text", [
    "name: m\nversion: \"1.0\"\nparams:\n  a: +5\n", "name: m\nversion: \"1.0\"\nparams:\n  a: yes\n",
    "name: m\nversion: \"1.0\"\nparams:\n  a: 0x1f\n", "name: m\nversion: \"1.0\"\nparams:\n   a: 1\n",
    "name: m\nversion: \"1.0\"\ntags:\n- b\n- a\n", "name: m\nname: m\nversion: \"1.0\"\n",
    "name: m\nversion: \"1.0\"\nparams: &a {}\n", "name: m\nversion: \"1.0\"\nparams:\n  a: 1.0e+20\n",
])
def test_hand_written_yaml_gets_the_same_verdict(text):
    data = text.encode()
    assert fast(data) == slow(data)
