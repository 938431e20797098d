"""Pipeline-level tests reuse the component fixtures."""

from components.conftest import examples_dir, hmda_csv  # noqa: F401
