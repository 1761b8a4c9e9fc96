from __future__ import annotations

import pytest
from pants.testutil.option_util import create_subsystem
from triton_mme.subsystems.dvc import DvcSubsystem


def test_credential_locations_pass() -> None:
    dvc = create_subsystem(DvcSubsystem, env_vars=["AWS_PROFILE", "AWS_REGION=eu-west-1"])
    assert dvc.checked_env_vars() == ("AWS_PROFILE", "AWS_REGION=eu-west-1")


@pytest.mark.parametrize("entry", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN=abc"])
def test_credentials_in_env_vars_are_refused(entry: str) -> None:
    dvc = create_subsystem(DvcSubsystem, env_vars=["AWS_PROFILE", entry])
    with pytest.raises(ValueError, match="must not be passed as environment variables"):
        dvc.checked_env_vars()
