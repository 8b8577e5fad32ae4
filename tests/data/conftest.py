import pytest
from image_builders import make_folder


@pytest.fixture
def image_folder(tmp_path):
    return make_folder(tmp_path / "photos")
