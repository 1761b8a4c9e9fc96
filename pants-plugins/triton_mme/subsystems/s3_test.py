from __future__ import annotations

from typing import Any

import pytest
from pants.testutil.option_util import create_subsystem
from triton_mme.subsystems.s3 import (
    MIB,
    PublishDestinationError,
    S3Destination,
    TritonPublishSubsystem,
)

DESTINATIONS = {
    "staging": {"bucket": "acme-models-staging", "prefix": "/mme/", "region": "eu-west-1"},
    "production": {
        "bucket": "acme-models",
        "prefix": "mme",
        "region": "eu-west-1",
        "sse": "aws:kms",
        "kms_key_id": "alias/models",
    },
}


def subsystem(destination: str | None, destinations: dict[str, Any] = DESTINATIONS):
    return create_subsystem(
        TritonPublishSubsystem,
        destinations=destinations,
        destination=destination,
        multipart_threshold_mib=64,
        part_size_mib=2,
        max_attempts=0,
        extra_env_vars=[],
        resolve="boto3",
    )


def test_chosen_destination_is_parsed() -> None:
    staging = subsystem("staging").chosen_destination()
    assert staging == S3Destination(
        name="staging", bucket="acme-models-staging", prefix="mme", region="eu-west-1"
    )
    assert staging.uri_for("fraud_1.0.tar.gz") == "s3://acme-models-staging/mme/fraud_1.0.tar.gz"

    production = subsystem("production").chosen_destination()
    assert (production.sse, production.kms_key_id) == ("aws:kms", "alias/models")


def test_bucket_root_destination_has_no_prefix() -> None:
    root = S3Destination.parse("root", {"bucket": "acme-models", "endpoint_url": "http://x:1"})
    assert root.key_for("m_1.tar.gz") == "m_1.tar.gz"
    assert root.endpoint_url == "http://x:1"


def test_unknown_destination_lists_known_ones() -> None:
    with pytest.raises(PublishDestinationError) as error:
        subsystem("prod").chosen_destination()
    assert "Unknown publish destination 'prod'" in str(error.value)
    assert "Known destinations: production, staging" in str(error.value)


def test_missing_choice_names_the_env_var() -> None:
    with pytest.raises(PublishDestinationError, match="PANTS_TRITON_PUBLISH_DESTINATION"):
        subsystem(None).chosen_destination()
    with pytest.raises(PublishDestinationError, match="none are configured"):
        subsystem("staging", destinations={}).chosen_destination()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"bucket": "ok-bucket", "regoin": "x"}, "unknown setting"),
        ({"prefix": "mme"}, "needs a `bucket`"),
        ({"bucket": "Bad_Bucket"}, "needs a `bucket`"),
        ({"bucket": "ok-bucket", "sse": "kms"}, "use one of AES256"),
        ({"bucket": "ok-bucket", "kms_key_id": "alias/k"}, 'without `sse = "aws:kms"`'),
        ({"bucket": "ok-bucket", "region": 3}, "must be a string"),
        ("s3://ok-bucket", "must be a table"),
    ],
)
def test_invalid_destinations_are_explained(raw: Any, message: str) -> None:
    with pytest.raises(PublishDestinationError, match=message):
        S3Destination.parse("staging", raw)


def test_transfer_args_are_bytes_with_s3_minimums() -> None:
    assert subsystem("staging").transfer_args() == (
        f"--multipart-threshold={64 * MIB}",
        f"--part-size={5 * MIB}",
        "--max-attempts=1",
    )
