import pytest

# tests.helpers asserts on the tests' behalf: pytest explains a failing assert there too.
pytest.register_assert_rewrite("tests.helpers")
