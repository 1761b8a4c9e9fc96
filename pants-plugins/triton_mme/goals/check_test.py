from __future__ import annotations

from triton_mme.goals.check import version_folder_of


def test_version_folder_of() -> None:
    assert version_folder_of("models/x/1/model.py") == "models/x/1"
    assert version_folder_of("models/x/12/util.py") == "models/x/12"
    assert version_folder_of("models/x/tests/test_x.py") is None
    assert version_folder_of("models/x/v1/model.py") is None
