from squeezelab.data.config import ALL_IMAGES, evaluation_config, same_source


def test_same_source_compares_resolved_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    assert same_source("photos", f"{tmp_path}/photos/")
    assert same_source("./photos", "photos")
    assert not same_source("photos", "other")
    assert same_source("digits", "digits") and not same_source("digits", "synthetic")


def test_evaluation_config_picks_the_images(tmp_path):
    recorded = {"spec": str(tmp_path / "train_on"), "seed": 3, "split": {"val": ["a/1.png"]}}
    assert evaluation_config(recorded, None).split == {"val": ["a/1.png"]}
    assert evaluation_config(recorded, str(tmp_path / "train_on") + "/").seed == 3
    new = evaluation_config(recorded, str(tmp_path / "new"), image_size=32)
    assert new.split == ALL_IMAGES and new.image_size == 32 and new.spec == str(tmp_path / "new")
    (tmp_path / "held" / "test").mkdir(parents=True)
    assert evaluation_config(recorded, str(tmp_path / "held")).spec == str(tmp_path / "held" / "test")
