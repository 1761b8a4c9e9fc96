from __future__ import annotations

from triton_mme.util_rules.env.channel import expand_python_prefix


def test_pyenv_placeholder_follows_pyenv_root_then_home() -> None:
    configured = "<PYENV>/versions/3.11.7"
    assert (
        expand_python_prefix(configured, {"PYENV_ROOT": "/opt/pyenv", "HOME": "/home/a"})
        == "/opt/pyenv/versions/3.11.7"
    )
    assert expand_python_prefix(configured, {"HOME": "/home/a"}) == "/home/a/.pyenv/versions/3.11.7"


def test_plain_paths_are_kept() -> None:
    assert expand_python_prefix("/usr/local/python3.11", {}) == "/usr/local/python3.11"
