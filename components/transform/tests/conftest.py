import pytest

from components.transform.tests.shared import transformed_once


@pytest.fixture(scope="session")
def transformed(examples_dir, tmp_path_factory) -> dict:
    return transformed_once(examples_dir, str(tmp_path_factory.getbasetemp()))
