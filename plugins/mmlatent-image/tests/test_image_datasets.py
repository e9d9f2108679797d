"""The dataset loaders on small files in the real formats, the pairing protocol and digits_pair."""

from __future__ import annotations

import gzip
import pickle
import time
from collections import Counter
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

from mmlatent.plugins import get_registry
from mmlatent_image.datasets.cub import read_filenames
from mmlatent_image.datasets.digits_pair import render_dataset_digits, scikit_learn_digits, split_digits
from mmlatent_image.datasets.mnist_svhn import read_idx
from mmlatent_image.datasets.pairing import pair_same_class
from mmlatent_image.testing import idx_bytes, write_cub, write_mnist, write_polymnist, write_svhn


def dataset(name: str, options: dict, split: str):
    spec = get_registry().dataset(name)
    return spec.build(spec.validate_options(options), split)


# ------------------------------------------------------------------------------------ pairing
def test_pairing_protocol_counts_and_classes():
    rng = np.random.default_rng(0)
    labels_a = rng.integers(0, 4, size=60)
    labels_b = rng.integers(0, 4, size=45)
    a, b = pair_same_class(labels_a, labels_b, k=3, seed=1)
    assert np.array_equal(labels_a[a], labels_b[b])
    kept = {c: min((labels_a == c).sum(), (labels_b == c).sum()) for c in range(4)}
    assert len(a) == 3 * sum(kept.values())
    assert set(Counter(a.tolist()).values()) == {3} and set(Counter(b.tolist()).values()) == {3}
    again = pair_same_class(labels_a, labels_b, k=3, seed=1)
    assert np.array_equal(a, again[0]) and np.array_equal(b, again[1])
    other = pair_same_class(labels_a, labels_b, k=3, seed=2)
    assert not np.array_equal(a, other[0])
    assert np.bincount(labels_a[a[: len(a) // 2]], minlength=4).min() > 0  # shuffled: a prefix mixes classes
    capped, _ = pair_same_class(labels_a, labels_b, k=2, seed=1, max_per_class=3)
    assert len(capped) == 2 * 3 * 4


def test_distinct_pairing_never_pairs_an_item_with_itself():
    labels = np.repeat(np.arange(5), [2, 3, 7, 1, 10])
    a, b = pair_same_class(labels, labels, k=4, seed=0, distinct=True)
    assert np.all(a != b) and np.array_equal(labels[a], labels[b])
    assert 3 not in labels[a]  # a class with one item cannot pair
    assert set(Counter(a.tolist()).values()) == {4} and set(Counter(b.tolist()).values()) == {4}


# --------------------------------------------------------------------------------- mnist_svhn
def test_idx_reader_matches_torchvision_and_reads_gzip(tmp_path):
    from torchvision.datasets import MNIST

    labels = write_mnist(tmp_path)
    reference = MNIST(str(tmp_path), train=True)  # torchvision's own reader on the same files
    raw = tmp_path / "MNIST" / "raw"
    images = read_idx(raw / "train-images-idx3-ubyte")
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, reference.data.numpy())
    assert np.array_equal(read_idx(raw / "train-labels-idx1-ubyte"), reference.targets.numpy())
    assert np.array_equal(read_idx(raw / "train-labels-idx1-ubyte"), labels["train"])
    (tmp_path / "x.gz").write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(read_idx(tmp_path / "x.gz"), images)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(images)[:-5])
    with pytest.raises(ValueError, match="IDX header"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_svhn_pairs_same_class_instances(tmp_path, gz):
    mnist_labels = write_mnist(tmp_path, gz=gz)
    svhn_labels = write_svhn(tmp_path)
    ds = dataset("mnist_svhn", {"root": str(tmp_path), "k": 3}, "train")
    m_index, s_index = ds.arrays["mnist"][1], ds.arrays["svhn"][1]
    assert np.array_equal(mnist_labels["train"][m_index], svhn_labels["train"][s_index])
    # 6 MNIST and 5 SVHN instances per class: 5 kept per class and set, each in k = 3 pairs
    assert len(ds) == 3 * 5 * 10
    assert set(Counter(m_index.tolist()).values()) == {3} and len(set(m_index.tolist())) == 50
    item = ds[0]
    assert set(item) == {"mnist", "svhn", "label"}
    assert item["mnist"].shape == (28, 28) and item["mnist"].dtype == np.uint8
    assert item["svhn"].shape == (32, 32, 3) and item["svhn"].dtype == np.uint8
    assert np.array_equal(item["svhn"][..., 0], item["svhn"][..., 1] // 2)  # channels in place
    assert item["label"] == mnist_labels["train"][m_index[0]]
    assert 0 in {ds[i]["label"] for i in range(len(ds))}  # SVHN's label 10 is digit 0
    again = dataset("mnist_svhn", {"root": str(tmp_path), "k": 3}, "train")
    assert np.array_equal(again.arrays["mnist"][1], m_index) and np.array_equal(again.arrays["svhn"][1], s_index)
    reseeded = dataset("mnist_svhn", {"root": str(tmp_path), "k": 3, "seed": 1}, "train")
    assert not np.array_equal(reseeded.arrays["svhn"][1], s_index)
    test = dataset("mnist_svhn", {"root": str(tmp_path), "k": 3, "k_test": 1}, "test")
    assert len(test) == 30  # 3 per class on both sides, k_test = 1


def test_mnist_svhn_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="download: true"):
        dataset("mnist_svhn", {"root": str(tmp_path)}, "train")
    write_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        dataset("mnist_svhn", {"root": str(tmp_path)}, "train")


def test_mnist_svhn_download_asks_torchvision_for_the_same_folder(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_mnist(root, train, download):  # what torchvision leaves behind after a download
        calls.append(("MNIST", root, train, download))
        write_mnist(tmp_path)

    def fake_svhn(root, split, download):
        calls.append(("SVHN", root, split, download))
        write_svhn(tmp_path)

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    monkeypatch.setattr(torchvision.datasets, "SVHN", fake_svhn)
    ds = dataset("mnist_svhn", {"root": str(tmp_path), "download": True, "k": 1}, "test")
    assert calls == [("MNIST", str(tmp_path), False, True), ("SVHN", str(tmp_path), "test", True)]
    assert len(ds) == 30


# ---------------------------------------------------------------------------------- polymnist
def test_polymnist_reads_the_folder_layout(tmp_path):
    labels = write_polymnist(tmp_path)
    ds = dataset("polymnist", {"root": str(tmp_path)}, "train")
    assert len(ds) == 12
    assert [ds[i]["label"] for i in range(12)] == labels["train"].tolist()
    item = ds[3]
    assert set(item) == {"m0", "m1", "m2", "m3", "m4", "label"}
    for m in range(5):
        with Image.open(tmp_path / "train" / f"m{m}" / f"3.{labels['train'][3]}.png") as image:
            assert np.array_equal(item[f"m{m}"], np.asarray(image))
    subset = dataset("polymnist", {"root": str(tmp_path), "modalities": ["m4", "m1"]}, "test")
    assert set(subset[0]) == {"m4", "m1", "label"} and len(subset) == 6
    assert get_registry().dataset("polymnist").fields(get_registry().dataset("polymnist").validate_options({"modalities": ["m4", "m1"]})) == ["m4", "m1"]


def test_polymnist_errors(tmp_path):
    write_polymnist(tmp_path, modalities=2)
    with pytest.raises(FileNotFoundError, match="m2"):
        dataset("polymnist", {"root": str(tmp_path)}, "train")
    (tmp_path / "train" / "m1" / "0.5.png").unlink(missing_ok=True)
    for path in (tmp_path / "train" / "m1").glob("0.*.png"):
        path.unlink()
    with pytest.raises(ValueError, match="different files"):
        dataset("polymnist", {"root": str(tmp_path), "modalities": ["m0", "m1"]}, "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dataset("polymnist", {"root": str(tmp_path / "nowhere")}, "train")
    with pytest.raises(Exception, match="repeat"):
        get_registry().dataset("polymnist").validate_options({"modalities": ["m0", "m0"]})


# ---------------------------------------------------------------------------------------- cub
@pytest.mark.parametrize("split_format", ["pickle", "txt"])
def test_cub_items_per_caption(tmp_path, split_format):
    names = write_cub(tmp_path, split_format=split_format)
    ds = dataset("cub", {"root": str(tmp_path)}, "train")
    assert len(ds) == len(names["train"]) * 10
    captions = [ds[i]["caption"] for i in range(10)]
    stem = PurePosixPath(names["train"][0]).name
    assert captions == [f"caption {j} of {stem}: this bird has wings number 0" for j in range(10)]
    item = ds[0]
    assert set(item) == {"image", "caption", "label"}
    assert item["image"].shape == (64, 64, 3) and item["image"].dtype == np.uint8
    assert {ds[i]["label"] for i in range(len(ds))} == {0, 1, 16}  # 001 -> 0, 002 -> 1, 017 -> 16
    test = dataset("cub", {"root": str(tmp_path), "captions": "first", "image_size": 32}, "test")
    assert len(test) == 2 and test[1]["label"] == 2 and test[1]["image"].shape == (32, 32, 3)
    assert test[1]["caption"].startswith("caption 0 of ")


def test_cub_random_caption_and_image_content(tmp_path):
    names = write_cub(tmp_path, images_per_class=1)
    ds = dataset("cub", {"root": str(tmp_path), "captions": "random", "cache_images": False}, "train")
    assert len(ds) == 3
    torch.manual_seed(0)
    drawn = {ds[0]["caption"] for _ in range(40)}
    assert len(drawn) > 3
    torch.manual_seed(5)  # draws follow torch's generator
    first = [ds[1]["caption"] for _ in range(5)]
    torch.manual_seed(5)
    assert [ds[1]["caption"] for _ in range(5)] == first
    with Image.open(tmp_path / "CUB_200_2011" / "images" / f"{names['train'][0]}.jpg") as image:
        expected = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BICUBIC, reducing_gap=3.0))
    assert np.array_equal(ds[0]["image"], expected)


def test_cub_attngan_caption_folder(tmp_path):
    write_cub(tmp_path, images_per_class=1, captions=3)
    (tmp_path / "text_c10").rename(tmp_path / "text")
    with pytest.raises(FileNotFoundError, match="caption folder"):
        dataset("cub", {"root": str(tmp_path)}, "train")
    assert len(dataset("cub", {"root": str(tmp_path), "captions_dir": "text"}, "train")) == 9


def test_cub_filename_lists_are_read_safely(tmp_path):
    (tmp_path / "train").mkdir()
    target = tmp_path / "train" / "filenames.pickle"
    target.write_bytes(pickle.dumps([PurePosixPath("001.A/a")]))  # needs a class lookup: refused
    with pytest.raises(ValueError, match="refusing to unpickle"):
        read_filenames(tmp_path / "train")
    target.write_bytes(pickle.dumps({"001.A/a": 1}))
    with pytest.raises(ValueError, match="list of strings"):
        read_filenames(tmp_path / "train")
    # what Python 2 wrote for StackGAN's files: a protocol-2 list of byte strings (SHORT_BINSTRING)
    target.write_bytes(b"\x80\x02]q\x00(U\x07001.A/aq\x01U\x0b002.B/b.jpgq\x02e.")
    assert read_filenames(tmp_path / "train") == ["001.A/a", "002.B/b"]
    target.write_bytes(pickle.dumps(["001.A/a", b"002.B/b"], protocol=4))
    assert read_filenames(tmp_path / "train") == ["001.A/a", "002.B/b"]
    target.write_bytes(pickle.dumps(["../../etc/passwd"]))
    with pytest.raises(ValueError, match="invalid entry"):
        read_filenames(tmp_path / "train")
    target.unlink()
    with pytest.raises(FileNotFoundError, match="filenames.pickle"):
        read_filenames(tmp_path / "train")


def test_cub_missing_captions_are_reported(tmp_path):
    names = write_cub(tmp_path, images_per_class=1)
    (tmp_path / "text_c10" / f"{names['train'][1]}.txt").unlink()
    with pytest.raises(FileNotFoundError, match="missing captions"):
        dataset("cub", {"root": str(tmp_path)}, "train")


# -------------------------------------------------------------------------------- digits_pair
def test_digits_pair_splits_are_disjoint_and_stratified():
    splits = split_digits(get_registry().dataset("digits_pair").validate_options({"val_fraction": 0.1}))
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 1260, "val": 140, "test": 397}
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["val"]) & set(splits["test"])
    assert not set(splits["train"]) & set(splits["val"])
    plain = split_digits(get_registry().dataset("digits_pair").validate_options({}))
    assert len(plain["train"]) == 1400 and np.array_equal(plain["test"], splits["test"])
    from sklearn.datasets import load_digits

    labels = load_digits().target
    counts = np.bincount(labels[plain["test"]], minlength=10)
    assert counts.min() >= 38 and counts.max() <= 41  # stratified: ~39.7 per class


