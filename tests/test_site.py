"""`modelreg site build` / `site serve` and `Registry.build_site` without a browser: files, JSON API,
escaping, incremental writes, refusals. The browser checks are in test_site_browser.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _site_support import HOSTILE, make_team_registry
from conftest import run_cli, snapshot, subprocess_env

from modelreg.registry import Registry
from modelreg.site import render
from modelreg.site.output import MARKER

pytest.importorskip("jinja2")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The site's cache (parsed manifests, build state) goes to a temp dir, never ~/.cache."""
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def team_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("team") / "proj"
    make_team_registry(project)
    return project


@pytest.fixture
def team(team_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A fresh copy of the team registry (built once per session) in ``tmp_path/proj``; cwd is ``tmp_path``."""
    import shutil

    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(team_template, tmp_path / "proj", symlinks=True)
    return Registry(tmp_path / "proj" / ".modelreg")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def site_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_build_through_cli_writes_pages_api_and_assets(team: Registry, tmp_path: Path, capsys) -> None:
    out = tmp_path / "site"
    code, stdout, err = run_cli(capsys, "-R", str(team.path), "site", "build", "--out", str(out),
                                "--title", "Acme models", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["models"] == 3 and report["versions"] == 8
    assert report["written"] == report["files"] and report["removed"] == 0
    for rel in ("index.html", "events.html", "faq-bot/index.html", "faq-bot/1.2.0/index.html",
                "llama-base/3.1.0/index.html", "_static/site.css", "_static/site.js", "_data/search.js",
                "_data/faq-bot/versions-1.js", "_data/events-1.js", "api/models.json", "api/faq-bot.json",
                "api/faq-bot/versions.json", "api/faq-bot/production.json", "api/stats.json", ".nojekyll"):
        assert (out / rel).is_file(), rel
    assert report["files"] == len(site_files(out))
    html = (out / "index.html").read_text()
    assert "<title>Models · Acme models</title>" in html
    assert json.loads((out / MARKER).read_text())["files"] == sorted(set(site_files(out)) - {MARKER})


def test_library_entry_point_and_default_out(team: Registry, tmp_path: Path) -> None:
    report = team.build_site()  # ./site in the cwd
    assert Path("site/index.html").is_file()
    assert report.to_dict()["out"] == "site"
    assert report.files == len(site_files(tmp_path / "site"))


def test_overview_shows_what_each_stage_holds(team: Registry, tmp_path: Path) -> None:
    team.build_site(tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    row = re.search(r'<tr data-search="[^"]*" data-name="faq-bot">(.*?)</tr>', html, re.S).group(1)
    cells = dict(re.findall(r'<td class="stage" data-stage="([a-z]+)">(.*?)</td>', row, re.S))
    assert 'href="faq-bot/1.2.0/index.html">1.2.0</a>' in cells["production"]
    assert "by carol@example.com" in cells["production"] and "better on core-v1" in cells["production"]
    assert 'href="faq-bot/1.2.0/index.html">1.2.0</a>' in cells["canary"] and "(rollback)" in cells["canary"]
    assert "error rate up in canary" in cells["canary"]
    assert 'href="faq-bot/1.4.0/index.html">1.4.0</a>' in cells["staging"]


def test_untrusted_text_is_escaped_everywhere(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    files = site_files(out)
    escaped = "&lt;/script&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    seen = 0
    for rel, data in files.items():
        text = data.decode("utf-8")
        if rel.endswith(".html"):
            assert HOSTILE not in text, rel
            assert "<script>" not in text and "onerror=alert" not in text.replace(escaped, ""), rel
            seen += escaped in text
            scripts = re.findall(r"<script\b[^>]*>", text)
            assert scripts == [f'<script src="{"../" * rel.count("/")}_static/site.js" defer>'], rel
        elif rel.endswith(".js") and rel.startswith("_data/"):
            for bad in ("<", ">", "&", "\u2028", "\u2029"):
                assert bad not in text, (rel, bad)
            m = re.fullmatch(r"MR\.put\((\"[^\"]+\"),(.*)\);\n", text, re.S)
            assert m, rel
            json.loads(m.group(2))  # still valid JSON once the escapes are read back
    assert seen >= 4  # overview, events page, version pages, model page
    events = (out / "_data" / "events-1.js").read_text()
    assert "\\u003c/script\\u003e" in events and "\\u2028" not in json.dumps(events)


def test_every_page_has_a_strict_csp_and_only_relative_links(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out, base_url="https://models.example.com/registry")
    for rel, data in site_files(out).items():
        if not rel.endswith(".html"):
            continue
        text = data.decode()
        assert f'<meta http-equiv="Content-Security-Policy" content="{render.CSP}">' in text
        assert "default-src 'self'" in render.CSP and "unsafe-inline" not in render.CSP
        canonical = re.findall(r'<link rel="canonical" href="([^"]+)">', text)
        page = rel[:-len("index.html")] if rel.endswith("index.html") else rel
        expected = "https://models.example.com/registry/" + page
        assert canonical == [expected]
        for url in re.findall(r'(?:href|src)="([^"]+)"', text):
            if url == expected:
                continue
            # relative: works from file:// and under a sub-path
            assert "://" not in url and not url.startswith("/"), (rel, url)
        assert " style=" not in text  # the CSP forbids inline styles


def test_version_page_has_manifest_annotations_lineage_and_diffs(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    html = (out / "faq-bot" / "1.2.0" / "index.html").read_text()
    info = team.show("faq-bot@1.2.0")
    for a in info.manifest["artifacts"]:
        assert f"<code>{a['uri']}</code>" in html
        if a.get("sha256"):
            assert a["sha256"] in html
    assert "ft:gpt-4o-mini:faq:1" in html and "looks good" in html  # binding, approval
    assert '<th scope="row">optimizer.name</th><td>adamw</td>' in html
    assert '<th scope="row">score</th><td>0.88</td>' in html
    assert html.count('class="node') == 4  # llama-base, itself, two distilled descendants
    assert "Against previous version" in html and 'href="../1.1.0/index.html"' in html
    archived = (out / "faq-bot" / "1.1.0" / "index.html").read_text()
    assert "<strong>Archived</strong>: superseded;" in archived
    assert "Against production" in archived  # 1.1.0 vs what production holds (1.2.0)
    small = (out / "faq-bot-small" / "0.2.0" / "index.html").read_text()
    assert 'data-nodes="4"' in small


def test_model_page_charts_checks_and_paging_data(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    html = (out / "faq-bot" / "index.html").read_text()
    moves = [e for e in team.events("faq-bot") if e.stage]
    assert f'data-points="{len(moves)}"' in html
    assert html.count('class="mark m-') == len(moves)
    score = re.search(r'data-suite="core-v1" data-key="score" data-points="5">(.*?)</svg>', html, re.S).group(1)
    assert score.count('<circle class="pt') == 5 and score.count('class="pt prod"') == 1
    assert "<title>1.2.0: 0.88 (production)</title>" in score
    assert 'class="thr"' in score and "production &gt;= 0.85" in score
    checks = re.search(r'<section id="checks">(.*?)</section>', html, re.S).group(1)
    report = team.check("faq-bot@1.4.0", "production")
    assert "candidate 1.4.0 against 1.2.0" in checks
    for r in report.results:
        assert f"<td>{r.gate}</td><td>{r.subject}</td>" in checks
    rows = json.loads(re.fullmatch(r"MR\.put\(\"versions:faq-bot:1\",(.*)\);\n",
                                   (out / "_data" / "faq-bot" / "versions-1.js").read_text(), re.S).group(1))
    assert [r[1] for r in rows] == ["1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"]


def test_json_api_shapes(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    api = out / "api"
    models = read_json(api / "models.json")
    assert models["api"] == 1 and models["stages"] == ["staging", "canary", "production"]
    faq = next(m for m in models["models"] if m["name"] == "faq-bot")
    prod = faq["stages"]["production"]
    assert prod["version"] == "1.2.0" and prod["by"] == "carol@example.com" and prod["action"] == "promote"
    assert faq["latest"] == "1.4.0" and faq["versions"] == 5 and faq["archived"] == 1 and faq["href"] == "faq-bot.json"
    model = read_json(api / "faq-bot.json")
    assert model["links"]["versions"] == "faq-bot/versions.json"
    assert model["links"]["stages"]["production"] == "faq-bot/production.json"
    assert model["latest"]["version"] == "1.4.0" and model["events"] == len(team.events("faq-bot"))
    page = read_json(api / "faq-bot" / "versions.json")
    assert (page["page"], page["pages"], page["total"], page["prev"], page["next"]) == (1, 1, 5, None, None)
    listed = {v["version"]: v for v in page["versions"]}
    shown = team.show("faq-bot@1.1.0").to_dict()
    for key in ("digest", "stages", "archived", "archived_reason", "registered_at", "registered_by", "metrics",
                "approvals", "bindings", "tags"):
        assert listed["1.1.0"][key] == shown[key], key
    prod = read_json(api / "faq-bot" / "production.json")
    resolved = team.resolve("faq-bot@production")
    assert (prod["version"], prod["digest"]) == (resolved.version, resolved.digest)
    assert prod["manifest"] == team.show("faq-bot@production").manifest
    assert read_json(api / "llama-base" / "production.json")["version"] is None
    stats = read_json(api / "stats.json")
    expected = team.stats()
    assert stats["registry"] == {k: expected[k] for k in ("models", "versions", "archived", "stages")}
    assert stats["models"]["faq-bot"]["stages"]["production"] == "1.2.0"


def test_versions_api_is_paged_with_next_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    from modelreg.site import api

    monkeypatch.setattr(api, "PER_PAGE", 4)
    reg = Registry.init(tmp_path / "p")
    for i in range(10):
        reg.register("m", f"1.0.{i}", artifacts=[f"checkpoint=s3://b/m/{i}.bin"], check=False)
    reg.build_site(tmp_path / "site")
    base = tmp_path / "site" / "api" / "m"
    seen, name, pages = [], "versions.json", 0
    while name:
        page = read_json(base / name)
        pages += 1
        assert page["page"] == pages and page["pages"] == 3 and page["per_page"] == 4 and page["total"] == 10
        seen += [v["version"] for v in page["versions"]]
        name = page["next"]
    assert seen == [f"1.0.{i}" for i in range(10)]
    assert read_json(base / "versions-3.json")["prev"] == "versions-2.json"
    pages = sorted(p.name for p in base.glob("versions*.json"))
    assert pages == ["versions-2.json", "versions-3.json", "versions.json"]


def test_rebuild_writes_only_what_changed_and_removes_stale_files(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    first = team.build_site(out)
    before = site_files(out)
    again = team.build_site(out)
    assert again.written == 0 and again.files == first.files and site_files(out) == before
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    team.tag("faq-bot@1.0.0", add=["legacy"], actor="tester")
    changed = team.build_site(out)
    assert 0 < changed.written < changed.files / 2
    rewritten = {p.relative_to(out).as_posix() for p, m in mtimes.items() if p.stat().st_mtime_ns != m}
    after = site_files(out)
    assert rewritten == {k for k in after if after[k] != before.get(k)}  # written == bytes changed
    assert len(rewritten) == changed.written
    assert "faq-bot/1.0.0/index.html" in rewritten and "faq-bot/1.3.0/index.html" not in rewritten
    # a page the previous build wrote and this one does not is removed; nothing else is touched
    (out / "keep-me.txt").write_text("mine")
    marker = read_json(out / MARKER)
    marker["files"].append("faq-bot/9.9.9/index.html")
    (out / "faq-bot" / "9.9.9").mkdir()
    (out / "faq-bot" / "9.9.9" / "index.html").write_text("stale")
    (out / MARKER).write_text(json.dumps(marker))
    report = team.build_site(out)
    assert report.removed == 1 and not (out / "faq-bot" / "9.9.9").exists()
    assert (out / "keep-me.txt").read_text() == "mine"


def test_build_changes_nothing_in_the_registry(team: Registry, tmp_path: Path) -> None:
    before = snapshot(team.path)
    team.build_site(tmp_path / "site")
    assert snapshot(team.path) == before


def test_refuses_a_foreign_directory_symlinks_and_bad_options(team: Registry, tmp_path: Path, capsys) -> None:
    R = ("-R", str(team.path))
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "README.md").write_text("not a site")
    code, out, err = run_cli(capsys, *R, "site", "build", "--out", str(foreign))
    assert code == 2 and "not empty and was not written by 'modelreg site build'" in err
    assert sorted(os.listdir(foreign)) == ["README.md"]
    code, _, err = run_cli(capsys, *R, "site", "build", "--out", str(team.path / "site"))
    assert code == 2 and "inside the registry directory" in err and not (team.path / "site").exists()
    code, _, err = run_cli(capsys, *R, "site", "build", "--out", str(tmp_path / "s"), "--base-url", "ftp://x")
    assert code == 2 and "--base-url" in err and not (tmp_path / "s").exists()
    assert "Traceback" not in err
    # a symlink planted in an earlier build's directory is never written through
    out = tmp_path / "site"
    team.build_site(out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import shutil

    shutil.rmtree(out / "faq-bot")
    (out / "faq-bot").symlink_to(elsewhere, target_is_directory=True)
    code, _, err = run_cli(capsys, *R, "site", "build", "--out", str(out))
    assert code == 2 and "symlink" in err
    assert list(elsewhere.iterdir()) == []


def test_names_that_would_collide_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    reg = Registry.init(tmp_path / "p")
    reg.register("m", "index.html", artifacts=["checkpoint=s3://b/m.bin"], check=False)
    code, _, err = run_cli(capsys, "-R", str(reg.path), "site", "build", "--out", str(tmp_path / "site"))
    assert code == 2 and "m@index.html would overwrite another file of the site" in err
    assert not (tmp_path / "site").exists()


def test_unreadable_manifest_is_a_warning_and_a_visible_problem(team: Registry, tmp_path: Path, capsys) -> None:
    digest = team.resolve("faq-bot@1.3.0").digest
    obj = team.path / "objects" / digest[7:9] / digest[9:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes() + b"# tampered\n")
    code, _, err = run_cli(capsys, "-R", str(team.path), "site", "build", "--out", str(tmp_path / "site"))
    assert code == 0
    assert "modelreg: warning: faq-bot@1.3.0:" in err
    page = (tmp_path / "site" / "faq-bot" / "1.3.0" / "index.html").read_text()
    assert "The manifest could not be read" in page


def test_parallel_build_is_identical_to_serial(team: Registry, tmp_path: Path) -> None:
    team.build_site(tmp_path / "one", jobs=1)
    report = team.build_site(tmp_path / "two", jobs=2)
    assert report.jobs == 2
    assert site_files(tmp_path / "one") == site_files(tmp_path / "two")


def test_interrupted_build_leaves_nothing_behind(team: Registry, tmp_path: Path, monkeypatch) -> None:
    from modelreg.site import output

    out = tmp_path / "site"
    calls = {"n": 0}
    real = output.Output.write

    def dying(self, rel, data):
        calls["n"] += 1
        if calls["n"] == 12:
            output._write_new(os.path.join(self.root, output.TMP_DIR, "99-1"), b"half")  # as a kill would leave it
            raise KeyboardInterrupt
        return real(self, rel, data)

    monkeypatch.setattr(output.Output, "write", dying)
    with pytest.raises(KeyboardInterrupt):
        team.build_site(out)
    monkeypatch.setattr(output.Output, "write", real)
    team.build_site(out)
    team.build_site(tmp_path / "clean")
    assert site_files(out) == site_files(tmp_path / "clean")
    assert not (out / output.TMP_DIR).exists()


def test_missing_jinja2_says_how_to_install(team: Registry, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    code, _, err = run_cli(capsys, "-R", str(team.path), "site", "build", "--out", str(tmp_path / "site"))
    assert code == 1
    assert err.strip() == "modelreg: error: the site needs Jinja2: pip install 'modelreg[site]'"
    assert not (tmp_path / "site").exists()


def test_empty_registry_builds_a_site(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    reg = Registry.init(tmp_path / "p")
    report = reg.build_site(tmp_path / "site")
    assert report.models == 0 and "No models registered yet" in (tmp_path / "site" / "index.html").read_text()
    assert read_json(tmp_path / "site" / "api" / "models.json")["models"] == []


def test_serve_builds_serves_on_localhost_and_stops_on_ctrl_c(team: Registry, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "-R", str(team.path), "site", "serve", "--port", "0",
         "--out", str(tmp_path / "site")],
        cwd=tmp_path, env=subprocess_env(MODELREG_ACTOR="tester"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            m = re.search(r"at (http://127\.0\.0\.1:\d+/) ", line)
            if m:
                url = m.group(1)
                break
            if not line and proc.poll() is not None:
                break
        assert url, lines
        with urllib.request.urlopen(url + "faq-bot/1.2.0/") as r:  # the stable link: a directory's index.html
            body = r.read().decode()
            assert "faq-bot@1.2.0" in body
            assert r.headers["Content-Security-Policy"] == render.CSP
        with urllib.request.urlopen(url + "api/faq-bot/production.json") as r:
            assert r.headers["Content-Type"] == "application/json"
            assert json.loads(r.read())["version"] == "1.2.0"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "../../../etc/passwd")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
    assert "Traceback" not in proc.stderr.read()


def test_rebuild_rerenders_only_models_whose_inputs_changed(team: Registry, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "site"
    team.register("solo", "1.0", artifacts=["checkpoint=s3://b/solo.bin"], check=False, new_model=True)
    team.build_site(out)
    # manifests come from the cache now: no object is parsed again
    from modelreg.registry import Registry as R

    monkeypatch.setattr(R, "manifest", lambda self, d: pytest.fail("manifest parsed again"))
    calls = []
    from modelreg.site import render as render_mod

    real_version = render_mod.Renderer.version
    monkeypatch.setattr(render_mod.Renderer, "version",
                        lambda self, m, v: calls.append(f"{m.name}@{v.version}") or real_version(self, m, v))
    assert team.build_site(out).written == 0 and calls == []
    # a new descendant in another model changes its parent's page (lineage), and nothing of a third model
    monkeypatch.undo()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    team.register("faq-bot-small", "0.3.0", artifacts=["checkpoint=s3://b/s3.bin"], parents=["faq-bot@1.4.0"],
                  relation="distillation", check=False, actor="tester")
    monkeypatch.setattr(render_mod.Renderer, "version",
                        lambda self, m, v: calls.append(f"{m.name}@{v.version}") or real_version(self, m, v))
    report = team.build_site(out)
    assert {c.split("@")[0] for c in calls} == {"faq-bot", "faq-bot-small", "llama-base"}  # a grandchild of llama
    assert "faq-bot-small@0.3.0" in (out / "faq-bot" / "1.4.0" / "index.html").read_text()
    assert report.written > 0
    # a page removed or edited by hand is written again; a new title rewrites every page
    (out / "llama-base" / "3.1.0" / "index.html").unlink()
    (out / "faq-bot" / "1.0.0" / "index.html").write_text("edited")
    calls.clear()
    assert team.build_site(out).written == 2
    assert {c.split("@")[0] for c in calls} == {"llama-base", "faq-bot"}
    assert "faq-bot@1.0.0" in (out / "faq-bot" / "1.0.0" / "index.html").read_text()
    report = team.build_site(out, title="Renamed")
    assert report.written == len([p for p in site_files(out) if p.endswith(".html")])  # every page, no data file


def test_an_unusable_cache_directory_only_costs_time(team: Registry, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(blocker))
    team.build_site(tmp_path / "a")
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "fresh-cache"))
    team.build_site(tmp_path / "b")
    assert site_files(tmp_path / "a") == site_files(tmp_path / "b")
    assert blocker.read_text() == "x"


def test_timeline_marks_clears_and_actions_it_does_not_know() -> None:
    """Stage moves by actions added later (the lifecycle's `clear`, anything new) are drawn, not dropped."""
    from modelreg.log import Event
    from modelreg.site import charts
    from modelreg.site.data import Holder, ModelData, VersionData

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    versions = [VersionData("m", "1", a, 0), VersionData("m", "2", b, 1)]
    events = [
        Event("register", "m", "x", version="1", to=a, time="2024-01-01T00:00:00.000000Z", id="1"),
        Event("promote", "m", "x", version="1", stage="production", to=a, time="2024-01-02T00:00:00.000000Z", id="2"),
        Event("promote", "m", "x", version="2", stage="production", from_=a, to=b, reason="<b>better</b>",
              time="2024-01-03T00:00:00.000000Z", id="3"),
        Event("clear", "m", "oncall", version="2", stage="production", from_=b, to=None, reason="incident",
              time="2024-01-04T00:00:00.000000Z", id="4"),
        Event("quarantine", "m", "bot", version="1", stage="shadow", to=a, time="2024-01-05T00:00:00.000000Z", id="5"),
    ]
    t = charts.timeline(ModelData("m", versions, events, {"shadow": Holder("shadow", a, "1")}), ("production",))
    assert t is not None and t.points == 4
    assert [lane.stage for lane in t.lanes] == ["production", "shadow"]
    marks = [(m.action, m.shape) for lane in t.lanes for m in lane.marks]
    assert marks == [("promote", "up"), ("promote", "up"), ("clear", "cross"), ("quarantine", "dot")]
    production = t.lanes[0]
    assert [s.version for s in production.segments] == ["1", "2"]  # nothing is drawn after the clear
    assert "cleared production by oncall — incident" in production.marks[2].title
    assert "<b>better</b>" in production.marks[1].title  # raw here; the template escapes it


def test_script_json_is_inert_in_a_script_element() -> None:
    text = render.script_json({"k": "</script><!-- \u2028\u2029 & <b>"})
    assert text == '{"k":"\\u003c/script\\u003e\\u003c!-- \\u2028\\u2029 \\u0026 \\u003cb\\u003e"}'
    assert json.loads(text) == {"k": "</script><!-- \u2028\u2029 & <b>"}


def test_a_new_grandchild_rewrites_the_grandparents_lineage(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    team.register("faq-bot-tiny", "0.0.1", artifacts=["checkpoint=s3://b/tiny.bin"], parents=["faq-bot-small@0.2.0"],
                  relation="quantization", check=False, new_model=True, actor="tester")
    team.build_site(out)
    for page in ("llama-base/3.1.0", "faq-bot/1.2.0", "faq-bot-small/0.2.0"):
        assert "faq-bot-tiny@0.0.1" in (out / page / "index.html").read_text(), page


def test_model_fields_and_ratings_are_shown(team: Registry, tmp_path: Path) -> None:
    out = tmp_path / "site"
    team.build_site(out)
    model = (out / "faq-bot" / "index.html").read_text()
    assert '<p class="description">Answers customer FAQs &lt;b&gt;</p>' in model
    assert "<dt>task</dt><dd>qa</dd>" in model and "<dt>owner</dt><dd>nlp-team</dd>" in model
    assert "Answers customer FAQs &lt;b&gt;" in (out / "index.html").read_text()
    assert "<dt>rating</dt><dd>4.5 / 5 from 2 ratings</dd>" in (out / "faq-bot" / "1.2.0" / "index.html").read_text()
    doc = read_json(out / "api" / "faq-bot.json")
    assert doc["fields"] == {"description": "Answers customer FAQs <b>", "task": "qa", "owner": "nlp-team"}
    listed = {v["version"]: v for v in read_json(out / "api" / "faq-bot" / "versions.json")["versions"]}
    assert listed["1.2.0"]["rating"] == {"avg": 4.5, "count": 2}
    assert read_json(out / "api" / "models.json")["models"][0]["description"] == "Answers customer FAQs <b>"
