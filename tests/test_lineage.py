"""Lineage: parents at registration, ancestor and descendant trees, depth, refusals."""

from __future__ import annotations

import json

import pytest
from conftest import relax_policy, run_cli

from modelreg.discovery import LineageNode
from modelreg.errors import NotFound
from modelreg.registry import Registry


run = run_cli  # run(capsys, *args) -> (exit code, stdout, stderr)


@pytest.fixture
def project(bare_project):
    return bare_project


@pytest.fixture
def reg(project, capsys):
    """base@1 -> tuned@1 (fine_tune) -> tuned-int8@1 (quantization); base@1 -> small@1 (distillation);
    tuned@1 + small@1 -> merged@1 (merge)."""
    r = Registry.init(project)
    relax_policy(project)
    for args in (
        ["register", "base", "1", "--license", "Apache-2.0"],
        ["register", "tuned", "1", "--parent", "base@1", "--lineage", "fine_tune"],
        ["register", "tuned-int8", "1", "--parent", "tuned@1", "--lineage", "quantization"],
        ["register", "small", "1", "--parent", "base@1", "--lineage", "distillation"],
        ["register", "merged", "1", "--parent", "tuned@1", "--parent", "small@1", "--lineage", "merge"],
    ):
        code, _, err = run(capsys, *args)
        assert code == 0, err
    return r


def shape(node: LineageNode) -> list:
    return [f"{node.name}@{node.version}", node.relation, [shape(c) for c in node.children]]


def shape_json(d: dict) -> list:
    return [f"{d['name']}@{d['version']}", d["relation"], [shape_json(c) for c in d["children"]]]


def test_parents_are_stored_as_digests_with_relation(reg):
    m = reg.manifest(reg.resolve("merged@1").digest)
    assert {p["digest"] for p in m["parents"]} == {reg.resolve("tuned@1").digest, reg.resolve("small@1").digest}
    assert {p["relation"] for p in m["parents"]} == {"merge"}


def test_ancestors_tree(reg):
    tree = reg.lineage("merged@1")
    assert shape(tree) == ["merged@1", None, [
        ["small@1", "merge", [["base@1", "distillation", []]]],
        ["tuned@1", "merge", [["base@1", "fine_tune", []]]],
    ]]
    assert tree.children[0].children[0].license == "Apache-2.0"


def test_descendants_tree(reg):
    tree = reg.lineage("base@1", direction="descendants")
    assert shape(tree) == ["base@1", None, [
        ["small@1", "distillation", [["merged@1", "merge", []]]],
        ["tuned@1", "fine_tune", [["merged@1", "merge", []], ["tuned-int8@1", "quantization", []]]],
    ]]


def test_depth_limits_generations_and_marks_truncation(reg):
    tree = reg.lineage("base@1", direction="descendants", depth=1)
    assert shape(tree) == ["base@1", None, [["small@1", "distillation", []], ["tuned@1", "fine_tune", []]]]
    assert all(c.truncated for c in tree.children)
    root_only = reg.lineage("merged@1", depth=0)
    assert root_only.children == [] and root_only.truncated
    leaf = reg.lineage("tuned-int8@1", direction="descendants")
    assert leaf.children == [] and not leaf.truncated


def test_cli_json_is_nested(reg, capsys):
    code, out, _ = run(capsys, "lineage", "tuned-int8@1", "--ancestors", "--json")
    assert code == 0
    assert shape_json(json.loads(out)) == [
        "tuned-int8@1", None, [["tuned@1", "quantization", [["base@1", "fine_tune", []]]]]]
    code, out, _ = run(capsys, "lineage", "base@1", "--descendants", "--depth", "1", "--json")
    d = json.loads(out)
    assert [c["name"] for c in d["children"]] == ["small", "tuned"] and d["children"][0]["truncated"] is True


def test_cli_text_is_a_tree(reg, capsys):
    code, out, _ = run(capsys, "lineage", "base@1", "--descendants")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("base@1 ")
    assert any(line.startswith("├── small@1") and "distillation" in line for line in lines)
    assert any("tuned-int8@1" in line and "quantization" in line for line in lines)


def test_cli_refusals(reg, capsys):
    assert run(capsys, "lineage", "base@1", "--ancestors", "--descendants")[0] == 2
    assert run(capsys, "lineage", "nobody@1")[0] == 3
    code, _, err = run(capsys, "register", "x-model", "1", "--parent", "base@9")
    assert code == 3 and "no version" in err
    code, _, err = run(capsys, "register", "x-model", "1", "--parent", "base@1", "--lineage", "adoption")
    assert code == 2 and "fine_tune" in err
    code, _, err = run(capsys, "register", "x-model", "1", "--lineage", "merge")
    assert code == 2 and "--parent" in err
    assert run(capsys, "lineage", "base@1", "--depth", "-1")[0] == 2
    assert not (reg.path / "versions" / "x-model").exists()


def test_manifest_naming_a_missing_parent_digest_is_refused(reg):
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match="does not exist"):
        reg.register_manifest({"name": "orphan", "version": "1", "parents": [{"digest": missing}]})
    assert reg.refs.version_names("orphan") == []


def test_descendants_see_a_registration_made_after_a_query(reg):
    assert [c.name for c in reg.lineage("small@1", direction="descendants").children] == ["merged"]
    reg.register("small-int4", "1", parents=["small@1"], relation="quantization")
    assert [c.name for c in reg.lineage("small@1", direction="descendants").children] == ["merged", "small-int4"]


def test_search_by_parent_name(reg):
    assert [r.name for r in reg.search(where=["parent_names == base"])] == ["small", "tuned"]
    assert [r.name for r in reg.search(where=["parent_names == tuned"])] == ["merged", "tuned-int8"]