def test_rendering_other_digit_shapes_keeps_each_renderings_colours_and_shift():
    """render_dataset_digits: the renderings the splits index; other shapes in place of the digits change only
    the shapes (colours, shifts and noise come from the seed)."""
    spec = get_registry().dataset("digits_pair")
    options = spec.validate_options({"size": 16, "noise": 0.0})
    digits = scikit_learn_digits()[0]
    gray, colour = render_dataset_digits(options)
    built = spec.build(options, "test")
    assert np.array_equal(built.arrays["color"][0], colour) and np.array_equal(built.arrays["gray"][0], gray)
    _, blank = render_dataset_digits(options, np.zeros_like(digits))  # no strokes: each rendering its background
    flat = blank.reshape(len(blank), -1, 3)
    assert blank.shape == colour.shape and np.all(flat.max(1) == flat.min(1))
    corner_free = np.flatnonzero(digits[:, :2, :2].max(axis=(1, 2)) == 0)  # the top-left pixel shows the background
    assert len(corner_free) > 1000 and np.array_equal(colour[corner_free, 0, 0], blank[corner_free, 0, 0])
    assert len(np.unique(flat[:, 0], axis=0)) > 1700  # every rendering its own colours
    _, same = render_dataset_digits(options, digits)
    assert np.array_equal(same, colour)


