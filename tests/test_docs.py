"""Every shell and Python block in README.md and docs/*.md runs as written (see tests/docblocks.py).

One test per page: its blocks run in order in a throw-away git project with a fresh
registry. The conventions (norun, ``# exit N``, ``doctest:`` directives) are in
CONTRIBUTING.md, "Writing docs".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import docblocks
from docblocks import DocError, Project, make_project, parse, run_block

PAGES = docblocks.pages()


@pytest.fixture(scope="session")
def docserver():
    """One fork server per test session (tests/docserver.py): `modelreg` in a block starts in ms."""
    import shutil

    proc, path = docblocks.start_server()
    yield path
    proc.kill()
    proc.wait()
    shutil.rmtree(Path(path).parent, ignore_errors=True)


# The test servers stand in for remote stores but listen on 127.0.0.1, which modelreg refuses
# to contact for a URI the registry names unless the user allows it (docs/security.md).
LOOPBACK = {"MODELREG_ALLOW_PRIVATE_NETWORK": "1"}


def _services(request: pytest.FixtureRequest):
    def start(name: str, project: Project) -> dict[str, str]:
        if name == "s3":
            request.getfixturevalue("s3")  # moto server reset, bucket created, AWS_* and endpoint in os.environ
            import os

            from servers import BUCKET

            keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "MODELREG_S3_ENDPOINT_URL")
            return {**{k: os.environ[k] for k in keys if k in os.environ}, "DOC_S3_BUCKET": BUCKET, **LOOPBACK}
        if name == "http":
            url, root = request.getfixturevalue("http_server")
            return {"DOC_HTTP_URL": url, "DOC_HTTP_ROOT": str(root), **LOOPBACK}
        raise DocError(f"unknown service {name!r} (s3 or http)")

    return start


def run_page(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    blocks = parse(page)
    runs = [b for b in blocks if not b.norun and b.lang in docblocks.RUN_SH + docblocks.RUN_PY + ("console",)]
    if not runs:  # only YAML/JSON to parse (or nothing): no project needed
        return [f"{b.where} {b.lang}: {docblocks.check_only(b)}" for b in blocks]
    project = make_project(tmp_path, request.getfixturevalue("docserver"))
    return [f"{b.where} {b.lang}: {run_block(b, project, _services(request))}" for b in blocks]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_runs_as_written(page, tmp_path, request):
    problems = [p for b in parse(page) for p in docblocks.lint(b)]
    assert not problems, "\n".join(problems)
    try:
        done = run_page(page, tmp_path, request)
    except DocError as exc:
        pytest.fail(str(exc), pytrace=False)
    print("\n".join(done))


# ------------------------------------------------------------------ the runner itself
def page(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "page.md"
    p.write_text(textwrap.dedent(text))
    return p


def outcome(tmp_path: Path, text: str, request: pytest.FixtureRequest) -> str:
    try:
        run_page(page(tmp_path, text), tmp_path / "run", request)
    except DocError as exc:
        return str(exc)
    return "ok"


def test_a_failing_command_fails_the_page(tmp_path, request):
    assert "documented 0" in outcome(tmp_path, """\
        ```sh
        modelreg resolve nobody@1
        echo never
        ```
        """, request)


def test_exit_comments_are_checked_exactly(tmp_path, request):
    assert outcome(tmp_path, """\
        ```sh
        modelreg resolve nobody@1   # exit 3: no such model
        modelreg register m 1 \\
            -p lr=0.90
        modelreg promote m@1 nowhere  # exit 2
        ```
        """, request) == "ok"
    assert "expected exit 2, got 3" in outcome(tmp_path, """\
        ```sh
        modelreg resolve nobody@1   # exit 2
        ```
        """, request)


def test_console_blocks_check_echo_and_exit_comments(tmp_path, request):
    ok = """\
        ```console
        $ modelreg register m 1
        Registered m@1
        $ modelreg resolve m@9
        modelreg: error: m has no version '9'
        $ echo $?
        3
        $ modelreg search --where 'a >== 1'   # exit 2
        ```
        """
    assert outcome(tmp_path, ok, request) == "ok"
    assert "expected exit 2, got 3" in outcome(tmp_path, ok.replace("        3\n", "        2\n"), request)


def test_directives_setup_write_args_and_exit(tmp_path, request):
    assert outcome(tmp_path, """\
        <!-- doctest: setup
        mkdir -p models && echo weights > models/w.bin
        -->
        <!-- doctest: write .modelreg/config.yaml -->
        ```yaml
        format: 1
        stages: [dev, prod]
        ```

        ```sh
        modelreg register m 1 -a checkpoint=models/w.bin
        modelreg promote m@1 dev
        ```

        <!-- doctest: args m 1 -->
        <!-- doctest: exit 4 -->
        ```sh
        #!/bin/sh
        modelreg resolve "$1@$2" >/dev/null && exit 4
        ```

        <!-- a Python session -->
        ```python
        from modelreg import Registry
        assert Registry.open().resolve("m@dev").version == "1"
        ```
        """, request) == "ok"


def test_yaml_blocks_are_parsed_and_configs_checked(tmp_path, request):
    assert "not valid YAML" in outcome(tmp_path, "```yaml\na: [1\n```\n", request)
    bad = "```yaml\nformat: 1\nstages: [a]\npolicy:\n  gates:\n    b: {}\n```\n"
    assert "not a valid config.yaml" in outcome(tmp_path, bad, request)
    assert outcome(tmp_path, "```yaml\nname: ci\non: {push: {}}\n```\n", request) == "ok"


def test_lint_norun_needs_a_reason_and_directives_are_known():
    blocks = parse_text("```sh norun\nrm -rf /\n```\n\n<!-- doctest: sertup\nx\n-->\n```sh\ntrue\n```\n")
    problems = [p for b in blocks for p in docblocks.lint(b)]
    assert any("needs an HTML comment above it saying why" in p for p in problems)
    assert any("unknown directive 'doctest: sertup'" in p for p in problems)
    fine = parse_text("<!-- needs a cloud bucket -->\n```sh norun\naws s3 ls\n```\n")
    assert [p for b in fine for p in docblocks.lint(b)] == []


def test_requires_skips_a_block_without_its_tool(tmp_path, request):
    assert outcome(tmp_path, "<!-- doctest: requires no-such-tool-here -->\n```sh\nno-such-tool-here\n```\n",
                   request) == "ok"


def parse_text(text: str) -> list[docblocks.Block]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.md"
        p.write_text(text)
        return parse(p)


def test_needs_s3_and_http_give_a_block_real_servers(tmp_path, request):
    assert outcome(tmp_path, """\
        <!-- doctest: needs s3 -->
        <!-- doctest: needs http -->
        ```sh
        echo weights > w.bin
        python -c "import boto3, os; boto3.client('s3', endpoint_url=os.environ['MODELREG_S3_ENDPOINT_URL']).upload_file('w.bin', os.environ['DOC_S3_BUCKET'], 'w.bin')"
        cp w.bin "$DOC_HTTP_ROOT/w.bin"
        modelreg register m 1 -a "model=s3://$DOC_S3_BUCKET/w.bin" -a "copy=$DOC_HTTP_URL/w.bin" --hash
        modelreg verify m@1 --hash
        modelreg register m 2 -a "s3://$DOC_S3_BUCKET/missing.bin"   # exit 3
        ```
        """, request) == "ok"
