"""license-check --project-license PATH: the project's license detected offline from a LICENSE file, a
directory holding one, or a pyproject.toml (modelreg.licensefile), and what it refuses to guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg.errors import UsageError
from modelreg.licensefile import detect, from_text

MIT = """MIT License

Copyright (c) 2024 Example Corp

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""

APACHE = """
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION
"""

BSD3 = """Copyright (c) 2024, Example
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice.
3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.
"""

BSD2 = BSD3.split("3. Neither")[0]

GPL3 = """                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
...
  The GNU General Public License does not permit incorporating your program
into proprietary programs.  If your program is a subroutine library, you
may consider it more useful to permit linking proprietary applications with
the library.  If this is what you want to do, use the GNU Lesser General
Public License instead of this License.
"""

LGPL3 = """                   GNU LESSER GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

  This version of the GNU Lesser General Public License incorporates
the terms and conditions of version 3 of the GNU General Public
License, supplemented by the additional permissions listed below.
"""

ISC = """ISC License

Copyright (c) 2024 Example

Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.
"""


@pytest.mark.parametrize("text, want", [
    (MIT, "MIT"), (APACHE, "Apache-2.0"), (BSD3, "BSD-3-Clause"), (BSD2, "BSD-2-Clause"), (GPL3, "GPL-3.0-only"),
    (LGPL3, "LGPL-3.0-only"), (ISC, "ISC"),
    ("MOZILLA PUBLIC LICENSE\nVersion 2.0\n", "MPL-2.0"),
    ("This is free and unencumbered software released into the public domain.\n", "Unlicense"),
    ("META LLAMA 3 COMMUNITY LICENSE AGREEMENT\n", "llama3"),
    ("Llama 3.1 Community License Agreement\n", "llama3.1"),
    ("// SPDX-License-Identifier: GPL-2.0-or-later\nwhatever follows\n", "GPL-2.0-or-later"),
])
def test_common_texts_are_recognised(text, want):
    assert from_text(text).id == want


@pytest.mark.parametrize("text, needle", [
    ("All rights reserved. Do not copy.\n", "could not recognise"),
    (MIT + "\n\n" + APACHE, "more than one license text (Apache-2.0, MIT)"),
    ("SPDX-License-Identifier: MIT OR Apache-2.0\n", "expression"),
    ("SPDX-License-Identifier: WTFPL\n", "does not know"),
])
def test_what_it_will_not_guess(text, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        from_text(text, "LICENSE")


def test_real_license_texts_of_this_machine():
    """The Debian copies of the full texts, where they exist."""
    base = Path("/usr/share/common-licenses")
    expected = {"Apache-2.0": "Apache-2.0", "GPL-2": "GPL-2.0-only", "GPL-3": "GPL-3.0-only",
                "LGPL-2.1": "LGPL-2.1-only", "LGPL-3": "LGPL-3.0-only", "MPL-2.0": "MPL-2.0", "BSD": "BSD-3-Clause"}
    present = {k: v for k, v in expected.items() if (base / k).is_file()}
    if not present:
        pytest.skip("no /usr/share/common-licenses")
    assert {k: detect(base / k).id for k in present} == present
    for other in ("GPL-1", "Artistic", "GFDL-1.3"):  # licenses it does not know are not forced into one it does
        if (base / other).is_file():
            with pytest.raises(UsageError):
                detect(base / other)


def test_directories_and_pyproject(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "LICENSE.txt").write_text(MIT)
    assert detect(d).id == "MIT" and detect(d).source.endswith("LICENSE.txt")
    (d / "COPYING").write_text(APACHE)
    with pytest.raises(UsageError, match="different licenses"):
        detect(d)
    (d / "COPYING").unlink()
    dual = tmp_path / "dual"
    dual.mkdir()
    (dual / "LICENSE-MIT").write_text(MIT)
    (dual / "LICENSE-APACHE").write_text(APACHE)
    with pytest.raises(UsageError, match="different licenses"):
        detect(dual)
    py = tmp_path / "py"
    py.mkdir()
    (py / "pyproject.toml").write_text('[project]\nname = "x"\nlicense = "apache-2.0"\n')
    assert detect(py).id == "Apache-2.0" and detect(py / "pyproject.toml").how == "pyproject"
    (py / "pyproject.toml").write_text('[project]\nname = "x"\nlicense = {file = "LICENSE.md"}\n')
    (py / "LICENSE.md").write_text(BSD3)
    assert detect(py / "pyproject.toml").id == "BSD-3-Clause"
    (py / "LICENSE.md").unlink()
    (py / "pyproject.toml").write_text('[project]\nname = "x"\nlicense = {text = "MIT"}\n')
    assert detect(py).id == "MIT"
    (py / "pyproject.toml").write_text('[tool.poetry]\nlicense = "GPL-3.0-or-later"\n')
    assert detect(py).id == "GPL-3.0-or-later"
    (py / "pyproject.toml").write_text(
        '[project]\nclassifiers = ["License :: OSI Approved :: MIT License", "Programming Language :: Python"]\n')
    assert detect(py).id == "MIT" and detect(py).how == "classifier"
    (py / "pyproject.toml").write_text('[project]\nlicense = "MIT OR Apache-2.0"\n')
    with pytest.raises(UsageError, match="expression"):
        detect(py)
    (py / "pyproject.toml").write_text("[project\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        detect(py)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no LICENSE"):
        detect(tmp_path / "empty")
    with pytest.raises(UsageError, match="no such file"):
        detect(tmp_path / "nowhere")


def test_license_check_takes_a_path(cli, project):
    assert cli("register", "base", "1.0", "--license", "GPL-3.0-only")[0] == 0
    assert cli("register", "ft", "1.0", "--license", "GPL-3.0-only", "--parent", "base@1.0", "--new-model")[0] == 0
    (project / "LICENSE").write_text(MIT)
    code, out, err = cli("license-check", "ft@1.0", "--project-license", "LICENSE", "--json")
    doc = json.loads(out)
    assert code == 5 and doc["project_license"] == "MIT"
    assert doc["project_license_source"] == {"path": "LICENSE", "how": "text"}
    assert any(f["kind"] == "project" and f["outcome"] == "incompatible" for f in doc["findings"])
    code, out, _ = cli("license-check", "ft@1.0", "--project-license", ".")  # the directory holding it
    assert code == 5 and "project license MIT" in out
    (project / "LICENSE").write_text(GPL3)
    code, out, _ = cli("license-check", "ft@1.0", "--project-license", str(project), "--json")
    assert code == 0 and json.loads(out)["project_license"] == "GPL-3.0-only"
    (project / "pyproject.toml").write_text('[project]\nlicense = "GPL-3.0-or-later"\n')
    code, out, _ = cli("license-check", "ft@1.0", "--project-license", "pyproject.toml", "--json")
    assert code == 0 and json.loads(out)["project_license"] == "GPL-3.0-or-later"
    # an identifier is still an identifier; an undetectable file is a usage error naming what to do
    assert cli("license-check", "ft@1.0", "--project-license", "MIT")[0] == 5
    (project / "NOTICE").write_text("Proprietary. All rights reserved.\n")
    code, out, err = cli("license-check", "ft@1.0", "--project-license", "NOTICE", "--json")
    assert code == 2 and "could not recognise" in err and json.loads(out)["error"]["code"] == 2
    code, _, err = cli("license-check", "ft@1.0", "--project-license", "nowhere/LICENSE")
    assert code == 2 and "no such file" in err