def test_digits_pair_items_and_pairing():
    ds = dataset("digits_pair", {"k": 3, "captions": True}, "train")
    assert len(ds) == 3 * 1400
    gray_index, colour_index = ds.arrays["gray"][1], ds.arrays["color"][1]
    train = set(split_digits(get_registry().dataset("digits_pair").validate_options({}))["train"].tolist())
    assert set(gray_index.tolist()) == train and set(colour_index.tolist()) <= train
    assert set(Counter(gray_index.tolist()).values()) == {3}
    assert np.all(gray_index != colour_index)  # ANOTHER digit for the colour view
    from sklearn.datasets import load_digits

    labels = load_digits().target
    assert np.array_equal(labels[gray_index], labels[colour_index]) and np.array_equal(labels[gray_index], ds.labels)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for i in range(0, len(ds), 97):
        item = ds[i]
        assert item["gray"].shape == (16, 16) and item["gray"].dtype == np.uint8
        assert item["color"].shape == (16, 16, 3) and item["color"].dtype == np.uint8
        assert words[item["label"]] in item["caption"] or str(item["label"]) in item["caption"]
    assert len({ds[i]["caption"].replace(words[ds[i]["label"]], "#").replace(str(ds[i]["label"]), "#") for i in range(200)}) >= 8
    assert all(" a eight" not in ds[i]["caption"] and not ds[i]["caption"].startswith("a eight") for i in range(len(ds)))
    test = dataset("digits_pair", {"k": 3}, "test")
    assert len(test) == 397 and set(test[0]) == {"gray", "color", "label"}


