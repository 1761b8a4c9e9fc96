"""`triton_mme_endpoint`: a local SageMaker multi-model endpoint, started with `pants run`."""

from __future__ import annotations

from pants.engine.target import COMMON_TARGET_FIELDS, IntField, StringField, Target
from pants.util.strutil import help_text


class ModelSourceField(StringField):
    alias = "model_source"
    default = "dist"
    help = help_text(
        """
        Where the endpoint finds tarballs: a directory relative to the repository root (`dist`,
        where `pants package` writes `<model_name>_<version>.tar.gz`), or the S3 prefix your
        SageMaker endpoint reads, `s3://<bucket>/<prefix>` (its model data URL). A request's
        TargetModel is the tarball's name as `publish` uploads it, e.g. `my_model_1.0.tar.gz`:
        its path under the S3 prefix, or its file name anywhere below the directory.

        S3 credentials come from the standard AWS chain (AWS_PROFILE,
        AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws).
        """
    )


class S3EndpointUrlField(StringField):
    alias = "s3_endpoint_url"
    help = (
        "The S3 endpoint for an S3-compatible store (e.g. `http://127.0.0.1:9000`); AWS if unset."
    )


class S3RegionField(StringField):
    alias = "s3_region"
    help = "The bucket's AWS region; the AWS configuration's default if unset."


class MaxModelsField(IntField):
    alias = "max_models"
    default = 0
    help = help_text(
        """
        How many models may be loaded at once; loading one more first unloads the least recently
        used (as SageMaker does when an instance runs out of memory). 0: no limit. Set it to the
        number of your models an instance holds to see evictions and reloads before deploying.
        """
    )


class MaxBytesField(IntField):
    alias = "max_bytes"
    default = 0
    help = help_text(
        """
        How many bytes of extracted model directories may be loaded at once (a stand-in for the
        instance's memory); the least recently used models are unloaded to make room. 0: no
        limit.
        """
    )


class PortField(IntField):
    alias = "port"
    default = 8080
    help = "The local port of the endpoint (127.0.0.1 only). 0 picks a free port."


class EndpointNameField(StringField):
    alias = "endpoint_name"
    default = "local-mme"
    help = "The EndpointName clients pass to `invoke_endpoint`, as on SageMaker."


class TritonMmeEndpointTarget(Target):
    alias = "triton_mme_endpoint"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ModelSourceField,
        S3EndpointUrlField,
        S3RegionField,
        MaxModelsField,
        MaxBytesField,
        PortField,
        EndpointNameField,
    )
    help = help_text(
        """
        A local SageMaker multi-model endpoint (MME) that serves your published tarballs exactly
        as the cloud endpoint will: `pants run` on this target starts Triton (the `[triton]`
        image) in Docker in SageMaker mode, behind a service that answers SageMaker's
        `invoke_endpoint` API. The first request for a TargetModel downloads the tarball,
        checks and extracts it, and loads it; later requests hit the loaded model; a budget
        (`max_models`, `max_bytes`) unloads the least recently used. Metrics like CloudWatch's
        MME metrics are served at `/metrics` and printed on exit.

        See docs/local-mme.md.
        """
    )
