"""Search: every filter and operator, type-aware comparison, bad expressions, sort/limit, the cache."""

from __future__ import annotations

import json

import pytest
from conftest import relax_policy, run_cli

from modelreg import discovery
from modelreg.discovery import SearchRecord
from modelreg.registry import Registry


run = run_cli  # run(capsys, *args) -> (exit code, stdout, stderr)


def found(capsys, *args: str) -> list[str]:
    code, out, err = run(capsys, "search", "--json", *args)
    assert code == 0, err
    return [f"{r['name']}@{r['version']}" for r in json.loads(out)]


@pytest.fixture
def project(bare_project):
    return bare_project


@pytest.fixture
def reg(project):
    r = Registry.init(project)
    relax_policy(project)
    r.register("faq-bot", "1.0.0", params={"lr": 0.001, "epochs": 3}, meta={"framework": "torch"},
               tags=["nlp"], license="MIT")
    r.register("faq-bot", "1.2.0", params={"lr": 0.002, "epochs": 10}, meta={"framework": "torch"},
               tags=["nlp", "small"], license="MIT")
    r.register("faq-bot", "1.10.0", params={"lr": 0.0005, "epochs": 9}, meta={"framework": "jax"},
               license="Apache-2.0")
    r.register("faq-bot", "2.0.0-rc.1", params={"lr": 0.0001}, meta={"framework": "jax", "note": "try"})
    r.register("vision", "0.9", params={"lr": 0.01, "epochs": 20}, meta={"framework": "torch"},
               tags=["cv"], license="Apache-2.0", new_model=True)
    r.promote("faq-bot@1.10.0", "production")
    r.promote("faq-bot@1.2.0", "staging")
    r.promote("vision@0.9", "staging")
    r.archive("faq-bot@1.0.0", reason="old")
    return r


ALL = ["faq-bot@1.0.0", "faq-bot@1.2.0", "faq-bot@1.10.0", "faq-bot@2.0.0-rc.1", "vision@0.9"]


def test_no_filter_lists_every_version_with_record_keys(reg, capsys):
    assert found(capsys) == ALL
    code, out, _ = run(capsys, "search", "--json")
    rec = json.loads(out)[2]
    for key in ("name", "version", "digest", "stages", "archived", "tags", "meta", "params", "metrics",
                "license", "parents", "registered_at"):
        assert key in rec
    assert rec["stages"] == ["production"] and rec["license"] == "Apache-2.0"


def test_library_returns_typed_records(reg):
    recs = reg.search(stage="staging")
    assert all(isinstance(r, SearchRecord) for r in recs)
    assert [(r.name, r.version) for r in recs] == [("faq-bot", "1.2.0"), ("vision", "0.9")]
    assert recs[0].to_dict()["params"] == {"lr": 0.002, "epochs": 10}


def test_name_regex(reg, capsys):
    assert found(capsys, "--name", "^vis") == ["vision@0.9"]
    assert found(capsys, "--name", "bot$") == ALL[:4]
    code, _, err = run(capsys, "search", "--name", "(")
    assert code == 2 and "--name" in err