def test_digits_pair_colour_renderings_look_like_svhn():
    ds = dataset("digits_pair", {}, "test")
    colour = np.stack([ds[i]["color"] for i in range(len(ds))]).astype(np.float32) / 255
    gray = np.stack([ds[i]["gray"] for i in range(len(ds))]).astype(np.float32) / 255
    assert colour.std(axis=(1, 2)).mean() > 0.05  # not flat
    assert np.abs(colour[..., 0] - colour[..., 1]).mean() > 0.05  # not grey
    backgrounds = colour[:, 0, 0, :]  # corners are background: colours vary across images
    assert backgrounds.std(axis=0).min() > 0.15
    luma = colour @ np.array([0.299, 0.587, 0.114], np.float32)
    spread = luma.reshape(len(ds), -1)
    assert np.all(spread.max(1) - spread.min(1) > 0.25)  # foreground/background contrast
    assert gray.max() == 1.0 and gray[:, [0, 0, -1, -1], [0, -1, 0, -1]].mean() < 0.05  # white digit on black


def test_digits_pair_is_deterministic_and_seeded():
    a = dataset("digits_pair", {"k": 2, "captions": True, "color_variants": 3}, "train")
    b = dataset("digits_pair", {"k": 2, "captions": True, "color_variants": 3}, "train")
    for i in (0, 17, 2799):
        x, y = a[i], b[i]
        assert np.array_equal(x["gray"], y["gray"]) and np.array_equal(x["color"], y["color"])
        assert x["caption"] == y["caption"] and x["label"] == y["label"]
    assert a.arrays["color"][0].shape[0] == 1797 * 3
    c = dataset("digits_pair", {"k": 2, "seed": 1}, "train")
    assert not np.array_equal(a.arrays["color"][0], c.arrays["color"][0])
    assert not np.array_equal(a.arrays["gray"][1], c.arrays["gray"][1])
    assert len(dataset("digits_pair", {"captions": True}, "val")) == 0  # no val_fraction: an empty split


