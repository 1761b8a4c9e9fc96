"""`[local-mme]`: the tool behind `./pants run` on a `triton_mme_endpoint`."""

from __future__ import annotations

from triton_mme.subsystems.tool import ScriptToolBase


class LocalMmeSubsystem(ScriptToolBase):
    options_scope = "local-mme"
    name = "local MME"
    help = (
        "The local SageMaker multi-model endpoint's front service (`triton_mme_endpoint` "
        "targets): it fetches tarballs from a directory or S3 (boto3), and loads and evicts them "
        "in a Triton container as SageMaker does."
    )

    default_resolve = "boto3"
    default_requirements = ("boto3",)
    main_module = "local_mme.server"
    scripts = ("local_mme/", "triton_container.py", "config_platform.py")
