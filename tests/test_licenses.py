import pytest

from modelreg import licenses
from modelreg.errors import UsageError
from modelreg.licenses import (
    CATEGORIES,
    LICENSES,
    Finding,
    check_derivative,
    check_project,
    is_known,
    normalize,
)

C, I, U = "compatible", "incompatible", "unknown"


@pytest.mark.parametrize(
    "parent, child, expected",
    [
        # permissive / public-domain parents accept anything
        ("MIT", "proprietary", C),
        ("Apache-2.0", "GPL-3.0-only", C),
        ("BSD-3-Clause", "CC-BY-NC-4.0", C),
        ("CC-BY-4.0", "llama3", C),
        ("Unlicense", "MIT", C),
        # non-commercial: the child may not allow commercial use
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0", C),
        ("CC-BY-NC-4.0", "MIT", I),
        ("CC-BY-NC-4.0", "Apache-2.0", I),
        ("CC-BY-NC-4.0", "proprietary", I),
        ("CC-BY-NC-4.0", "openrail-m", I),
        # share-alike
        ("CC-BY-SA-4.0", "CC-BY-SA-4.0", C),
        ("CC-BY-SA-4.0", "GPL-3.0-only", C),
        ("CC-BY-SA-4.0", "CC-BY-4.0", I),
        ("CC-BY-SA-4.0", "MIT", I),
        # strong copyleft, with the documented upgrades
        ("GPL-3.0-only", "GPL-3.0-only", C),
        ("GPL-3.0-only", "MIT", I),
        ("GPL-3.0-only", "GPL-2.0-only", I),
        ("GPL-3.0-only", "GPL-3.0-or-later", I),
        ("GPL-2.0-only", "GPL-3.0-only", I),
        ("GPL-2.0-or-later", "GPL-3.0-only", C),
        ("GPL-2.0-or-later", "GPL-2.0-only", C),
        ("GPL-3.0-or-later", "GPL-3.0-only", C),
        ("GPL-3.0", "GPL-3.0-only", C),  # deprecated alias
        ("gpl-2.0+", "GPL-3.0-or-later", C),
        # weak copyleft: the modified model stays under it, or converts to GPL
        ("LGPL-2.1-only", "LGPL-2.1-only", C),
        ("LGPL-2.1-only", "GPL-2.0-or-later", C),
        ("LGPL-3.0-only", "GPL-3.0-only", C),
        ("LGPL-3.0-only", "GPL-2.0-only", I),
        ("LGPL-3.0-only", "MIT", I),
        ("MPL-2.0", "MPL-2.0", C),
        ("MPL-2.0", "GPL-3.0-only", U),
        ("MPL-2.0", "Apache-2.0", I),
        # restricted use: the restrictions travel with the model
        ("llama3", "llama3", C),
        ("llama3", "MIT", I),
        ("llama3", "llama3.1", U),
        ("openrail-m", "openrail-m", C),
        ("openrail-m", "creativeml-openrail-m", U),
        ("creativeml-openrail-m", "Apache-2.0", I),
        ("gemma", "gemma", C),
        ("gemma", "llama3", I),
        # proprietary: only the holder can say
        ("proprietary", "proprietary", U),
        ("proprietary", "MIT", U),
        # missing or unknown identifiers
        (None, "MIT", U),
        ("", "MIT", U),
        ("WTFPL-ish", "MIT", U),
        ("MIT", None, U),
        ("GPL-3.0-only", "not-a-license", U),
    ],
)
def test_derivative_license(parent, child, expected):
    [finding] = check_derivative(child, [("base-model@1.0", parent)])
    assert finding.outcome == expected, finding.reason
    assert finding.subject == "base-model@1.0"
    assert finding.reason and "\n" not in finding.reason


def test_restricted_use_reason_says_restrictions_must_be_passed_on():
    [finding] = check_derivative("MIT", [("llama-3-8b", "llama3")])
    assert finding.outcome == I
    assert "use restrictions must be passed on" in finding.reason


def test_one_finding_per_parent_in_order():
    findings = check_derivative(
        "GPL-3.0-only",
        [("encoder", "MIT"), ("decoder", "CC-BY-NC-4.0"), ("tokenizer", None)],
    )
    assert [(f.subject, f.outcome) for f in findings] == [
        ("encoder", C),
        ("decoder", I),
        ("tokenizer", U),
    ]
    assert check_derivative("MIT", []) == []