def test_stage_staged_tag_archived(reg, capsys):
    assert found(capsys, "--stage", "production") == ["faq-bot@1.10.0"]
    assert found(capsys, "--staged") == ["faq-bot@1.2.0", "faq-bot@1.10.0", "vision@0.9"]
    assert found(capsys, "--tag", "nlp") == ["faq-bot@1.0.0", "faq-bot@1.2.0"]
    assert found(capsys, "--archived") == ["faq-bot@1.0.0"]
    assert found(capsys, "--no-archived") == ALL[1:]
    assert found(capsys, "--tag", "nlp", "--no-archived") == ["faq-bot@1.2.0"]  # AND
    code, _, err = run(capsys, "search", "--stage", "nowhere")
    assert code == 2 and "unknown stage" in err


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("meta.framework == jax", ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        ("meta.framework != torch", ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        ("params.lr < 0.001", ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        ("params.lr <= 0.001", ["faq-bot@1.0.0", "faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        # numbers compare as numbers: "10" > "9" although "10" < "9" as text
        ("params.epochs > 9", ["faq-bot@1.2.0", "vision@0.9"]),
        ("params.epochs >= 9", ["faq-bot@1.2.0", "faq-bot@1.10.0", "vision@0.9"]),
        ("meta.framework ~= ^j", ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        ("name ~= 'q.b'", ALL[:4]),
        # versions compare in version order: 1.10.0 > 1.9, and a pre-release sorts before its release
        ("version > 1.9", ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]),
        ("version < 2.0.0", ALL),
        ("version >= 2.0.0-rc.1", ["faq-bot@2.0.0-rc.1"]),
        ("version == 0.9.0", ["vision@0.9"]),
        ("tags == small", ["faq-bot@1.2.0"]),
        ("license == Apache-2.0", ["faq-bot@1.10.0", "vision@0.9"]),
        ("meta.note == try", ["faq-bot@2.0.0-rc.1"]),
        ("meta.note != try", ALL[:3] + ["vision@0.9"]),  # a missing field matches only !=
        ("stages == production", ["faq-bot@1.10.0"]),
        ("archived == true", ["faq-bot@1.0.0"]),
    ],
)
def test_where_operators(reg, capsys, expr, expected):
    assert found(capsys, "--where", expr) == expected


def test_where_repeats_combine_with_and(reg, capsys):
    assert found(capsys, "--where", "meta.framework == torch", "-w", "params.lr > 0.001") == [
        "faq-bot@1.2.0", "vision@0.9"]
    assert found(capsys, "--where", "meta.framework == torch", "--where", "name == vision") == ["vision@0.9"]


@pytest.mark.parametrize(
    "expr, points_at",
    [
        ("params.lr", "missing operator"),
        ("params.lr >", "missing value"),
        ("params..lr == 1", "empty path segment"),
        ("params.lr =! 1", "unknown operator"),
        ("name ~= '('", "invalid regex"),
        ("name == 'x", "unterminated quote"),
        ("", "empty expression"),
        ("na$me == x", "invalid character"),
    ],
)
def test_bad_expression_is_usage_error_pointing_at_the_part(reg, capsys, expr, points_at):
    code, out, err = run(capsys, "search", "--where", expr)
    assert code == 2 and out == ""
    assert points_at in err and err.count("\n") == 1


def test_sort_and_limit(reg, capsys):
    assert found(capsys, "--sort", "version") == [
        "vision@0.9", "faq-bot@1.0.0", "faq-bot@1.2.0", "faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]
    assert found(capsys, "--sort", "-params.lr", "--limit", "2") == ["vision@0.9", "faq-bot@1.2.0"]
    assert found(capsys, "--sort", "-meta.note") == ["faq-bot@2.0.0-rc.1"] + ALL[:3] + ["vision@0.9"]
    assert found(capsys, "--limit", "0") == []
    code, _, err = run(capsys, "search", "--sort", "-")
    assert code == 2 and "--sort" in err


def test_ls_without_filters_keeps_its_output(reg, capsys):
    code, out, _ = run(capsys, "ls", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["faq-bot", "vision"]
    code, out, _ = run(capsys, "ls", "faq-bot", "--json")
    assert code == 0 and "manifest" not in out and len(json.loads(out)) == 4


def test_ls_with_filters_lists_matching_versions(reg, capsys):
    code, out, _ = run(capsys, "ls", "--staged", "--json")
    assert [r["version"] for r in json.loads(out)] == ["1.2.0", "1.10.0", "0.9"]
    code, out, _ = run(capsys, "ls", "faq-bot", "--where", "params.lr >= 0.001", "--json")
    assert [r["version"] for r in json.loads(out)] == ["1.0.0", "1.2.0"]
    code, out, _ = run(capsys, "ls", "--tag", "cv")
    assert code == 0 and "vision" in out and "0.9" in out and "faq-bot" not in out
    code, _, err = run(capsys, "ls", "nobody", "--staged")
    assert code == 3


def test_metrics_from_the_log_fold_are_searchable(project, capsys):
    """Metrics recorded after registration (events folded from the log) are what --where and --sort see."""
    r = Registry.init(project)
    relax_policy(project)
    r.register("m", "1.0")
    r.register("m", "2.0")
    for v, score in (("1.0", 0.5), ("2.0", 0.95)):
        r.set_metrics(f"m@{v}", "core-v1.2", {"score": score})
    assert found(capsys, "--where", "metrics.core-v1.2.score >= 0.9") == ["m@2.0"]
    assert found(capsys, "--sort", "-metrics.core-v1.2.score") == ["m@2.0", "m@1.0"]


# ------------------------------------------------------------------ the index
def index_file(reg):
    from modelreg.index.db import path_of

    return path_of(reg)


def count_manifest_reads(monkeypatch):
    calls = []
    real = Registry.manifest

    def counting(self, digest):
        calls.append(digest)
        return real(self, digest)

    monkeypatch.setattr(Registry, "manifest", counting)
    return calls


def sql(reg, q, *args):
    import sqlite3

    con = sqlite3.connect(index_file(reg))
    try:
        return con.execute(q, args).fetchall()
    finally:
        con.close()


def test_index_is_sqlite_wal_with_a_schema_version(reg):
    from modelreg.index.db import SCHEMA_VERSION

    reg.search()
    path = index_file(reg)
    assert path.is_file() and path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert sql(reg, "PRAGMA journal_mode") == [("wal",)]
    assert sql(reg, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert not path.is_relative_to(reg.path)  # never inside .modelreg/
    assert sorted(m for (m,) in sql(reg, "SELECT name FROM models")) == ["faq-bot", "vision"]


def test_index_answers_without_parsing_manifests(reg, monkeypatch):
    reg.search()
    calls = count_manifest_reads(monkeypatch)
    assert len(reg.search(where=["params.lr > 0"])) == 5
    assert calls == []


def test_register_after_a_query_shows_up_and_parses_only_the_new_manifest(reg, capsys, monkeypatch):
    assert found(capsys) == ALL  # every model's records cached
    calls = count_manifest_reads(monkeypatch)
    reg.register("faq-bot", "3.0.0", params={"lr": 0.5})
    calls.clear()
    assert found(capsys, "--where", "params.lr == 0.5") == ["faq-bot@3.0.0"]
    assert len(calls) == 1  # incremental: only the new version's manifest


def test_promote_and_archive_after_a_query_show_up(reg, capsys):
    assert found(capsys, "--stage", "production") == ["faq-bot@1.10.0"]
    reg.promote("faq-bot@2.0.0-rc.1", "production")
    reg.archive("faq-bot@1.2.0", force=True)
    assert found(capsys, "--stage", "production") == ["faq-bot@2.0.0-rc.1"]
    assert found(capsys, "--archived") == ["faq-bot@1.0.0", "faq-bot@1.2.0"]


@pytest.mark.parametrize("garbage", [b"", b"not a database at all", b"SQLite format 3\x00" + b"\xff" * 4000])
def test_corrupt_index_is_rebuilt_silently(reg, capsys, garbage):
    reg.search()
    path = index_file(reg)
    for suffix in ("-wal", "-shm"):
        if path.with_name(path.name + suffix).exists():
            path.with_name(path.name + suffix).unlink()
    path.write_bytes(garbage)
    code, out, err = run(capsys, "search", "--json", "--name", "faq")
    assert code == 0 and err == ""
    assert [r["version"] for r in json.loads(out)] == ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1"]
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"


def test_other_schema_version_is_rebuilt(reg, capsys):
    import sqlite3

    reg.search()
    con = sqlite3.connect(index_file(reg))
    con.execute("PRAGMA user_version = 999")
    con.execute("DELETE FROM versions")
    con.commit()
    con.close()
    assert found(capsys) == ALL


def test_stale_rows_under_valid_stamps_are_fixed_by_reindex(reg, capsys):
    reg.search()
    import sqlite3

    con = sqlite3.connect(index_file(reg))
    con.execute("UPDATE versions SET license = 'WRONG' WHERE model = 'vision'")
    con.commit()
    con.close()
    assert found(capsys, "--where", "license == WRONG") == []  # rows are re-checked in Python: no match
    code, _, err = run(capsys, "reindex")
    assert code == 0 and "Reindexed 2 model(s), 5 version(s)" in err
    assert sql(reg, "SELECT count(*) FROM versions WHERE license = 'WRONG'") == [(0,)]


def test_a_changed_stamp_refolds_the_model(reg, capsys):
    reg.search()
    import sqlite3

    con = sqlite3.connect(index_file(reg))
    con.execute("UPDATE models SET stamp = 'forged' WHERE name = 'vision'")
    con.execute("UPDATE versions SET record = replace(record, '\"archived\":false', '\"archived\":true') "
                "WHERE model = 'vision'")
    con.commit()
    con.close()
    assert found(capsys, "--where", "archived == true") == ["faq-bot@1.0.0"]  # vision refolded from its log


def test_index_is_never_the_only_copy(reg, capsys):
    import shutil

    reg.search()
    shutil.rmtree(index_file(reg).parent)
    assert found(capsys) == ALL
    assert not (reg.path / "cache").exists()  # derived data never lives where git can deliver it


def test_unusable_cache_dir_falls_back_to_the_registry(reg, capsys, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(blocker))
    assert found(capsys) == ALL
    assert found(capsys, "--where", "params.lr < 0.001") == ["faq-bot@1.10.0", "faq-bot@2.0.0-rc.1"]


def test_index_deleted_while_open_still_answers(reg, capsys, monkeypatch):
    from modelreg.index import db

    real = db.Index.records

    def delete_then_read(self, *a, **k):
        for suffix in ("", "-wal", "-shm"):
            p = db.path_of(self.reg)
            q = p.with_name(p.name + suffix)
            if q.exists():
                q.unlink()
        return real(self, *a, **k)

    monkeypatch.setattr(db.Index, "records", delete_then_read)
    assert found(capsys) == ALL
    monkeypatch.setattr(db.Index, "records", real)
    assert found(capsys) == ALL


def test_reindex_json_and_empty_registry(project, capsys):
    Registry.init(project)
    relax_policy(project)
    code, out, _ = run(capsys, "reindex", "--json")
    assert code == 0 and json.loads(out) == {"models": 0, "versions": 0}
    assert found(capsys) == []


def test_mismatch_note_counts_like_a_full_scan(reg, capsys):
    reg.set_metrics("faq-bot@1.0.0", "core", {"score": "0.90"})
    reg.set_metrics("faq-bot@1.2.0", "core", {"score": 0.95})
    code, out, err = run(capsys, "search", "--json", "--where", "metrics.core.score >= 0.9")
    assert code == 0 and [r["version"] for r in json.loads(out)] == ["1.2.0"]
    assert "1 value(s) of metrics.core.score could not be compared" in err
