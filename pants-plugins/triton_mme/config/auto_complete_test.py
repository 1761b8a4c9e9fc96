from __future__ import annotations

from textwrap import dedent

from triton_mme.config.auto_complete import AutoCompleteMethod, find_auto_complete_config
from triton_mme.testutil import QA_AUTO_COMPLETE

PATH = "models/m/1/model.py"


def test_triton_qa_auto_complete_model() -> None:
    assert find_auto_complete_config(PATH, QA_AUTO_COMPLETE) == AutoCompleteMethod(
        PATH, 9, ("set_max_batch_size", "add_input", "add_output")
    )


def test_a_model_without_it() -> None:
    source = "class TritonPythonModel:\n    def execute(self, requests):\n        return []\n"
    assert find_auto_complete_config(PATH, source) is None
    # Only the method of TritonPythonModel counts, and a file that does not parse has none.
    assert find_auto_complete_config(PATH, "def auto_complete_config(c):\n    return c\n") is None
    assert find_auto_complete_config(PATH, "class TritonPythonModel(:\n") is None


def test_inherited_or_assigned() -> None:
    base = dedent(
        """\
        class Base:
            @classmethod
            def auto_complete_config(cls, config):
                config.set_dynamic_batching()
                return config


        class TritonPythonModel(Base):
            pass
        """
    )
    assert find_auto_complete_config(PATH, base) == AutoCompleteMethod(
        PATH, 3, ("set_dynamic_batching",)
    )
    imported = "from common import Model\n\nclass TritonPythonModel(Model):\n    pass\n"
    found = find_auto_complete_config(PATH, imported)
    assert found == AutoCompleteMethod(PATH, 3, inherited_from="Model")
    assert found.where == (
        "model.py's class TritonPythonModel, which derives from `Model` and may inherit an "
        "auto_complete_config from it (models/m/1/model.py:3)"
    )
    assigned = (
        "def fill(c):\n    return c\n\n"
        "class TritonPythonModel:\n    auto_complete_config = staticmethod(fill)\n"
    )
    assert find_auto_complete_config(PATH, assigned) == AutoCompleteMethod(PATH, 5)
