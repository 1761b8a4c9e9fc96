"""`[triton-client]`: the tool that serves models in a Triton container for `test`, `run` and
`record-outputs`."""

from __future__ import annotations

from triton_mme.subsystems.tool import ScriptToolBase


class TritonClientSubsystem(ScriptToolBase):
    options_scope = "triton-client"
    name = "Triton client"
    help = (
        "The runner behind `test`, `run` and `record-outputs` on models: it starts a Triton "
        "container for a batch of models, loads them, and sends each test case with tritonclient "
        "(pytest files run with pytest)."
    )

    default_resolve = "triton-client"
    default_requirements = ("tritonclient[http,grpc]", "numpy", "pytest")
    main_module = "run_triton_tests"
    scripts = (
        "run_triton_tests.py",
        "triton_server.py",
        "triton_container.py",
        "triton_cases.py",
        "record_cases.py",
        "triton_pytest_plugin.py",
        "model_client.py",
    )