@pytest.mark.parametrize(
    "model, project, expected",
    [
        ("MIT", "proprietary", C),
        ("Apache-2.0", "GPL-2.0-only", C),
        ("BSD-2-Clause", None, C),
        ("Unlicense", "whatever-1.0", C),
        ("GPL-3.0-only", "MIT", I),
        ("GPL-3.0-only", "proprietary", I),
        ("GPL-3.0-only", "GPL-3.0-only", C),
        ("GPL-3.0-only", "GPL-3.0-or-later", C),
        ("GPL-3.0-only", "GPL-2.0-only", I),
        ("GPL-2.0-only", "GPL-3.0-only", I),
        ("GPL-2.0-or-later", "GPL-3.0-only", C),
        ("CC-BY-SA-4.0", "Apache-2.0", I),
        ("CC-BY-SA-4.0", "GPL-3.0-only", C),
        ("CC-BY-NC-4.0", "proprietary", I),
        ("CC-BY-NC-4.0", "MIT", I),
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0", C),
        ("LGPL-2.1-only", "proprietary", C),
        ("MPL-2.0", "MIT", C),
        ("LGPL-3.0-only", "GPL-2.0-only", I),
        ("llama3", "llama3", C),
        ("llama3", "proprietary", U),
        ("gemma", "Apache-2.0", U),
        ("proprietary", "proprietary", U),
        (None, "MIT", U),
        ("made-up", "MIT", U),
        ("GPL-3.0-only", None, U),
        ("CC-BY-NC-4.0", "made-up", U),
    ],
)
def test_model_in_project(model, project, expected):
    finding = check_project(model, project)
    assert isinstance(finding, Finding)
    assert finding.outcome == expected, finding.reason
    assert finding.reason and "\n" not in finding.reason


def test_project_reasons_name_the_problem():
    assert "copyleft" in check_project("GPL-3.0-only", "MIT").reason
    assert "commercial" in check_project("CC-BY-NC-4.0", "proprietary").reason
    assert check_project("gpl-3.0", "MIT").subject == "GPL-3.0-only"


@pytest.mark.parametrize(
    "given, canonical",
    [
        ("mit", "MIT"),
        ("  Apache-2.0 ", "Apache-2.0"),
        ("APACHE-2.0", "Apache-2.0"),
        ("gpl-3.0", "GPL-3.0-only"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("LGPL-3.0", "LGPL-3.0-only"),
        ("GPL-3.0+", "GPL-3.0-or-later"),
        ("Llama3.1", "llama3.1"),
        ("CreativeML-OpenRAIL-M", "creativeml-openrail-m"),
        ("PROPRIETARY", "proprietary"),
    ],
)
def test_normalize(given, canonical):
    assert normalize(given) == canonical
    assert is_known(given)


def test_unknown_identifiers():
    assert not is_known("Apache-3.0")
    assert not is_known("")
    assert not is_known(None)
    with pytest.raises(UsageError) as exc:
        normalize("Apache-2")
    assert exc.value.exit_code == 2
    assert "unknown license identifier 'Apache-2'" in exc.value.message
    assert "Apache-2.0" in exc.value.message  # suggestion


def test_every_license_is_documented():
    required = {
        "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MPL-2.0",
        "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
        "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
        "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "Unlicense", "proprietary",
        "llama3", "llama3.1", "openrail-m", "creativeml-openrail-m", "gemma",
    }
    assert required <= set(LICENSES)
    for lic in LICENSES.values():
        assert lic.category in CATEGORIES
        assert lic.notes
        assert licenses.DERIVATIVE_RULES[lic.category]
        assert licenses.PROJECT_RULES[lic.category]
    assert LICENSES["CC-BY-NC-4.0"].commercial_use is False
    assert LICENSES["llama3"].commercial_use is True
    assert "700M" in LICENSES["llama3"].notes


def test_relicensing_tables_only_name_known_licenses():
    for table in (licenses.RELICENSE_TO, licenses.MAYBE_RELICENSE_TO, licenses.COMBINES_WITH, licenses.PROJECT_CONFLICTS):
        for key, targets in table.items():
            assert key in LICENSES
            assert set(targets) <= set(LICENSES)
