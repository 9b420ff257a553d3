"""register --from-file reads the user's file: a symlink is fine, an oversized file is a usage error."""

from __future__ import annotations

from tests.torture.run import run_cli

from modelreg.registry import Registry


def test_from_file_symlink_and_size(tmp_path):
    reg = Registry.init(tmp_path / "p")
    real = tmp_path / "real.yaml"
    real.write_text("name: m\nversion: '1.0'\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    code, out, err, esc = run_cli(["-R", str(reg.path), "register", "--from-file", str(link), "--actor", "t"])
    assert (code, esc) == (0, None), err
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: m\nversion: '2.0'\ndescription: " + b"x" * (1 << 20) + b"\n")
    code, out, err, esc = run_cli(["-R", str(reg.path), "register", "--from-file", str(big), "--actor", "t"])
    assert code == 2 and "larger than" in err and esc is None