def test_digits_pair_is_fast():
    dataset("digits_pair", {}, "test")  # warm: scikit-learn import and the digits file
    start = time.perf_counter()
    ds = dataset("digits_pair", {"k": 1, "test_size": 10}, "train")
    modality = get_registry().modality("image").build("color", {"channels": 3, "size": 16, "arch": "conv"}, 8)
    batch = modality.collate([modality.preprocess(ds[i]["color"]) for i in range(len(ds))])
    elapsed = time.perf_counter() - start
    assert batch.shape == (1787, 3, 16, 16)
    assert elapsed < 3.0, f"building and preprocessing 1,787 pairs took {elapsed:.2f} s"


# ------------------------------------------------------------------- stage-1 training sanity
@pytest.fixture
def one_thread():
    """Small models train faster on one thread of a shared CPU; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "field, options, latent_dim, steps, ratio",
    [
        ("gray", {"channels": 1, "size": 16, "arch": "mlp"}, 16, 60, 0.6),
        ("color", {"channels": 3, "size": 16, "arch": "conv"}, 32, 80, 0.8),
    ],
)
def test_autoencoder_learns_digits(one_thread, field, options, latent_dim, steps, ratio):
    torch.manual_seed(0)
    ds = dataset("digits_pair", {"k": 1}, "train")
    modality = get_registry().modality("image").build(field, options, latent_dim)
    data = modality.collate([modality.preprocess(ds[i][field]) for i in range(512)])
    ae = modality.build_autoencoder()
    optimiser = torch.optim.Adam(ae.parameters(), lr=1e-3)
    probe = data[:128]
    with torch.no_grad():
        before = float(ae.training_loss(probe))
    for step in range(steps):
        batch = data[(step * 64) % 512 :][:64]
        optimiser.zero_grad()
        loss = ae.training_loss(batch)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(ae.training_loss(probe))
    assert after < ratio * before, f"{field}: reconstruction loss {before:.2f} -> {after:.2f} in {steps} steps"


def test_classifier_learns_digits(one_thread):
    torch.manual_seed(0)
    train, test = dataset("digits_pair", {"k": 1}, "train"), dataset("digits_pair", {"k": 1}, "test")
    modality = get_registry().modality("image").build("gray", {"channels": 1, "size": 16}, 8)
    x = modality.collate([modality.preprocess(train[i]["gray"]) for i in range(len(train))])
    x_test = modality.collate([modality.preprocess(test[i]["gray"]) for i in range(len(test))])
    y, y_test = torch.from_numpy(train.labels), torch.from_numpy(test.labels)
    classifier = modality.build_classifier(10)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    for _epoch in range(2):
        classifier.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(classifier(x[batch]), y[batch]).backward()
            optimiser.step()
    classifier.eval()
    with torch.no_grad():
        accuracy = (classifier(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.85, f"test accuracy {accuracy:.3f} after 2 epochs"
